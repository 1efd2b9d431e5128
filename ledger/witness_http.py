"""The tlog-witness HTTP API over a witness directory, and the client a log uses.

    POST /add-checkpoint      body: old <size> LF, proof lines, LF, the checkpoint
      200  the cosignature lines          404  unknown origin
      400  malformed request              403  no valid signature by the log's key
      409  old size is not the witness's (body: its size LF, text/x.tlog.size), or
           it is the checkpoint's size with another root than the one cosigned
      422  the proof does not hold (or a size-0 checkpoint without the empty root)

    GET /<origin>/checkpoint  the monitoring read: the last checkpoint of that log the
      200  the note: its text, the log's    witness cosigned (origin path-escaped, its
           signatures, the cosignature      '/' kept: /trialctl/ledger/<id>/checkpoint)
      404  unknown origin, or nothing cosigned yet

tlog-witness leaves monitor retrieval open ("TBD"); this read follows the older
transparency-dev witness's `logs/<id>/checkpoint`, under the same prefix as submission.

The server binds 127.0.0.1 only and handles one request at a time (http.server's
HTTPServer); the witness's lock also keeps its state whole against a CLI cosign.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Final

from trialctl.ledger.signed_note import NoteSignature
from trialctl.ledger.witness import (
    BAD_REQUEST,
    CONFLICT,
    Witness,
    WitnessError,
    WitnessRefusal,
    parse_signature_lines,
    parse_submission,
    submission_body,
)

MAX_REQUEST_BYTES: Final = 128 * 1024
SIZE_TYPE: Final = "text/x.tlog.size"
HOST: Final = "127.0.0.1"
CHECKPOINT_SUFFIX: Final = "/checkpoint"


def make_server(witness: Witness, port: int, log: Callable[[str], None]) -> HTTPServer:
    """A server for `witness` (its key already unlocked) on 127.0.0.1:port (0: any free)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "trialctl-witness"

        def log_message(self, format: str, *args: object) -> None:
            log(f"{self.address_string()} {format % args}")

        def _answer(self, status: int, body: str, content_type: str = "text/plain") -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8"
                             if content_type == "text/plain" else content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path != "/add-checkpoint":
                self._answer(404, "no such endpoint\n")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._answer(BAD_REQUEST, "Content-Length is required\n")
                return
            if not 0 <= length <= MAX_REQUEST_BYTES:
                self._answer(BAD_REQUEST, "request too large\n")
                return
            body = self.rfile.read(length)
            try:
                old_size, proof, note = parse_submission(body)
                lines = witness.add_checkpoint(old_size, proof, note, int(time.time()))
            except WitnessRefusal as e:
                if e.status == CONFLICT and e.known_size is not None:
                    self._answer(CONFLICT, f"{e.known_size}\n", SIZE_TYPE)
                else:
                    self._answer(e.status, f"{e}\n")
                return
            except WitnessError as e:
                self._answer(500, f"{e}\n")
                return
            self._answer(200, "".join(s.line() for s in lines))

        def do_GET(self) -> None:
            if self.path == "/add-checkpoint":
                self._answer(405, "POST only\n")
                return
            origin = checkpoint_origin(self.path)
            if origin is None:
                self._answer(404, "no such endpoint\n")
                return
            try:
                self._answer(200, witness.latest_checkpoint(origin))
            except WitnessRefusal as e:
                self._answer(e.status, f"{e}\n")
            except WitnessError as e:
                self._answer(500, f"{e}\n")

    return HTTPServer((HOST, port), Handler)


def checkpoint_path(origin: str) -> str:
    """The monitoring path of a log's latest cosigned checkpoint."""
    return "/" + urllib.parse.quote(origin, safe="/") + CHECKPOINT_SUFFIX


def checkpoint_origin(path: str) -> str | None:
    """The origin a monitoring path names, or None when it is not one."""
    if not path.startswith("/") or not path.endswith(CHECKPOINT_SUFFIX) or "?" in path:
        return None
    try:
        origin = urllib.parse.unquote(path[1:-len(CHECKPOINT_SUFFIX)], errors="strict")
    except UnicodeDecodeError:
        return None
    return origin or None


def http_submitter(url: str, timeout: float = 30.0
                   ) -> Callable[[int, Sequence[bytes], str], list[NoteSignature]]:
    """Submit to a witness at `url` (its submission prefix), mapping statuses back to
    refusals."""
    endpoint = url.rstrip("/") + "/add-checkpoint"

    def submit(old_size: int, proof: Sequence[bytes], note_text: str) -> list[NoteSignature]:
        request = urllib.request.Request(
            endpoint, data=submission_body(old_size, proof, note_text), method="POST",
            headers={"Content-Type": "text/plain; charset=utf-8"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return parse_signature_lines(response.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace").strip()
            if e.code == CONFLICT and text.isdigit():
                raise WitnessRefusal(CONFLICT, f"witness {url} has cosigned size {text}",
                                     known_size=int(text)) from e
            raise WitnessRefusal(e.code, f"witness {url} refused ({e.code}): "
                                 f"{text.splitlines()[0] if text else e.reason}") from e
        except (urllib.error.URLError, OSError, UnicodeDecodeError) as e:
            raise WitnessError(f"cannot reach witness {url}: "
                               f"{getattr(e, 'reason', None) or e}") from e

    return submit
