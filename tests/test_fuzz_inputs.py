"""Property-based fuzzing of what trialctl takes from outside: the flags of every `record`
subcommand and the other writing commands, protocol files, screening values files, batch
files (JSON lines and CSV) and key files. Whatever comes in, trialctl never shows a
traceback; a refusal is one line on stderr with a non-zero exit, and the ledger gains
nothing from it but the signed record of the refusal itself (AttemptRefused); at the end
the ledger verifies clean and its read models agree with a replay.

Starting `trialctl` costs about a second and a half, so the examples call its entry point
(cli/main.py `run`) in this process, argv, stdin and the standard streams swapped in; an
exception that escapes it is what a real process would print as a traceback. A few of the
nastiest inputs also run as real processes (the last tests). Each backend gets one demo
ledger for the whole module.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import re
import shlex
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BACKENDS, TRIALCTL, Result, assert_one_line_error, new_ledger
from tests.demo_ledgers import demo_environment
from tests.ledgers import engine_for
from tests.test_help_examples import EXAMPLES_DAY_ZERO, help_examples
from trialctl.cli import main
from trialctl.ledger.application import open_ledger
from trialctl.ledger.batch_lines import LINE_KINDS, csv_columns
from trialctl.ledger.demo import DEMO_PROTOCOL, demo_password
from trialctl.ledger.projection import catch_up, compare_with_replay
from trialctl.ledger.verify import verify_ledger

# What a refusal may add: the signed record of it, in the user's security log (opened by
# its first entry).
REFUSAL_TOPICS = {"trialctl.SecurityLog.AttemptRefused", "trialctl.SecurityLog.Opened"}
# Commands whose success would end the trial or its signers for every later example.
LEFT_OUT = {"trial close", "user revoke", "user rotate-key"}
WRITING = sorted(
    path for path in help_examples()
    if path.split()[0] in ("record", "query", "user", "review", "trial", "checkpoint")
    and path not in LEFT_OUT | {"query list", "user list", "trial list", "review status"}
)
FUZZ = settings(deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Values that broke, or could break, a parser: huge and odd numbers, dates outside the
# calendar, control and bidirectional characters, argv bytes that are not UTF-8 (Python
# reads them as lone surrogates), very long text.
HOSTILE_TEXT = [
    "", " ", "-1", "0", "-0", "1.5", "true", "null", "NaN", "inf", "-inf", "1e999999999",
    "9" * 19, "9" * 5000, "2026-W02-1", "2026-005", "0001-01-01", "9999-12-31", "2026-02-30",
    "2026-10-01T25:00:00+00:00", "T1:liver:1e999999999", "T1:liver:-5", "x:y", "a=b",
    "values=1", "dose=", "P001", "P999", "AE1", "Q99999", "../../etc/passwd", "%s%n{0}",
    "{", "[]", "\x1b[2J\x1b]0;pwned\x07", "\u202egnp.exe", "日本語", "a\nb", "\udcff\udc80",
    "x" * 100_000, "1-99999999999",
]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
            max_size=30),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), hostile_text,
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
NASTY_FILES = [
    b"", b"\xff\xfe\x00garbage", b"[" * 100_000, b"{" * 50_000, b"1" * 5000,
    b'{"a": 1e999999}', b'{"a": NaN}', b"\x1b[2J", b"a = " + b"[" * 20_000,
]


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


@functools.cache
def _click_command() -> Any:
    """The click command typer builds from the app: typer builds it afresh at each call
    (a third of a second), a process builds it once."""
    return typer.main.get_command(main.app)


def run_in_process(args: list[str], stdin: str = "") -> Outcome:
    """`trialctl ARGS` through the installed entry point, in this process."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setattr(main, "app", _click_command())
        # run() trims the typer app to the named command; the click command is built whole.
        patch.setattr(main, "_named_first", lambda command, arguments: command)
        patch.setattr(warnings, "showwarning", warnings.showwarning)  # run() replaces it
        patch.setattr(sys, "argv", ["trialctl", *args])
        patch.setattr(sys, "stdin", io.StringIO(stdin))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            main.run()
        except SystemExit as exit_:
            code = exit_.code
    return Outcome(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())


@dataclass
class Site:
    """The demo ledger of one backend, and a connection to count what each call added."""

    url: str
    home: Path
    work: Path
    shift: timedelta
    engine: sqlalchemy.Engine

    def last_id(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sqlalchemy.text(
                "SELECT coalesce(max(id), 0) FROM trialctl_events")).scalar_one())

    def topics_after(self, last: int) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.execute(sqlalchemy.text(
                "SELECT topic FROM trialctl_events WHERE id > :last ORDER BY id"),
                {"last": last}).scalars())

    def check(self, args: list[str], stdin: str = "", batch: bool = False) -> Outcome:
        """Run, and hold trialctl to its contract for outside input. A refused batch
        reports each refused line ("line N …") and then one line saying what it kept."""
        before = self.last_id()
        outcome = run_in_process(args, stdin)
        shown = outcome.stdout + outcome.stderr
        assert "Traceback" not in shown, (args, shown[-2000:])
        if outcome.code != 0:
            lines = [line for line in outcome.stderr.splitlines() if line.strip()]
            if batch and len(lines) > 1:
                assert all(line.startswith("line ") for line in lines[:-1]), lines
                lines = lines[-1:]
            assert len(lines) == 1, (args[:8], outcome.stderr[-2000:])
            assert lines[0].startswith(("trialctl: ", "nothing recorded", "recorded ")), lines
            added = self.topics_after(before)
            assert set(added) <= REFUSAL_TOPICS, (args[:8], added)
        return outcome


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Site]:
    root = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    for url in new_ledger(request.param, root / "demo.sqlite"):
        env = demo_environment(url, root)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TRIALCTL_HOME", env["TRIALCTL_HOME"])
            patch.setenv("TRIALCTL_LEDGER", url)
            patch.delenv("TRIALCTL_USER", raising=False)
            patch.chdir(root)
            consented = run_in_process(["log", "--patient", "P001", "--type", "ConsentSigned",
                                        "--json"])
            day_zero = re.search(r"signed_on=(\d{4}-\d{2}-\d{2})",
                                 json.loads(consented.stdout)["what"])
            assert day_zero is not None, consented
            engine = engine_for(url)
            yield Site(url, Path(env["TRIALCTL_HOME"]), root,
                       date.fromisoformat(day_zero.group(1)) - EXAMPLES_DAY_ZERO, engine)
            engine.dispose()
            # Whatever was accepted or refused, the ledger is whole and its views agree.
            app = open_ledger(url)
            try:
                report = verify_ledger(app.signed_recorder, url)
                assert report.ok, report
                assert compare_with_replay(app, catch_up(app)) is None
            finally:
                app.close()


def _example(site: Site, path: str) -> list[str]:
    example = re.sub(r"\d{4}-\d{2}-\d{2}", lambda m: (
        date.fromisoformat(m.group(0)) + site.shift).isoformat(), help_examples()[path])
    return shlex.split(example)[1:]


def _signed(args: list[str]) -> tuple[list[str], str]:
    """The args with --password-stdin, and the signer's password (and a spare) as stdin."""
    if "-u" not in args[:-1]:
        return args, ""
    user = args[args.index("-u") + 1]
    return [*args, "--password-stdin"], f"{demo_password(user)}\nnew-password-123\n"


def _flags(path: str) -> list[str]:
    command: Any = _click_command()
    for name in path.split():
        command = command.commands[name]
    return [opt for param in command.params for opt in param.opts if opt.startswith("--")]


@st.composite
def mutated_argv(draw: st.DrawFn, path: str, base: list[str]) -> list[str]:
    """The command's example with one to three changes: a value replaced, a token dropped,
    or one of the command's own flags added with a hostile value."""
    args = list(base)
    fixed = len(path.split())
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["replace", "drop", "add"]))
        spots = [i for i in range(fixed, len(args)) if args[i] != "-u" and args[i - 1] != "-u"]
        if kind == "replace" and spots:
            args[draw(st.sampled_from(spots))] = draw(hostile_text)
        elif kind == "drop" and spots:
            del args[draw(st.sampled_from(spots))]
        else:
            args[fixed:fixed] = [draw(st.sampled_from(_flags(path))), draw(hostile_text)]
    return args


@settings(FUZZ, max_examples=70)
@given(data=st.data())
def test_hostile_flags_of_every_writing_command(site: Site, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(WRITING), label="command")
    args, stdin = _signed(data.draw(mutated_argv(path, _example(site, path)), label="argv"))
    site.check(args, stdin)


def _write(site: Site, name: str, content: bytes) -> Path:
    path = site.work / name
    path.write_bytes(content)
    return path


@settings(FUZZ, max_examples=40)
@given(content=st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["ecog", "age", "anc", "platelets", "bilirubin",
                                     "creatinine", "pregnant", "x"]),
                    json_values, max_size=4).map(lambda v: json.dumps(v).encode()),
    st.sampled_from(NASTY_FILES)))
def test_hostile_screening_values_files(site: Site, content: bytes) -> None:
    args = _example(site, "record screen")
    args[args.index("--values-file") + 1] = str(_write(site, "values.json", content))
    site.check(*_signed(args))


def _batch_line(draw: st.DrawFn) -> dict[str, Any]:
    command = draw(st.sampled_from([*LINE_KINDS, "decide", "nonsense"]))
    names = list(LINE_KINDS[command].field_names()) if command in LINE_KINDS else ["x"]
    chosen = draw(st.lists(st.sampled_from([*names, "extra"]), max_size=6, unique=True))
    return {"command": command, "patient": draw(st.sampled_from(["P006", "P001", "P999"])),
            **{name: draw(json_values) for name in chosen}}


@st.composite
def batch_file(draw: st.DrawFn) -> tuple[str, bytes]:
    lines = [_batch_line(draw) for _ in range(draw(st.integers(1, 4)))]
    form = draw(st.sampled_from(["jsonl", "csv", "raw"]))
    if form == "jsonl":
        return "batch.jsonl", "".join(json.dumps(line) + "\n" for line in lines).encode()
    if form == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        columns = list(csv_columns())
        writer.writerow(draw(st.one_of(st.just(columns), st.lists(
            st.sampled_from([*columns, "", "bogus"]), min_size=1, max_size=6))))
        for line in lines:
            writer.writerow([str(line.get(column, "")) for column in columns])
        return "batch.csv", out.getvalue().encode("utf-8", "surrogatepass")
    return draw(st.sampled_from(["batch.jsonl", "batch.csv"])), draw(st.sampled_from(NASTY_FILES))


@settings(FUZZ, max_examples=40)
@given(batch=batch_file(), each=st.booleans())
def test_hostile_batch_files(site: Site, batch: tuple[str, bytes], each: bool) -> None:
    name, content = batch
    args = ["record", "--from", str(_write(site, name, content)), "-u", "ivan",
            *(["--each"] if each else []), "--password-stdin"]
    before = site.last_id()
    outcome = site.check(args, demo_password("ivan") + "\n", batch=True)
    if outcome.code != 0 and not each:
        # All or nothing: a refused batch signs none of its lines.
        assert set(site.topics_after(before)) <= REFUSAL_TOPICS


@st.composite
def protocol_file(draw: st.DrawFn) -> bytes:
    """The shipped protocol with up to three `key = value` lines given hostile values."""
    lines = resources.files("trialctl.protocols").joinpath(DEMO_PROTOCOL).read_text().splitlines()
    assignable = [i for i, line in enumerate(lines) if re.match(r"^\s*[\w-]+\s*=", line)]
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.sampled_from(assignable))
        key = lines[index].split("=", 1)[0]
        value = draw(st.one_of(
            json_scalars.map(lambda v: json.dumps(v, ensure_ascii=False)),
            st.sampled_from(['"1-99999999999"', "9" * 5000, "inf", "nan", "1979-05-27",
                             "[" * 5000 + "]" * 5000, '"' + "x" * 2_000_000 + '"', "{}",
                             "[[1, 2], [3]]", '"NCT' + "9" * 200 + '"'])))
        lines[index] = f"{key}= {value}"
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


@settings(FUZZ, max_examples=40)
@given(content=st.one_of(protocol_file(), st.sampled_from(NASTY_FILES)))
def test_hostile_protocol_files(site: Site, content: bytes) -> None:
    path = _write(site, "protocol.toml", content)
    site.check(*_signed(["trial", "register", str(path), "-u", "pat"]))


def _parsed(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _spoil_key(original: bytes, field: str, value: Any) -> bytes:
    document = json.loads(original)
    target = document["kdf"] if field in document.get("kdf", {}) else document
    target[field] = value
    return json.dumps(document).encode()


@settings(FUZZ, max_examples=40)
@given(change=st.one_of(
    st.tuples(st.sampled_from(["format", "user_id", "key_id", "aead", "nonce", "ciphertext",
                               "salt", "name", "n", "r", "p", "public_key", "kdf"]), json_values),
    st.sampled_from(NASTY_FILES)))
def test_hostile_key_files(site: Site, change: tuple[str, Any] | bytes) -> None:
    (key_file,) = (site.home / "keys" / "alice").iterdir()
    original = key_file.read_bytes()
    try:
        spoiled = change if isinstance(change, bytes) else _spoil_key(original, *change)
        key_file.write_bytes(spoiled)
        outcome = site.check(*_signed(["user", "grant-role", "ivan", "data-manager",
                                       "-u", "alice"]))
        if _parsed(spoiled) != _parsed(original):
            assert outcome.code != 0, outcome
    finally:
        key_file.write_bytes(original)



def _real_process(site: Site, args: list[str | bytes], stdin: str) -> Result:
    """A real `trialctl` process, its arguments as raw bytes where given."""
    done = subprocess.run([TRIALCTL, *args], input=stdin.encode(), capture_output=True,
                          timeout=120, cwd=site.work,
                          env={**os.environ, "TRIALCTL_HOME": str(site.home),
                               "TRIALCTL_LEDGER": site.url, "COLUMNS": "200"})
    return Result(done.returncode, done.stdout.decode(errors="replace"),
                  done.stderr.decode(errors="replace"))


def test_the_nastiest_inputs_as_real_processes(site: Site) -> None:
    """What only a real process shows: argv bytes that are not UTF-8 (the interpreter
    hands them over as lone surrogates), and files that defeat Python's own readers."""
    before = site.last_id()
    ivan = demo_password("ivan")
    not_utf8 = _real_process(site, ["record", "ae", "P006", "--id", b"AE\xff\xfe", "--term",
                                    "Neutrophils/granulocytes (ANC/AGC)", "--grade", "3",
                                    "--attribution", "probable", "--onset", b"2026-10-0\xff",
                                    "-u", "ivan", "--password-stdin"], ivan + "\n")
    assert_one_line_error(not_utf8)
    deep = _write(site, "deep.jsonl", b"[" * 200_000)
    assert_one_line_error(_real_process(
        site, ["record", "--from", str(deep), "-u", "ivan", "--password-stdin"], ivan + "\n"))
    (key_file,) = (site.home / "keys" / "alice").iterdir()
    original = key_file.read_bytes()
    try:
        key_file.write_bytes(b"7" * 5000)  # an integer over Python's 4,300-digit limit
        assert_one_line_error(_real_process(
            site, ["user", "grant-role", "ivan", "data-manager", "-u", "alice",
                   "--password-stdin"], demo_password("alice") + "\n"), "corrupt")
    finally:
        key_file.write_bytes(original)
    assert set(site.topics_after(before)) <= REFUSAL_TOPICS
