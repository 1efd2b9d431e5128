"""The auditor's bundle: `export bundle DIR -u USER` on SQLite and PostgreSQL, checked offline
by `verify --bundle DIR` and by docs/examples/independent_verify.py, which both catch an edited
entry, a dropped entry and a replaced key, even when the manifest is rewritten to match (its
signature then no longer verifies), and a manifest whose signature was removed."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Result, assert_one_line_error, trialctl
from trialctl.ledger.bundle import BUNDLE_FORMAT, signature_findings
from trialctl.ledger.keys import KeyPair, open_key_file
from trialctl.ledger.location import trialctl_home
from trialctl.ledger.manifest import sign_document

ROOT = Path(__file__).resolve().parent.parent
INDEPENDENT = ROOT / "docs" / "examples" / "independent_verify.py"
PASSWORD = "alice-password"


def ok(*args: str, stdin: str = "") -> Result:
    result = trialctl(*args, stdin=stdin)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    return result


def independent(bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(INDEPENDENT), "--bundle", str(bundle), "--json"],
                          capture_output=True, text=True, timeout=120)


def rehash_manifest(bundle: Path) -> None:
    """What a careful forger without the exporter's key does: make the manifest's hashes
    match the edited files, and keep the old signature."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    for item in manifest["signed"]["files"]:
        data = (bundle / item["name"]).read_bytes()
        item["sha256"], item["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def strip_signature(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    (bundle / "manifest.json").write_text(json.dumps({**manifest, "signatures": []}),
                                          encoding="utf-8")


def details(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [f["detail"] for f in json.loads(result.stdout)["findings"]]


def edit_entry(bundle: Path) -> None:
    lines = (bundle / "entries.jsonl").read_text(encoding="utf-8").splitlines()
    item = json.loads(lines[2])
    entry = base64.b64decode(item["entry"]).replace(b'"monitor"', b'"auditor"', 1)
    lines[2] = json.dumps({**item, "entry": base64.b64encode(entry).decode()})
    (bundle / "entries.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def drop_entry(bundle: Path) -> None:
    lines = (bundle / "entries.jsonl").read_text(encoding="utf-8").splitlines()
    del lines[2]
    (bundle / "entries.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def replace_key(bundle: Path) -> None:
    keys = json.loads((bundle / "keys.json").read_text(encoding="utf-8"))
    public = bytes(range(32))
    keys[0] = {**keys[0], "public_key": public.hex(), "key_id": hashlib.sha256(public).hexdigest()}
    (bundle / "keys.json").write_text(json.dumps(keys), encoding="utf-8")


def test_a_bundle_verifies_offline_and_catches_edits(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    ok("init", "--admin", "alice", "--name", "Alice Adams", "--ledger", ledger_url,
       "--password-stdin", stdin=f"{PASSWORD}\n")
    ok("user", "add", "bob", "--name", "Bob", "--role", "monitor", "--ledger", ledger_url,
       "-u", "alice", "--password-stdin", stdin=f"{PASSWORD}\nbob-password\n")
    note = tmp_path / "cp.txt"
    ok("checkpoint", "-u", "alice", "-o", str(note), "--ledger", ledger_url,
       "--password-stdin", stdin=f"{PASSWORD}\n")
    bundle = tmp_path / "bundle"
    made = json.loads(ok("export", "bundle", str(bundle), "-c", str(note), "--ledger",
                         ledger_url, "-u", "bob", "--password-stdin", "--json",
                         stdin="bob-password\n").stdout)
    assert made["tree_size"] == 4 and made["exported_by"]["user_id"] == "bob"
    signed = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert {**signed["signed"], "bundle": str(bundle)} == made
    assert signed["signatures"][0]["key_id"] == made["exported_by"]["key_id"]
    names = {f["name"] for f in made["files"]}
    assert {"entries.jsonl", "keys.json", "FORMAT.md", "checkpoints/000-cp.txt"} <= names
    keys = json.loads((bundle / "keys.json").read_text(encoding="utf-8"))
    assert [(k["user_id"], k["valid_from"], k["valid_to"]) for k in keys] == \
        [("alice", 2, None), ("bob", 3, None)]

    report = json.loads(ok("verify", "--bundle", str(bundle), "--json").stdout)
    assert report["ok"] and report["entries_checked"] == 4
    assert report["checkpoints"][0]["status"] == "ok"
    clean = independent(bundle)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # A bundle is never written over.
    assert_one_line_error(trialctl("export", "bundle", str(bundle), "--ledger", ledger_url,
                                   "-u", "bob"), "not an empty directory")

    unsigned = tmp_path / "unsigned"
    shutil.copytree(bundle, unsigned)
    strip_signature(unsigned)
    for result in (trialctl("verify", "--bundle", str(unsigned), "--json"),
                   independent(unsigned)):
        assert result.returncode == 1, result
        assert details(result) == ["manifest.json carries no signature"]

    for tamper, check in ((edit_entry, "signature"), (drop_entry, "sequence"),
                          (replace_key, "bundle")):
        for rehash in (False, True):
            copy = tmp_path / f"{tamper.__name__}-{rehash}"
            shutil.copytree(bundle, copy)
            tamper(copy)
            if rehash:
                rehash_manifest(copy)
            result = trialctl("verify", "--bundle", str(copy), "--json")
            assert result.returncode == 1, (tamper.__name__, result)
            found = json.loads(result.stdout)["findings"]
            assert check in {f["check"] for f in found}, (tamper.__name__, found)
            # The manifest catches the unrehashed copy; the entries catch both; the old
            # signature over a rehashed manifest no longer verifies.
            assert any("SHA-256" in f["detail"] for f in found) != rehash
            theirs = independent(copy)
            assert theirs.returncode == 1, (tamper.__name__, theirs.stdout, theirs.stderr)
            assert check in {f["check"] for f in json.loads(theirs.stdout)["findings"]}
            for detail_list in ([f["detail"] for f in found], details(theirs)):
                assert any("manifest's signature by key" in d and "does not verify" in d
                           for d in detail_list) == rehash, detail_list


    # The exporter's own valid key cannot pass the bundle off as another ledger's.
    renamed = tmp_path / "renamed"
    shutil.copytree(bundle, renamed)
    resign_manifest(renamed, ledger_id="00000000-0000-4000-8000-000000000000")
    for result in (trialctl("verify", "--bundle", str(renamed), "--json"),
                   independent(renamed)):
        assert result.returncode == 1, result
        assert [d for d in details(result) if "names ledger" in d] == [
            f"manifest.json: names ledger '00000000-0000-4000-8000-000000000000', but the "
            f"entries open ledger '{made['ledger_id']}'"], details(result)


def resign_manifest(bundle: Path, **changes: str) -> None:
    """What an exporter with a valid key could do: change the manifest and sign it again."""
    document = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    signed = {**document["signed"], **changes}
    key_id = signed["exported_by"]["key_id"]
    keys = open_key_file(trialctl_home() / "keys" / "bob" / f"{key_id}.json", "bob-password")
    (bundle / "manifest.json").write_bytes(sign_document(signed, keys))


def test_a_directory_that_is_not_a_bundle_is_one_line(tmp_path: Path, home: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_line_error(trialctl("verify", "--bundle", str(tmp_path / "empty")), "bundle")


@pytest.mark.parametrize(
    "flag", ["--projections", "--ledger-id=f621dfd5-6c7d-4ee5-be43-bb774b8a280a"])
def test_bundle_refuses_ledger_only_flags(flag: str, tmp_path: Path, home: Path) -> None:
    result = trialctl("verify", "--bundle", str(tmp_path), flag)
    assert_one_line_error(result, "--bundle")
    assert result.returncode == 2


def test_the_manifest_signature_needs_a_key_the_entries_show_standing() -> None:
    """The rule behind the bundle's signature check, in process: the signer's key as the
    entries record it must be theirs and not rotated or revoked inside the bundle."""
    keys = KeyPair.generate()
    signer = {"user_id": "bob", "name": "Bob", "key_id": keys.key_id,
              "public_key": keys.public_key_hex}
    signed = {"format": BUNDLE_FORMAT, "tree_size": 6, "root_hash": "ab" * 32,
              "exported_by": signer, "files": []}
    document = json.loads(sign_document(signed, keys))
    standing = {"user_id": "bob", "key_id": keys.key_id, "public_key": keys.public_key_hex,
                "valid_from": 3, "valid_to": None}
    assert signature_findings(document, [standing], 6, "ab" * 32) == []
    for given, size, root, why in (
        ({**standing, "valid_to": 5}, 6, "ab" * 32, "not valid at tree size 6"),
        ({**standing, "user_id": "carol"}, 6, "ab" * 32, "do not give to 'bob'"),
        ({**standing, "key_id": "00" * 32}, 6, "ab" * 32, "do not give to 'bob'"),
        (standing, 7, "ab" * 32, "tree size or root"),
        (standing, 6, "cd" * 32, "tree size or root"),
    ):
        (finding,) = signature_findings(document, [given], size, root)
        assert why in finding, (given, finding)
    # Another signer named with the same signature, or no signature at all.
    other = KeyPair.generate()
    renamed = {**document, "signed": {**signed, "exported_by": {
        **signer, "key_id": other.key_id, "public_key": other.public_key_hex}}}
    (finding,) = signature_findings(renamed, [standing], 6, "ab" * 32)
    assert "does not verify" in finding
    assert signature_findings({**document, "signatures": []}, [standing], 6, "ab" * 32) == \
        ["manifest.json carries no signature"]
