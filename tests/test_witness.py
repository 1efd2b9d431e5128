"""Witness cosigning (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature): a witness cosigns a
checkpoint only when it extends the last one it cosigned, and `verify` names it.

The cosignature's bytes are checked against the spec with `cryptography` alone, and against
the published values in tests/vectors/cosignature_v1.json; the CLI as a process, on SQLite
and PostgreSQL; the HTTP API's status codes against a served witness, and its monitoring
read (GET /<origin>/checkpoint) in process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import struct
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import TRIALCTL, Result, assert_one_line_error, trialctl
from trialctl.ledger.merkle import consistency_proof, hash_leaf, root_from_leaf_hashes
from trialctl.ledger.signed_note import (
    ED25519,
    Note,
    NoteSignature,
    NoteSigner,
    open_note,
    parse_note,
    sign_note,
)
from trialctl.ledger.witness import (
    Verifier,
    WitnessError,
    WitnessRefusal,
    cosign,
    cosignature_time,
    create_witness,
    parse_cosigner_key,
    parse_submission,
    submission_body,
    vouches,
)
from trialctl.ledger.witness_http import checkpoint_path, make_server

PASSWORD = "alice-password"


def run(*args: str, stdin: str = "") -> Result:
    result = trialctl(*args, stdin=stdin)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def ok(*args: str, stdin: str = "") -> Result:
    result = run(*args, stdin=stdin)
    assert result.returncode == 0, result
    return result


def new_ledger(url: str) -> None:
    ok("init", "--admin", "alice", "--name", "Alice Adams", "--ledger", url,
       "--password-stdin", stdin=f"{PASSWORD}\n")


def add_user(url: str, user: str) -> None:
    ok("user", "add", user, "--name", user.title(), "--role", "monitor", "--ledger", url,
       "-u", "alice", "--password-stdin", stdin=f"{PASSWORD}\n{user}-password\n")


def checkpoint(url: str, note: Path, *witnesses: str) -> Result:
    flags = [f"--witness={w}" for w in witnesses]
    return run("checkpoint", "-u", "alice", "-o", str(note), "--ledger", url, *flags,
               "--password-stdin", "--json", stdin=f"{PASSWORD}\n")


def witness_for(url: str, directory: Path) -> str:
    """A new unsealed witness that follows the ledger at `url`; its verifier key."""
    ok("witness", "init", str(directory), "--name", "witness.example/w1", "--unsealed")
    key_file = directory.parent / f"{directory.name}-alice.vkey"
    ok("witness", "log-key", "alice", "-o", str(key_file), "--ledger", url)
    ok("witness", "add-log", str(directory), "--from", str(key_file))
    shown = json.loads(ok("witness", "show", str(directory), "--json").stdout)
    vkey: str = shown["vkey"]
    return vkey


def state_of(directory: Path) -> bytes:
    return (directory / "state.json").read_bytes()


# --------------------------------------------------------------------------- the bytes


SEED = bytes(range(32))


def test_cosignature_bytes_follow_the_spec() -> None:
    """key ID = SHA-256(name LF 0x04 key)[:4]; blob = key ID || u64 BE time || Ed25519 over
    "cosignature/v1" LF "time <t>" LF body. Checked here with cryptography alone."""
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    private = Ed25519PrivateKey.from_private_bytes(SEED)
    public = private.public_key().public_bytes_raw()
    line = cosign(body, "witness.example.com/w1", private, 1679315147).line()

    assert line.startswith("\u2014 witness.example.com/w1 ") and line.endswith("\n")
    blob = base64.b64decode(line.split(" ")[2])
    assert len(blob) == 4 + 8 + 64
    name_hash = hashlib.sha256(b"witness.example.com/w1\n\x04" + public).digest()[:4]
    assert blob[:4] == name_hash
    assert struct.unpack(">Q", blob[4:12]) == (1679315147,)
    message = b"cosignature/v1\ntime 1679315147\n" + body.encode()
    private.public_key().verify(blob[12:], message)  # raises if the bytes differ
    # Ed25519 is deterministic: the same seed, time and body give this very line.
    assert blob[12:] == private.sign(message)


def test_the_spec_examples_timestamp_is_read_from_its_line() -> None:
    """The cosignature line in c2sp.org/tlog-cosignature's example carries time 1679315147,
    the time its signed-message example shows."""
    spec_line = ("\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeol"
                 "MI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")
    note = parse_note("example.com/behind-the-sofa\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3"
                      "j2jxq2I=\n\n" + spec_line)
    (signature,) = note.signatures
    assert len(signature.signature) == 72
    assert struct.unpack(">Q", signature.signature[:8]) == (1679315147,)


def test_only_known_witnesses_vouch_and_a_bad_known_line_is_named() -> None:
    body = "log.example/a\n5\n" + base64.b64encode(bytes(32)).decode() + "\n"
    w1, w2 = Ed25519PrivateKey.from_private_bytes(SEED), Ed25519PrivateKey.generate()
    known = Verifier("w1", 0x04, w1.public_key().public_bytes_raw())
    good = cosign(body, "w1", w1, 1700000000)
    stranger = cosign(body, "w2", w2, 1700000000)
    found, problems = vouches(Note(body, (stranger, good)), [known])
    assert [(v.name, v.timestamp) for v in found] == [("w1", 1700000000)] and not problems
    assert cosignature_time(known, body, good) == 1700000000
    forged = NoteSignature("w1", good.key_id, struct.pack(">Q", 1700000001) + good.signature[8:])
    found, problems = vouches(Note(body, (forged,)), [known])
    assert not found and problems == ["cosignature of witness 'w1' does not verify"]
    # Another body (another root) is not vouched for by the same line.
    assert cosignature_time(known, body.replace("5", "6"), good) is None


def test_a_request_body_goes_to_bytes_and_back() -> None:
    proof = [bytes([i]) * 32 for i in range(3)]
    body = submission_body(7, proof, "note\n\n\u2014 x AAAA\n")
    assert body.startswith(b"old 7\n") and b"\n\nnote\n" in body
    assert parse_submission(body) == (7, proof, "note\n\n\u2014 x AAAA\n")


# --------------------------------------------------------------------------- the CLI


def test_a_witness_cosigns_consistent_checkpoints_and_verify_names_it(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    new_ledger(ledger_url)
    directory = tmp_path / "w1"
    vkey = witness_for(ledger_url, directory)

    first = checkpoint(ledger_url, tmp_path / "cp1.txt", str(directory))
    assert first.returncode == 0, first
    assert json.loads(first.stdout)["cosigned_by"] == ["witness.example/w1"]
    add_user(ledger_url, "bob")
    # The second time the witness knows a size: the proof comes from the ledger.
    second = checkpoint(ledger_url, tmp_path / "cp2.txt", str(directory))
    assert second.returncode == 0, second
    size = json.loads(second.stdout)["tree_size"]
    assert json.loads(ok("witness", "show", str(directory), "--json").stdout)["logs"][0][
        "size"] == size

    report = json.loads(ok("verify", "--ledger", ledger_url, "--json", "-c",
                           str(tmp_path / "cp2.txt"), "--witness-key", vkey).stdout)
    (result,) = report["checkpoints"]
    assert result["status"] == "ok"
    assert [w["name"] for w in result["witnesses"]] == ["witness.example/w1"]
    text = ok("verify", "--ledger", ledger_url, "-c", str(tmp_path / "cp2.txt"),
              "--witness-key", vkey).stdout
    assert "witnessed by witness.example/w1" in text
    # Without the witness's key, its line is ignored, not trusted.
    report = json.loads(ok("verify", "--ledger", ledger_url, "--json", "-c",
                           str(tmp_path / "cp2.txt")).stdout)
    assert report["checkpoints"][0]["witnesses"] == []


def test_a_witness_refuses_a_rewritten_ledger(home: Path, tmp_path: Path) -> None:
    real, rewritten = str(tmp_path / "real.sqlite"), str(tmp_path / "rewritten.sqlite")
    new_ledger(real)
    shutil.copyfile(real, rewritten)
    directory = tmp_path / "w1"
    witness_for(real, directory)
    add_user(real, "bob")
    assert checkpoint(real, tmp_path / "cp1.txt", str(directory)).returncode == 0
    before = state_of(directory)

    # The same ledger id and signer, another history of the same length: a fork at the size
    # the witness cosigned (409 in tlog-witness).
    add_user(rewritten, "carol")
    refused = checkpoint(rewritten, tmp_path / "cp2.txt", str(directory))
    assert_one_line_error(refused, "witness", "with another root: a fork")
    assert refused.returncode == 1
    assert state_of(directory) == before
    # The note is written, without a cosignature.
    assert "witness.example/w1" not in (tmp_path / "cp2.txt").read_text(encoding="utf-8")

    # File mode, with the rewritten ledger's own proof from the size the witness knows.
    size = json.loads(ok("witness", "show", str(directory), "--json").stdout)["logs"][0]["size"]
    add_user(rewritten, "dave")
    note = tmp_path / "cp3.txt"
    assert checkpoint(rewritten, note).returncode == 0
    proof = tmp_path / "proof.json"
    ok("proof", "consistency", str(size), "--checkpoint", str(note), "-o", str(proof),
       "--ledger", rewritten)
    unchanged = note.read_bytes()
    refused = run("witness", "cosign", str(directory), "--checkpoint", str(note),
                  "--proof", str(proof))
    assert_one_line_error(refused, "refuses", "not a consistent extension")
    assert note.read_bytes() == unchanged and state_of(directory) == before

    # The real ledger's own extension is cosigned, in file mode too.
    add_user(real, "erin")
    note = tmp_path / "cp4.txt"
    assert checkpoint(real, note).returncode == 0
    proof = tmp_path / "proof-real.json"
    ok("proof", "consistency", str(size), "--checkpoint", str(note), "-o", str(proof),
       "--ledger", real)
    ok("witness", "cosign", str(directory), "--checkpoint", str(note), "--proof", str(proof))
    assert "\u2014 witness.example/w1 " in note.read_text(encoding="utf-8")
    assert state_of(directory) != before


def test_file_mode_refusals_change_nothing(home: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "ledger.sqlite")
    new_ledger(url)
    directory = tmp_path / "w1"
    witness_for(url, directory)
    old = tmp_path / "old.txt"
    assert checkpoint(url, old).returncode == 0
    add_user(url, "bob")
    assert checkpoint(url, tmp_path / "new.txt", str(directory)).returncode == 0
    before = state_of(directory)

    # An older size than the witness has cosigned.
    refused = run("witness", "cosign", str(directory), "--checkpoint", str(old))
    assert_one_line_error(refused, "refuses", "cosigned size")
    # A bad log signature: the root line changed.
    text = old.read_text(encoding="utf-8").split("\n")
    text[2] = base64.b64encode(bytes(32)).decode()
    forged = tmp_path / "forged.txt"
    forged.write_text("\n".join(text), encoding="utf-8")
    assert_one_line_error(run("witness", "cosign", str(directory), "--checkpoint",
                              str(forged)), "refuses", "log signature")
    # An unknown log.
    other = tmp_path / "w2"
    ok("witness", "init", str(other), "--name", "witness.example/w2", "--unsealed")
    assert_one_line_error(run("witness", "cosign", str(other), "--checkpoint", str(old)),
                          "refuses", "unknown log")
    assert state_of(directory) == before
    # A sealed witness asks for its password; a wrong one is one line.
    sealed = tmp_path / "w3"
    ok("witness", "init", str(sealed), "--name", "witness.example/w3", "--password-stdin",
       stdin="w3-password\n")
    assert_one_line_error(run("witness", "cosign", str(sealed), "--checkpoint", str(old),
                              "--password-stdin", stdin="wrong-password\n"), "wrong password")
    # `checkpoint --witness DIR` opens a sealed witness with the next password line: a
    # wrong one ends before anything is signed; the right one cosigns.
    ok("witness", "add-log", str(sealed), "--from", str(tmp_path / "w1-alice.vkey"))
    sealed_before = state_of(sealed)
    refused = run("checkpoint", "-u", "alice", "-o", str(tmp_path / "sealed.txt"), "--ledger",
                  url, f"--witness={sealed}", "--password-stdin",
                  stdin=f"{PASSWORD}\nwrong-password\n")
    assert_one_line_error(refused, "wrong password")
    assert not (tmp_path / "sealed.txt").exists() and state_of(sealed) == sealed_before
    cosigned = run("checkpoint", "-u", "alice", "-o", str(tmp_path / "sealed.txt"), "--ledger",
                   url, f"--witness={sealed}", "--password-stdin", "--json",
                   stdin=f"{PASSWORD}\nw3-password\n")
    assert cosigned.returncode == 0, cosigned
    assert json.loads(cosigned.stdout)["cosigned_by"] == ["witness.example/w3"]
    vkey = json.loads(ok("witness", "show", str(sealed), "--json").stdout)["vkey"]
    report = json.loads(ok("verify", "--ledger", url, "--json", "-c",
                           str(tmp_path / "sealed.txt"), "--witness-key", vkey).stdout)
    assert [w["name"] for w in report["checkpoints"][0]["witnesses"]] == ["witness.example/w3"]
    assert_one_line_error(run("witness", "init", str(directory), "--name", "x", "--unsealed"),
                          "already holds a witness")


# --------------------------------------------------------------------------- HTTP


@pytest.fixture
def served(tmp_path: Path, home: Path) -> Iterator[dict[str, Any]]:
    url = str(tmp_path / "ledger.sqlite")
    new_ledger(url)
    directory = tmp_path / "w1"
    vkey = witness_for(url, directory)
    process = subprocess.Popen([TRIALCTL, "witness", "serve", str(directory), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        address = first.split("serving on ")[1].split("/ ")[0]
        assert address.startswith("http://127.0.0.1:"), first
        yield {"url": url, "address": address, "vkey": vkey, "dir": directory}
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(address: str, body: bytes) -> tuple[int, str, str]:
    request = urllib.request.Request(address + "/add-checkpoint", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), response.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers["Content-Type"]


def test_http_witness_answers_with_the_specs_status_codes(
    served: dict[str, Any], tmp_path: Path
) -> None:
    url, address = served["url"], served["address"]
    first = checkpoint(url, tmp_path / "cp1.txt", address)
    assert first.returncode == 0, first
    assert json.loads(first.stdout)["cosigned_by"] == ["witness.example/w1"]
    note = (tmp_path / "cp1.txt").read_text(encoding="utf-8")
    plain = note.split("\u2014 witness.example/w1")[0]  # the log's own signature only
    size = int(plain.split("\n")[1])

    status, body, kind = post(address, submission_body(0, [], plain))
    assert (status, body, kind) == (409, f"{size}\n", "text/x.tlog.size")
    status, body, _ = post(address, submission_body(size, [], plain))
    assert status == 200 and body.startswith("\u2014 witness.example/w1 ")
    assert post(address, b"not a request")[0] == 400
    assert post(address, submission_body(size + 1, [], plain))[0] == 400
    assert post(address, submission_body(0, [], plain.replace("trialctl/ledger/",
                                                              "other.example/")))[0] == 404
    lines = plain.split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()
    assert post(address, submission_body(size, [], "\n".join(lines)))[0] == 403

    add_user(url, "bob")
    later = tmp_path / "cp2.txt"
    assert checkpoint(url, later).returncode == 0
    bad_proof = [bytes(32)]
    status, _, _ = post(address, submission_body(size, bad_proof, later.read_text("utf-8")))
    assert status == 422
    # The log's client finds the size the witness knows and sends the right proof.
    third = checkpoint(url, tmp_path / "cp3.txt", address)
    assert third.returncode == 0, third
    report = json.loads(ok("verify", "--ledger", url, "--json", "-c", str(tmp_path / "cp3.txt"),
                           "--witness-key", served["vkey"]).stdout)
    assert [w["name"] for w in report["checkpoints"][0]["witnesses"]] == ["witness.example/w1"]
    # A monitor reads the same cosigned note back from the witness.
    origin = plain.split("\n")[0]
    assert _get(address, checkpoint_path(origin)) == \
        (200, (tmp_path / "cp3.txt").read_text(encoding="utf-8"))


def test_an_unreachable_witness_is_one_line_and_the_note_is_still_written(
    home: Path, tmp_path: Path
) -> None:
    url = str(tmp_path / "ledger.sqlite")
    new_ledger(url)
    result = checkpoint(url, tmp_path / "cp.txt", "http://127.0.0.1:9/")
    assert_one_line_error(result, "cannot reach witness")
    assert (tmp_path / "cp.txt").read_text(encoding="utf-8").startswith("trialctl/ledger/")


# --------------------------------------------------------------------------- in process

ORIGIN = "trialctl/ledger/0b1e4c6e-7d39-4c43-9b1f-6f5d0a9a2f10"


def _log_note(signer: NoteSigner, leaves: list[bytes]) -> str:
    root = base64.b64encode(root_from_leaf_hashes(leaves)).decode()
    return sign_note(f"{ORIGIN}\n{len(leaves)}\n{root}\n", signer).to_text()


def _get(address: str, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(address + path, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_monitor_reads_the_latest_cosigned_checkpoint_and_a_fork_is_a_conflict(
    tmp_path: Path,
) -> None:
    """GET /<origin>/checkpoint serves the last checkpoint cosigned, with the log's
    signature and the cosignature (404 for an unknown log or before any cosignature); the
    same size with another root is 409 (tlog-witness), and changes nothing."""
    witness = create_witness(tmp_path / "w", "witness.example/w9", None)
    witness.unlock(None)
    log = NoteSigner("alice", ED25519, Ed25519PrivateKey.generate())
    witness.add_log(ORIGIN, [log.verifier.vkey()])
    server = make_server(witness, 0, lambda line: None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert checkpoint_path(ORIGIN) == f"/{ORIGIN}/checkpoint"
        assert _get(address, checkpoint_path(ORIGIN))[0] == 404  # nothing cosigned yet
        assert _get(address, checkpoint_path("other.example/log"))[0] == 404
        assert _get(address, "/checkpoint")[0] == 404

        leaves = [hash_leaf(bytes([i])) for i in range(5)]
        first = _log_note(log, leaves[:3])
        witness.add_checkpoint(0, [], first, 1_700_000_000)
        second = _log_note(log, leaves)
        witness.add_checkpoint(3, consistency_proof(3, leaves), second, 1_700_000_100)
        status, body = _get(address, checkpoint_path(ORIGIN))
        assert status == 200
        served = parse_note(body)
        assert served.text == parse_note(second).text
        assert open_note(served, [log.verifier])  # the log's own signature is kept
        (vouch,), problems = vouches(served, [witness.verifier])
        assert problems == [] and vouch.timestamp == 1_700_000_100

        before = state_of(witness.directory)
        fork = _log_note(log, [*leaves[:4], hash_leaf(b"rewritten")])
        with pytest.raises(WitnessRefusal, match="another root") as refused:
            witness.add_checkpoint(5, [], fork, 1_700_000_200)
        assert refused.value.status == 409 and refused.value.known_size is None
        status, body, _ = post(address, submission_body(5, [], fork))
        assert status == 409 and "another root" in body
        assert state_of(witness.directory) == before
        assert _get(address, checkpoint_path(ORIGIN))[1] == served.to_text()
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- published values

VECTORS = json.loads((Path(__file__).resolve().parent / "vectors" / "cosignature_v1.json")
                     .read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", VECTORS["cosigner_vkeys"], ids=lambda v: v["name"])
def test_a_published_cosigner_key_reads_with_its_key_id(vector: dict[str, Any]) -> None:
    verifier = parse_cosigner_key(vector["vkey"])
    assert (verifier.name, verifier.key_id.hex()) == (vector["name"], vector["key_id"])
    # Recomputed with hashlib alone: SHA-256(name LF 0x04 key)[:4].
    assert hashlib.sha256(vector["name"].encode() + b"\n\x04" + verifier.public_key
                          ).digest()[:4].hex() == vector["key_id"]
    assert verifier.vkey() == vector["vkey"]  # and back to the same text
    wrong = vector["vkey"].replace(vector["key_id"], "00000000")
    with pytest.raises(WitnessError, match="key ID"):
        parse_cosigner_key(wrong)


@pytest.mark.parametrize("vector", VECTORS["cosignature_timestamps"], ids=lambda v: v["desc"])
def test_a_published_signature_line_splits_into_key_id_time_and_signature(
    vector: dict[str, Any],
) -> None:
    body = "log.example/a\n1\n" + base64.b64encode(bytes(32)).decode() + "\n"
    (line,) = parse_note(f"{body}\n\u2014 w {vector['signature']}\n").signatures
    if vector["timestamp"] is None:
        assert len(line.signature) == 64  # no room for a timestamp: not a cosignature
    else:
        assert line.key_id.hex() == vector["key_id"] and len(line.signature) == 72
        assert struct.unpack(">Q", line.signature[:8]) == (vector["timestamp"],)


@pytest.mark.parametrize("vector", VECTORS["log_checkpoints"], ids=lambda v: v["origin"][:24])
def test_a_witness_cosigns_another_implementations_log_checkpoint(
    vector: dict[str, Any], tmp_path: Path
) -> None:
    """A checkpoint signed by a sigsum log (from torchwood's litewitness tests) is accepted
    and cosigned from size 0, as litewitness does with it."""
    witness = create_witness(tmp_path / "w", "witness.example/w1", None)
    witness.unlock(None)
    log_key_ = Verifier(vector["origin"], ED25519, bytes.fromhex(vector["public_key"]))
    assert hashlib.sha256(log_key_.public_key).hexdigest() == vector["origin"].split("/")[-1]
    witness.add_log(vector["origin"], [log_key_.vkey()])
    (cosignature,) = witness.add_checkpoint(0, [], vector["note"], 1_727_964_367)
    note = parse_note(vector["note"])
    (vouch,), problems = vouches(note.with_signatures([cosignature]), [witness.verifier])
    assert problems == [] and vouch.timestamp == 1_727_964_367
    assert witness.logs()[vector["origin"]].size == 1
