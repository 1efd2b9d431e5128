"""`trialctl export odm`: the trial as CDISC ODM 1.3.2, with its audit trail and signatures
in ODM's own slots, valid against the plain ODM 1.3.2 XSD (no vendor extensions).

- Study / MetaDataVersion come from the protocol and the fact declarations
  (`domain/facts.py`): one form per kind of fact, one item per stored field, the protocol's
  screening fields as their own item group, code lists for the values the rules allow.
- ClinicalData holds one SubjectData per patient; each signed patient entry is one FormData
  (FormRepeatKey = the record version that holds it). A correction is a FormData of the
  corrected form with TransactionType="Update" and only the changed items: the file is
  `Transactional`, as ODM asks of an archive that carries its changes.
- Every ItemData has an AuditRecord (who, where, when, the reason for a change, and in
  SourceID the ledger position and entry hash); every FormData has a Signature whose
  CryptoBindingManifest carries the Ed25519 key id and signature of the entry.
- Source data verification and queries are about records already written, so each is a
  FormData of the record's form with TransactionType="Context" (no data changed): a review
  is one per record it covers, with its AuditRecord and a Signature to the SignatureDef
  `SD.SDV` ("reviewed: source data verified"); a query step (raised, answered, reopened,
  closed) carries an Annotation, its Comment the text and its Flag the query's state from
  the code list `CL.QUERY_STATE`, with the step's own AuditRecord and Signature.

Written with lxml's incremental `xmlfile`: the metadata first, then one patient entry at a
time, read through `export_pages`, so memory stays flat however long the ledger is.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree
from lxml.builder import ElementMaker

from trialctl import __version__
from trialctl.domain.eligibility_criteria import screening_fields
from trialctl.domain.facts import FACTS, AdverseEvent, Column, Correction, Fact, Response
from trialctl.domain.protocol import Protocol
from trialctl.domain.recist import ResponseCategory, TargetLesion
from trialctl.domain.rules import ATTRIBUTIONS
from trialctl.domain.trial import Trial
from trialctl.ledger.export_pages import PAGE, LedgerEntry, patient_record_ids, record_entries
from trialctl.ledger.export_run import ExportSource
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.roles import Meaning
from trialctl.ledger.users import LedgerRecord

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
_E = ElementMaker(namespace=ODM_NS, nsmap={None: ODM_NS})
PATIENT_EVENTS = "trialctl.Patient."
STUDY_EVENT = "SE.ONSTUDY"
SCREENING_VALUES = "SCREENING_VALUES"
LESIONS = "LESION"
# How a field's declared type (facts.Column.shown) is written in ODM.
_DATA_TYPES = {"integer": "integer", "decimal": "float", "boolean": "boolean",
               "date": "date", "date-time": "datetime"}
_MEANINGS = {
    Meaning.RECORDED: "I recorded these data as true and complete",
    Meaning.REVIEWED: "I reviewed these data",
    Meaning.APPROVED: "I approve this record (adjudication or decision)",
    Meaning.CORRECTED: "I corrected these data, for the reason given",
    Meaning.AUTHORED: "I authored this record",
    Meaning.REVOKED: "I revoked this access",
    Meaning.ATTEMPTED: "I attempted this action (refused)",
}
FACT_BY_EVENT: dict[str, type[Fact]] = {fact.EVENT: fact for fact in FACTS}
REVIEWED_EVENT = "RecordsReviewed"
SDV_SIGNATURE = "SD.SDV"
QUERY_STATES = "CL.QUERY_STATE"
ANNOTATION_KINDS = "CL.ANNOTATION_KIND"
# A query step: the state it leaves the query in, who wrote its text (ODM's Comment
# SponsorOrSite), and the payload field holding that text.
_QUERY_STEPS = {
    "QueryRaised": ("open", "Sponsor", "text"),
    "QueryAnswered": ("answered", "Site", "text"),
    "QueryReopened": ("open", "Sponsor", "text"),
    "QueryClosed": ("closed", "Sponsor", None),
}


def _name(kind: str) -> str:
    return kind.upper().replace("-", "_")


def form_oid(fact: type[Fact]) -> str:
    return f"F.{_name(fact.KIND)}"


def group_oid(fact: type[Fact], part: str | None = None) -> str:
    return f"IG.{_name(fact.KIND)}" + (f".{part}" if part else "")


def item_oid(fact: type[Fact], name: str, part: str | None = None) -> str:
    return f"IT.{_name(fact.KIND)}." + (f"{part}." if part else "") + name.upper()


def user_oid(user_id: str) -> str:
    return f"U.{user_id}"


def signature_oid(meaning: str) -> str:
    return f"SD.{meaning.upper()}"


def value_text(value: Any) -> str:
    """A stored value as ODM text: booleans as XML booleans, objects as canonical JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _text(tag: str, text: str) -> Any:
    return getattr(_E, tag)(_E.TranslatedText(text, {_XML_LANG: "en"}))


# -- metadata: what each form holds --------------------------------------------------------


@dataclass(frozen=True)
class Item:
    oid: str
    name: str
    data_type: str
    text: str
    code_list: str | None = None


@dataclass(frozen=True)
class Group:
    oid: str
    name: str
    repeating: bool
    items: tuple[Item, ...]


def _code_lists(protocol: Protocol) -> dict[tuple[str, str], tuple[str, str, list[str]]]:
    """(fact kind, field) → (code list OID, data type, allowed values), from the rules and
    the protocol: the values a recording is checked against."""
    from trialctl.domain.facts import DltAdjudication, Dose, Observation

    return {
        (AdverseEvent.KIND, "attribution"): ("CL.ATTRIBUTION", "text", list(ATTRIBUTIONS)),
        (AdverseEvent.KIND, "grade"): ("CL.CTCAE_GRADE", "integer",
                                       [str(g) for g in range(1, 6)]),
        (Response.KIND, "category"): ("CL.RECIST", "text", [c.value for c in ResponseCategory]),
        (Dose.KIND, "agent"): ("CL.AGENT", "text", [a.name for a in protocol.agents]),
        (DltAdjudication.KIND, "rule_code"): ("CL.DLT_RULE", "text",
                                             [r.code for r in protocol.dlt.rules]),
        (Observation.KIND, "kind"): ("CL.OBSERVATION", "text",
                                     [o.code for o in protocol.observations]),
    }


def _data_type(shown: str) -> str:
    return _DATA_TYPES.get(shown.removesuffix(" or null"), "text")


def _column_item(fact: type[Fact], column: Column, lists: dict[Any, Any]) -> Item:
    code = lists.get((fact.KIND, column.name))
    text = column.text or column.name.replace("_", " ")
    return Item(item_oid(fact, column.name), column.name, _data_type(column.shown), text,
                code[0] if code else None)


def form_groups(fact: type[Fact], protocol: Protocol) -> tuple[Group, ...]:
    """The item groups of a fact's form: its stored fields, plus the protocol's screening
    fields for screening and one repeating group per target lesion for responses."""
    lists = _code_lists(protocol)
    special = {"values"} if fact.KIND == "screening" else {"lesions"} if fact is Response else set()
    main = Group(group_oid(fact), fact.TEXT, False, tuple(
        _column_item(fact, c, lists) for c in fact.columns() if c.name not in special))
    if fact.KIND == "screening":
        values = tuple(Item(item_oid(fact, f, SCREENING_VALUES), f, "text", f"screening value {f}")
                       for f in screening_fields(protocol.eligibility_criteria))
        return main, Group(group_oid(fact, SCREENING_VALUES), "screening values", False, values)
    if fact is Response:
        lesion = tuple(
            Item(item_oid(fact, f.name, LESIONS), f.name,
                 "boolean" if f.name == "is_lymph_node"
                 else "float" if f.name.endswith("_mm") else "text",
                 f"target lesion {f.name.replace('_', ' ')}")
            for f in fields(TargetLesion))
        return main, Group(group_oid(fact, LESIONS), "target lesions", True, lesion)
    return (main,)


# One form per kind of record: a fact signed as a second event type (a DLT override is a
# DLT adjudication signed by the principal investigator) fills the same form.
FORM_FACTS = tuple(
    fact for n, fact in enumerate(FACTS)
    if fact is not Correction and fact.KIND not in {f.KIND for f in FACTS[:n]}
)


def study_element(trial: Trial, ledger_name: str) -> Any:
    protocol = trial.protocol
    all_groups = {fact: form_groups(fact, protocol) for fact in FORM_FACTS}
    metadata = _E.MetaDataVersion(
        _E.Protocol(_E.StudyEventRef(StudyEventOID=STUDY_EVENT, OrderNumber="1",
                                     Mandatory="Yes")),
        _E.StudyEventDef(
            *(_E.FormRef(FormOID=form_oid(f), OrderNumber=str(n), Mandatory="No")
              for n, f in enumerate(FORM_FACTS, start=1)),
            OID=STUDY_EVENT, Name="on study", Repeating="No", Type="Common"),
        *(_E.FormDef(
            _text("Description", fact.TEXT),
            *(_E.ItemGroupRef(ItemGroupOID=g.oid, Mandatory="No") for g in groups),
            OID=form_oid(fact), Name=fact.KIND, Repeating="Yes")
          for fact, groups in all_groups.items()),
        *(_E.ItemGroupDef(
            *(_E.ItemRef(ItemOID=i.oid, Mandatory="No") for i in g.items),
            OID=g.oid, Name=g.name, Repeating="Yes" if g.repeating else "No")
          for groups in all_groups.values() for g in groups),
        *(_E.ItemDef(
            _text("Description", i.text),
            *([_E.CodeListRef(CodeListOID=i.code_list)] if i.code_list else []),
            OID=i.oid, Name=i.name, DataType=i.data_type)
          for groups in all_groups.values() for g in groups for i in g.items),
        *(_E.CodeList(*(_E.EnumeratedItem(CodedValue=v) for v in values),
                      OID=oid, Name=oid.removeprefix("CL.").lower(), DataType=data_type)
          for oid, data_type, values in [*_code_lists(protocol).values(),
                                         *_annotation_code_lists()] if values),
        OID=metadata_oid(trial), Name=f"{protocol.id} as registered in {ledger_name}",
    )
    return _E.Study(
        _E.GlobalVariables(_E.StudyName(protocol.id), _E.StudyDescription(protocol.title),
                           _E.ProtocolName(protocol.id)),
        metadata,
        OID=study_oid(trial),
    )


def _annotation_code_lists() -> list[tuple[str, str, list[str]]]:
    """The values an Annotation's Flag takes: the kind of note and a query's state."""
    return [(ANNOTATION_KINDS, "text", ["query"]),
            (QUERY_STATES, "text", sorted({step[0] for step in _QUERY_STEPS.values()}))]


def study_oid(trial: Trial) -> str:
    return f"ST.{trial.protocol_id}"


def metadata_oid(trial: Trial) -> str:
    return f"MDV.{trial.protocol_id}.1"


def admin_element(
    trial: Trial, users: list[tuple[str, str]], location: tuple[str, str]
) -> Any:
    """Users (id, printed name), the site and one SignatureDef per signature meaning."""
    location_oid, location_name = location
    return _E.AdminData(
        *(_E.User(_E.LoginName(user_id), _E.DisplayName(name), _E.FullName(name),
                  _E.LocationRef(LocationOID=location_oid), OID=user_oid(user_id))
          for user_id, name in users),
        _E.Location(
            _E.MetaDataVersionRef(StudyOID=study_oid(trial), MetaDataVersionOID=metadata_oid(trial),
                                  EffectiveDate=trial.created_on.astimezone(UTC).date().isoformat()),
            OID=location_oid, Name=location_name, LocationType="Site"),
        *(_E.SignatureDef(
            _E.Meaning(f"{meaning.value}: {text}"),
            _E.LegalReason(
                "21 CFR 11.50 and 11.70: an Ed25519 signature over the entry's RFC 8785 "
                f"canonical statement, which names the signer and the meaning {meaning.value!r}"),
            OID=signature_oid(meaning.value), Methodology="Digital")
          for meaning, text in _MEANINGS.items()),
        _E.SignatureDef(
            _E.Meaning(f"{Meaning.REVIEWED.value}: source data verified: I verified these "
                       "records against the source documents"),
            _E.LegalReason(
                "21 CFR 11.50 and 11.70: an Ed25519 signature over the review entry's RFC 8785 "
                "canonical statement, which names the reviewer, the records reviewed (their "
                "positions and entry hashes) and the meaning 'reviewed'"),
            OID=SDV_SIGNATURE, Methodology="Digital"),
        StudyOID=study_oid(trial),
    )


# -- clinical data: one entry at a time ------------------------------------------------------


def _audit(entry: LedgerEntry, location_oid: str, reason: str | None) -> Any:
    statement = entry.statement
    parts = [_E.UserRef(UserOID=user_oid(statement["actor"]["user_id"])),
             _E.LocationRef(LocationOID=location_oid),
             _E.DateTimeStamp(statement["recorded_at"])]
    if reason is not None:
        parts.append(_E.ReasonForChange(reason))
    parts.append(_E.SourceID(
        f"trialctl ledger position {entry.position}, entry sha256 {entry.entry_hash}"))
    return _E.AuditRecord(*parts)


def _signature(entry: LedgerEntry, location_oid: str, definition: str | None = None) -> Any:
    statement = entry.statement
    binding = " ".join(
        f"ed25519 key {s.key_id} signature {base64.b64encode(s.signature).decode('ascii')}"
        for s in entry.signatures)
    return _E.Signature(
        _E.UserRef(UserOID=user_oid(statement["actor"]["user_id"])),
        _E.LocationRef(LocationOID=location_oid),
        _E.SignatureRef(SignatureOID=definition or signature_oid(statement["meaning"])),
        _E.DateTimeStamp(statement["recorded_at"]),
        _E.CryptoBindingManifest(binding),
    )


def _item_data(oid: str, value: Any, audit: Any) -> Any:
    attributes = {"ItemOID": oid}
    if value is None:
        attributes["IsNull"] = "Yes"
    else:
        attributes["Value"] = value_text(value)
    return _E.ItemData(audit, **attributes)


def _groups_data(
    fact: type[Fact], values: dict[str, Any], protocol: Protocol, audit: Any,
) -> Iterator[Any]:
    """ItemGroupData for a fact's stored values (all of them, or a correction's changes)."""
    groups = form_groups(fact, protocol)
    main = groups[0]
    present = [i for i in main.items if i.name in values]
    if present:
        yield _E.ItemGroupData(*(_item_data(i.oid, values[i.name], _copy(audit))
                                 for i in present), ItemGroupOID=main.oid)
    if fact.KIND == "screening" and isinstance(values.get("values"), dict):
        screened = values["values"]
        known = {i.name: i.oid for i in groups[1].items}
        yield _E.ItemGroupData(*(_item_data(known[name], screened[name], _copy(audit))
                                 for name in known if name in screened),
                               ItemGroupOID=groups[1].oid)
    if fact is Response and isinstance(values.get("lesions"), list):
        for key, lesion in enumerate(values["lesions"], start=1):
            yield _E.ItemGroupData(*(_item_data(i.oid, lesion.get(i.name), _copy(audit))
                                     for i in groups[1].items),
                                   ItemGroupOID=groups[1].oid, ItemGroupRepeatKey=str(key))


def _copy(element: Any) -> Any:
    return copy.deepcopy(element)  # an lxml element has one parent: each item its own record


@dataclass
class SubjectForms:
    """What one patient's entries so far tell the later ones: each version's fact (so a
    correction finds the form it updates), each correction's target (so a review or query
    of a correction lands on the corrected form) and each query's record and steps."""

    kinds: dict[int, type[Fact]] = field(default_factory=dict)
    targets: dict[int, int] = field(default_factory=dict)
    queries: dict[str, list[int]] = field(default_factory=dict)  # id → [version, steps]

    def form_of(self, version: int) -> tuple[str, int] | None:
        """The form OID and repeat key holding a record version, if it is a form."""
        key = self.targets.get(version, version)
        fact = self.kinds.get(key)
        return None if fact is None else (form_oid(fact), key)


def entry_forms(entry: LedgerEntry, protocol: Protocol, location_oid: str,
                subject: SubjectForms) -> list[Any]:
    """Every FormData one patient entry gives: its data, or the records a review or query
    step is about."""
    event = entry.statement["type"].removeprefix(PATIENT_EVENTS)
    if event == REVIEWED_EVENT:
        return _review_forms(entry, location_oid, subject)
    if event in _QUERY_STEPS:
        found = _query_form(entry, event, location_oid, subject)
        return [] if found is None else [found]
    made = form_data(entry, protocol, location_oid, subject.kinds)
    if made is not None and made.get("TransactionType") == "Update":
        subject.targets[entry.version] = int(made.get("FormRepeatKey"))
    return [] if made is None else [made]


def _context_form(entry: LedgerEntry, location_oid: str, form: tuple[str, int],
                  definition: str | None, *notes: Any) -> Any:
    """A FormData that changes no data: it carries one later entry's audit record and
    signature (and notes) on the record it is about. Nothing changed, so no
    ReasonForChange; the entry in SourceID names the records it cites, by hash."""
    return _E.FormData(_audit(entry, location_oid, None),
                       _signature(entry, location_oid, definition), *notes,
                       FormOID=form[0], FormRepeatKey=str(form[1]), TransactionType="Context")


def _review_forms(entry: LedgerEntry, location_oid: str, subject: SubjectForms) -> list[Any]:
    """Source data verification: the reviewer's signature on every record reviewed."""
    made = []
    for cited in entry.statement["payload"].get("records", []):
        form = subject.form_of(int(cited["version"]))
        if form is not None:
            made.append(_context_form(entry, location_oid, form, SDV_SIGNATURE))
    return made


def _query_form(entry: LedgerEntry, event: str, location_oid: str,
                subject: SubjectForms) -> Any | None:
    """One step of a query, as an Annotation on the queried record's form."""
    payload = entry.statement["payload"]
    query_id = str(payload["query_id"])
    if event == "QueryRaised":
        subject.queries[query_id] = [int(payload["record_version"]), 0]
    thread = subject.queries.get(query_id)
    if thread is None:
        return None
    thread[1] += 1
    form = subject.form_of(thread[0])
    if form is None:
        return None
    state, side, text_field = _QUERY_STEPS[event]
    comment = [] if text_field is None else [_E.Comment(str(payload[text_field]),
                                                        SponsorOrSite=side)]
    flag = _E.Flag(_E.FlagValue(state, CodeListOID=QUERY_STATES),
                   _E.FlagType("query", CodeListOID=ANNOTATION_KINDS))
    annotation = _E.Annotation(*comment, flag, SeqNum=str(thread[1]),
                               TransactionType="Insert" if thread[1] == 1 else "Update",
                               ID=f"QUERY.{entry.position}")
    return _context_form(entry, location_oid, form, None, annotation)


def form_data(entry: LedgerEntry, protocol: Protocol, location_oid: str,
              kinds: dict[int, type[Fact]]) -> Any | None:
    """The FormData of one patient data entry; `kinds` remembers each version's fact, so a
    correction finds the form it updates."""
    event = entry.statement["type"].removeprefix(PATIENT_EVENTS)
    fact = FACT_BY_EVENT.get(event)
    if fact is None:
        return None
    payload = entry.statement["payload"]
    if fact is Correction:
        target = int(payload["target_version"])
        corrected = kinds.get(target)
        if corrected is None:
            return None
        old, new = payload["old_values"], payload["new_values"]
        if corrected.KIND == "screening" and isinstance(new.get("values"), dict):
            before = old.get("values") or {}
            new = {**new, "values": {k: v for k, v in new["values"].items()
                                     if before.get(k) != v}}
        audit = _audit(entry, location_oid, str(payload["reason"]))
        groups = list(_groups_data(corrected, new, protocol, audit))
        return _E.FormData(_signature(entry, location_oid), *groups,
                           FormOID=form_oid(corrected), FormRepeatKey=str(target),
                           TransactionType="Update")
    kinds[entry.version] = fact
    audit = _audit(entry, location_oid, None)
    stored = {c.name: payload.get(c.name) for c in fact.columns()}
    groups = list(_groups_data(fact, stored, protocol, audit))
    return _E.FormData(_signature(entry, location_oid), *groups, FormOID=form_oid(fact),
                       FormRepeatKey=str(entry.version), TransactionType="Insert")


@dataclass(frozen=True)
class OdmCounts:
    subjects: int
    forms: int
    items: int


def write_odm(
    path: Path, recorder: SignedRecorder, trial: Trial, record: LedgerRecord,
    users: list[tuple[str, str]], tree_size: int, created: datetime, page: int = PAGE,
) -> OdmCounts:
    """Write the ODM file for the entries below `tree_size`, reading `page` entries at a
    time; returns what it holds."""
    protocol = trial.protocol
    location = (f"LOC.{record.ledger_id}", record.name)
    subjects = forms = items = 0
    attributes = {
        "FileType": "Transactional", "Granularity": "All", "Archival": "Yes",
        "FileOID": f"trialctl.{record.ledger_id}.{trial.protocol_id}.{tree_size}",
        "CreationDateTime": created.astimezone(UTC).isoformat(timespec="seconds"),
        "ODMVersion": "1.3.2", "Originator": "trialctl", "SourceSystem": "trialctl",
        "SourceSystemVersion": __version__,
    }
    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(f"{{{ODM_NS}}}ODM", attributes, nsmap={None: ODM_NS}):
            xf.write(study_element(trial, record.name), pretty_print=True)
            xf.write(admin_element(trial, users, location), pretty_print=True)
            with xf.element(f"{{{ODM_NS}}}ClinicalData", StudyOID=study_oid(trial),
                            MetaDataVersionOID=metadata_oid(trial)):
                for patient_id, record_id in patient_record_ids(recorder, trial.id, tree_size,
                                                                page):
                    subjects += 1
                    subject = SubjectForms()
                    with xf.element(f"{{{ODM_NS}}}SubjectData", SubjectKey=patient_id,
                                    TransactionType="Insert"), \
                            xf.element(f"{{{ODM_NS}}}StudyEventData",
                                       StudyEventOID=STUDY_EVENT):
                        for entry in record_entries(recorder, record_id, tree_size, page):
                            for form in entry_forms(entry, protocol, location[0], subject):
                                forms += 1
                                items += len(form.findall(f".//{{{ODM_NS}}}ItemData"))
                                xf.write(form, pretty_print=True)
    return OdmCounts(subjects, forms, items)


def odm_schema() -> etree.XMLSchema:
    """The official ODM 1.3.2 XSD, as the odmlib package ships it."""
    import odmlib

    folder = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2"
    return etree.XMLSchema(etree.parse(str(folder / "ODM1-3-2.xsd")))


def odm_export(source: ExportSource, target: Path) -> tuple[dict[str, Path], dict[str, Any]]:
    """The `Writer` of `export odm`: one file, named in the manifest by its own name."""
    ledger = source.ledger
    users = [(u.user_id, u.name) for u in ledger.list_users()]
    counts = write_odm(target, ledger.signed_recorder, source.trial, ledger.ledger_record(),
                       users, source.tree_size, source.exported_at)
    return {target.name: target}, {"subjects": counts.subjects, "forms": counts.forms,
                                   "items": counts.items, "standard": "CDISC ODM 1.3.2"}
