"""The dose-escalation committee packet: what the committee reads at a decision point,
pinned to the ledger's tree head when it was made and signed by its author.

A packet is one JSON document in the export manifests' shape (`signed` and `signatures`,
the signature over the RFC 8785 bytes of `signed`, `manifest.sign_document`):

    {"signed": {"format": "trialctl-committee-packet/v1", "ledger_id", "trial",
                "cohort_number", "tree_size", "root_hash", "made_at", "author": {…},
                "cohorts", "dlts", "recommendation", "decision", "pathways", "pending"},
     "signatures": [{"key_id", "signature"}]}

Its SHA-256 (of the file's bytes, as written) names it in the ledger: the author's
`PacketIssued`, each member's `PacketCountersigned` and the decision's `PacketCited` all
carry it. Countersignatures live in the ledger, not in the file, so the file's hash never
changes after it is issued. `check_packet` re-derives everything a reader relies on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from trialctl.domain.dose_paths import dose_path_rows, dose_paths
from trialctl.domain.escalation import OutOfRuleError
from trialctl.domain.trial import Trial, design_for
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.authority import choose_role
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.export_pages import leaf_hashes
from trialctl.ledger.keys import load_public_key, signature_is_valid
from trialctl.ledger.manifest import check_document_signature, sign_document, streamed_root
from trialctl.ledger.mapper import format_time
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.users import LedgerRecord

PACKET_FORMAT = "trialctl-committee-packet/v1"
# How many future cohorts the packet's dose-transition pathways enumerate.
PATHWAY_COHORTS = 2
_PAGE = 1000


class PacketError(LedgerError):
    """A packet that cannot be made, read, countersigned or cited."""


@dataclass(frozen=True)
class PacketEntry:
    """One ledger entry about a packet: who signed it, when, with which meaning."""

    position: int
    type: str
    payload: dict[str, Any]
    actor: dict[str, str]
    meaning: str
    recorded_at: str
    signature_ok: bool


# -- making a packet ---------------------------------------------------------------------


def _cohort_number(trial: Trial, cohort_number: int) -> int:
    if not 1 <= cohort_number <= len(trial.cohorts):
        raise PacketError(f"--cohort {cohort_number}: {trial.protocol_id} has cohorts 1 to "
                          f"{len(trial.cohorts)}")
    return cohort_number


def _dlt_listing(records: TrialActions, trial: Trial, members: list[str]) -> list[dict[str, Any]]:
    """Every adverse event of the cohort's patients with its adjudications, and whether
    each DLT counts now (derived from the current facts, never frozen)."""
    roster = records.roster(trial)
    rows = []
    for patient_id in members:
        state = roster[patient_id].state(trial.protocol)
        adjudications: dict[str, list[dict[str, Any]]] = {}
        for adjudication in state.get("dlt_adjudications", []):
            adjudications.setdefault(adjudication["ae_id"], []).append(adjudication)
        for ae in state.get("adverse_events", []):
            judged = adjudications.get(ae["ae_id"], [])
            rows.append({
                "patient": patient_id, "ae": ae["ae_id"], "term": ae.get("term"),
                "grade": ae.get("grade"), "onset": ae.get("onset"),
                "adjudications": [
                    {"is_dlt": a.get("is_dlt"), "rule": a.get("rule_code"),
                     "decided_on": a.get("decided_on"), "overridden": bool(a.get("overridden")),
                     "counts_now": bool(a.get("counts")), "unmet": list(a.get("unmet") or [])}
                    for a in judged
                ],
            })
    return rows


def _pathways(records: TrialActions, trial: Trial) -> dict[str, Any]:
    """The live dose-transition pathways for the next cohorts, from the trial's own path
    as its current facts give it; none when that path has left the 3+3 rules."""
    history = trial.evaluated_cohorts(records.roster(trial))
    design = design_for(trial.protocol)
    try:
        design.fit(history)
        rows = [dict(row) for row in dose_path_rows(dose_paths(design, history,
                                                               PATHWAY_COHORTS))]
    except (OutOfRuleError, ValueError) as e:
        return {"cohorts": PATHWAY_COHORTS, "rows": [], "unavailable": str(e)}
    return {"cohorts": PATHWAY_COHORTS, "rows": rows, "unavailable": None}


def _pending(trial: Trial, decided: bool, dlts: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The signatures this decision point still waits for."""
    pending = [{"what": f"DLT adjudication of {row['patient']} {row['ae']}",
                "signed_by": "an investigator"}
               for row in dlts if not row["adjudications"]]
    if not decided:
        pending.append({"what": f"the cohort {trial.current_cohort['number']} decision",
                        "signed_by": "an investigator (a principal investigator to override)"})
    pending.append({"what": "committee countersignatures (trialctl packet sign)",
                    "signed_by": "principal investigator, investigators, monitor"})
    return pending


def packet_content(records: TrialActions, trial_ref: str | None, cohort: int) -> dict[str, Any]:
    """What the committee reads for cohort `cohort`, from the trial as it stands now."""
    trial = records.trial(trial_ref)
    number = _cohort_number(trial, cohort)
    status = records.status(trial_ref)
    shown = status["cohorts"][number - 1]
    decision = next((d for d in status["decisions"] if d["cohort_number"] == number), None)
    recommendation = None
    step = trial.next_step(records.roster(trial))
    if decision is None and number == int(trial.current_cohort["number"]):
        expected = trial.expected_step(records.roster(trial))
        recommendation = {"step": step.text, "action": None if expected is None else
                          expected.action,
                          "next_level": None if expected is None else expected.next_level,
                          "mtd_level": None if expected is None else expected.mtd_level,
                          "reason": None if expected is None else expected.reason}
    dlts = _dlt_listing(records, trial, list(shown["patients"]) + list(shown["replaced"]))
    return {
        "trial": trial.protocol_id, "title": trial.protocol.title,
        "cohort_number": number, "cohorts": status["cohorts"],
        "dlts": dlts, "recommendation": recommendation, "decision": decision,
        "next": step.text, "pathways": _pathways(records, trial),
        "pending": _pending(trial, decision is not None, dlts),
    }


def make_packet(
    ledger: TrialLedger, actor: UnlockedUser, trial_ref: str | None, cohort: int,
    target: Path, now: datetime,
) -> dict[str, Any]:
    """Write the signed packet to `target` and record it as a `PacketIssued` entry; the
    file is removed again if recording fails, so a packet on disk is always in the ledger."""
    if target.exists():
        raise PacketError(f"{target} exists; a packet is never written over another")
    records = TrialActions(ledger)
    content = packet_content(records, trial_ref, cohort)
    recorder = ledger.signed_recorder
    tree_size = recorder.tree_size()
    root = streamed_root(leaf_hashes(recorder, tree_size)).hex()
    record = ledger.ledger_record()
    role = choose_role(actor.user, [LedgerRecord.PacketIssued.TOPIC]) or ""
    signed = {
        "format": PACKET_FORMAT, "ledger_id": record.ledger_id, "tree_size": tree_size,
        "root_hash": root, "made_at": format_time(now),
        "author": {"user_id": actor.user.user_id, "name": actor.user.name, "role": role,
                   "key_id": actor.keys.key_id, "public_key": actor.keys.public_key_hex},
        **content,
    }
    # Canonical-JSON-safe values only (no Decimal, no date objects) in what is signed.
    signed = json.loads(json.dumps(signed, default=str))
    data = sign_document(signed, actor.keys)
    sha = hashlib.sha256(data).hexdigest()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("xb") as handle:
        handle.write(data)
    try:
        record.record_packet(trial=content["trial"], cohort_number=content["cohort_number"],
                             tree_size=tree_size, root_hash=root, packet_sha256=sha)
        ids = ledger.record(actor, record)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    position = recorder.entries_for(ids)[0][0]
    return {"file": str(target), "sha256": sha, "trial": content["trial"],
            "cohort_number": content["cohort_number"], "tree_size": tree_size,
            "root_hash": root, "recorded_at_position": position,
            "recommendation": content["recommendation"], "pending": content["pending"]}


# -- reading packets back ----------------------------------------------------------------


def read_packet(path: Path) -> tuple[dict[str, Any], str]:
    """The packet document and the SHA-256 of its bytes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise PacketError(f"no packet at {path}") from e
    except OSError as e:
        raise PacketError(f"cannot read {path}: {e.strerror}") from e
    try:
        document = json.loads(data)
    except ValueError as e:
        raise PacketError(f"{path} is not a JSON packet: {e}") from e
    signed = document.get("signed") if isinstance(document, dict) else None
    if not isinstance(signed, dict) or signed.get("format") != PACKET_FORMAT:
        raise PacketError(f"{path} is not a trialctl committee packet ({PACKET_FORMAT})")
    return document, hashlib.sha256(data).hexdigest()


def packet_entries(ledger: TrialLedger, sha256: str) -> Iterator[PacketEntry]:
    """Every ledger entry naming this packet, in position order, each with whether its
    signature verifies with the key its signer held."""
    topics = [LedgerRecord.PacketIssued.TOPIC, LedgerRecord.PacketCountersigned.TOPIC,
              LedgerRecord.PacketCited.TOPIC]
    recorder = ledger.signed_recorder
    start: int | None = None
    while True:
        notifications = recorder.select_notifications(start=start, limit=_PAGE, topics=topics)
        for notification in notifications:
            parsed = parse_entry(notification.state)
            statement = parsed.statement
            if statement["payload"].get("packet_sha256") != sha256:
                continue
            yield PacketEntry(
                int(statement["position"]), statement["type"], statement["payload"],
                statement["actor"], statement["meaning"], statement["recorded_at"],
                _entry_signature_ok(ledger, statement["actor"], parsed),
            )
        if len(notifications) < _PAGE:
            return
        start = notifications[-1].id + 1


def _entry_signature_ok(ledger: TrialLedger, actor: dict[str, str], parsed: Any) -> bool:
    try:
        public = ledger.get_user(actor["user_id"]).public_key_for(actor["key_id"])
    except LedgerError:
        return False
    if public is None or not parsed.signatures:
        return False
    return bool(signature_is_valid(load_public_key(public), parsed.signatures[0].signature,
                                   parsed.statement_bytes))


def issued_packet(ledger: TrialLedger, sha256: str) -> PacketEntry:
    for entry in packet_entries(ledger, sha256):
        if entry.type == LedgerRecord.PacketIssued.TOPIC:
            return entry
    raise PacketError(f"no packet with SHA-256 {sha256[:16]}… was issued in this ledger")


def check_countersign(ledger: TrialLedger, path: Path, user_id: str) -> dict[str, Any]:
    """The packet `user_id` may countersign, or the rule that refuses it: the packet must
    verify and be issued here, the author may not countersign their own, nor anyone twice."""
    document, sha = read_packet(path)
    findings = check_packet(ledger, path)["findings"]
    if findings:
        raise PacketError(f"{path} does not verify: {findings[0]}")
    entries = list(packet_entries(ledger, sha))
    issued = next(e for e in entries if e.type == LedgerRecord.PacketIssued.TOPIC)
    if issued.actor["user_id"] == user_id:
        raise PacketError(f"refused: {user_id} wrote this packet; its author cannot "
                          "countersign it")
    for entry in entries:
        if entry.type == LedgerRecord.PacketCountersigned.TOPIC and \
                entry.actor["user_id"] == user_id:
            raise PacketError(f"refused: {user_id} already countersigned this packet "
                              f"(entry #{entry.position})")
    ledger.check_may_sign(user_id, [LedgerRecord.PacketCountersigned.TOPIC])
    return {"sha256": sha, "trial": document["signed"]["trial"],
            "cohort_number": document["signed"]["cohort_number"]}


def countersign(ledger: TrialLedger, actor: UnlockedUser, path: Path) -> dict[str, Any]:
    checked = check_countersign(ledger, path, actor.user.user_id)  # again, now unlocked
    record = ledger.ledger_record()
    record.countersign_packet(trial=checked["trial"], cohort_number=checked["cohort_number"],
                              packet_sha256=checked["sha256"])
    ids = ledger.record(actor, record)
    return {**checked, "recorded_at_position": ledger.signed_recorder.entries_for(ids)[0][0],
            "countersigned_by": actor.user.user_id}


def check_citation(ledger: TrialLedger, trial: Trial, sha256: str) -> None:
    """A decision may cite a packet recorded in this ledger for the cohort it decides."""
    text = sha256.lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise PacketError(f"--packet {sha256!r} is not a SHA-256 (64 hex digits)")
    issued = issued_packet(ledger, text)
    due = int(trial.current_cohort["number"])
    if issued.payload["trial"] != trial.protocol_id or issued.payload["cohort_number"] != due:
        raise PacketError(
            f"--packet {text[:16]}… is the packet for {issued.payload['trial']} cohort "
            f"{issued.payload['cohort_number']}, not for {trial.protocol_id} cohort {due}")


def cite(ledger: TrialLedger, trial: Trial, sha256: str) -> LedgerRecord:
    """The ledger record with a pending `PacketCited`, to sign in the decision's batch."""
    check_citation(ledger, trial, sha256)
    record = ledger.ledger_record()
    record.cite_packet(trial=trial.protocol_id, cohort_number=int(trial.current_cohort["number"]),
                       packet_sha256=sha256.lower())
    return record


# -- verifying ---------------------------------------------------------------------------


def check_packet(ledger: TrialLedger, path: Path) -> dict[str, Any]:
    """Every finding about a packet: its author's signature, its entry in the ledger (same
    author, key, trial, cohort and tree head), the tree head against the ledger's own
    entries, and each countersignature's and citation's signed entry."""
    document, sha = read_packet(path)
    signed = document["signed"]
    findings = []
    problem = check_document_signature(document, "author", "packet", "author")
    if problem:
        findings.append(problem)
    author = signed.get("author") if isinstance(signed.get("author"), dict) else {}
    entries = list(packet_entries(ledger, sha))
    issued = next((e for e in entries if e.type == LedgerRecord.PacketIssued.TOPIC), None)
    if signed.get("ledger_id") != ledger.ledger_record().ledger_id:
        findings.append("the packet names another ledger")
    if issued is None:
        findings.append(f"no PacketIssued entry in this ledger names SHA-256 {sha[:16]}… "
                        "(changed since it was issued, or never issued here)")
    else:
        findings.extend(_issue_findings(ledger, signed, author, issued))
    findings.extend(f"entry #{e.position} ({e.type.rpartition('.')[2]} by "
                    f"{e.actor['user_id']}): signature does not verify"
                    for e in entries if not e.signature_ok)
    countersigned = [e for e in entries if e.type == LedgerRecord.PacketCountersigned.TOPIC]
    cited = [e for e in entries if e.type == LedgerRecord.PacketCited.TOPIC]
    return {
        "file": str(path), "sha256": sha, "ok": not findings, "findings": findings,
        "trial": signed.get("trial"), "cohort_number": signed.get("cohort_number"),
        "tree_size": signed.get("tree_size"), "root_hash": signed.get("root_hash"),
        "author": author.get("user_id"),
        "issued_at_position": None if issued is None else issued.position,
        "countersignatures": [_shown(e) for e in countersigned],
        "cited_by_decision": [_shown(e) for e in cited],
    }


def _issue_findings(ledger: TrialLedger, signed: dict[str, Any], author: dict[str, Any],
                    issued: PacketEntry) -> list[str]:
    findings = []
    if issued.actor.get("user_id") != author.get("user_id") or \
            issued.actor.get("key_id") != author.get("key_id"):
        findings.append(f"entry #{issued.position} was signed by "
                        f"{issued.actor.get('user_id')}, not the packet's author")
    try:
        held = ledger.get_user(str(author.get("user_id"))).public_key_for(
            str(author.get("key_id")))
    except LedgerError:
        held = None
    if held != author.get("public_key"):
        findings.append(f"the author's public key is not one {author.get('user_id')} holds "
                        "in this ledger")
    for name in ("trial", "cohort_number", "tree_size", "root_hash"):
        if issued.payload.get(name) != signed.get(name):
            findings.append(f"{name} {signed.get(name)!r} differs from entry "
                            f"#{issued.position}'s {issued.payload.get(name)!r}")
    size = signed.get("tree_size")
    if not isinstance(size, int) or not 0 <= size <= issued.position:
        findings.append(f"tree size {size!r} is not a tree head before entry "
                        f"#{issued.position}")
    else:
        root = streamed_root(leaf_hashes(ledger.signed_recorder, size)).hex()
        if root != signed.get("root_hash"):
            findings.append(f"root hash differs from the ledger's root at tree size {size} "
                            f"({root[:16]}…)")
    return findings


def _shown(entry: PacketEntry) -> dict[str, Any]:
    return {"position": entry.position, "user_id": entry.actor["user_id"],
            "name": entry.actor["name"], "role": entry.actor["role"],
            "meaning": entry.meaning, "recorded_at": entry.recorded_at}
