"""`trialctl export sdtm`: SDTM-style tables of the trial, the decisions and audit-trail
listings, and a data dictionary, as CSV or CDISC Dataset-JSON v1.1.

One `Domain` per table: its variables (name, label, type) and a function from one patient's
record to its rows; adding a domain is one more `Domain` in `DOMAINS`. Patient facts are
read through the patient record's own readers (`doses()`, `adverse_events()`, `dlts()`,
`responses()`, `labs()`), on the record replayed up to the export's tree size; facts the
record does not keep (withdrawal, going off study) from its entries.

Patients are read one at a time and every table is written as its rows come, so memory
holds one patient, never the trial.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from trialctl import __version__
from trialctl.domain.facts import OffStudy, Withdrawal
from trialctl.domain.lab_grading import lab_grading
from trialctl.domain.patient import EVALUABLE, REPLACED, Patient
from trialctl.domain.trial import Trial
from trialctl.ledger.audit import audit_row
from trialctl.ledger.decisions import DECISION_TYPES, decision_signer
from trialctl.ledger.export_pages import (
    LedgerEntry,
    ledger_entries,
    patient_record_ids,
    stored_entries,
)
from trialctl.ledger.export_run import ExportSource, Writer
from trialctl.ledger.history import advanced
from trialctl.ledger.mapper import format_time

Row = dict[str, Any]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    data_type: str = "string"  # Dataset-JSON v1.1 dataType


@dataclass(frozen=True)
class Subject:
    """What a domain reads of one patient: the record as of the tree size, and the facts
    it does not keep, from its entries."""

    study_id: str
    trial: Trial
    patient: Patient
    withdrawal: Row | None
    off_study: Row | None

    @property
    def usubjid(self) -> str:
        return f"{self.study_id}-{self.patient.patient_id}"

    def keys(self, domain: str) -> Row:
        return {"STUDYID": self.study_id, "DOMAIN": domain, "USUBJID": self.usubjid}


@dataclass(frozen=True)
class Domain:
    name: str
    label: str
    variables: tuple[Variable, ...]
    rows: Callable[[Subject], Iterable[Row]]
    keys: tuple[str, ...] = ("STUDYID", "USUBJID")


_KEYS = (Variable("STUDYID", "Study Identifier"), Variable("DOMAIN", "Domain Abbreviation"),
         Variable("USUBJID", "Unique Subject Identifier"))


def _flag(value: bool | None) -> str:
    return "" if value is None else "Y" if value else "N"


# A patient's DLT-evaluability, as SDTM flags it: unknown while course 1 is under way.
_EVALUATED = {EVALUABLE: True, REPLACED: False}


def _dm(s: Subject) -> Iterator[Row]:
    p = s.patient
    doses = p.doses()
    if p.level is not None:
        arm_code, arm = f"L{p.level}", s.trial.protocol.level(p.level).describe()
    elif p.eligibility is not None and not p.eligibility["eligible"]:
        arm_code, arm = "SCRNFAIL", "Screen Failure"
    else:
        arm_code, arm = "NOTASSGN", "Not Assigned"
    yield {**s.keys("DM"), "SUBJID": p.patient_id, "RFICDTC": p.consent_date,
           "RFXSTDTC": min((d["given_at"] for d in doses), default=""),
           "RFXENDTC": max((d["given_at"] for d in doses), default=""),
           "ARMCD": arm_code, "ARM": arm, "ACTARMCD": arm_code if doses else "NOTTRT",
           "ACTARM": arm if doses else "Not Treated", "COHORT": p.cohort_number or "",
           "DLTEVAL": _flag(_EVALUATED.get(p.outcome(s.trial.protocol).state)), "STATUS": p.status}


def _ex(s: Subject) -> Iterator[Row]:
    for d in s.patient.doses():
        yield {**s.keys("EX"), "EXSEQ": d["version"], "EXTRT": d["agent"],
               "EXDOSE": d["dose"], "EXDOSU": d["unit"], "EXSTDTC": d["given_at"],
               "EXENDTC": d["given_at"], "VISITNUM": d["course"],
               "VISIT": f"COURSE {d['course']}", "EXTPT": f"DAY {d['day']}"}


def _ae(s: Subject) -> Iterator[Row]:
    for ae in s.patient.adverse_events():
        yield {**s.keys("AE"), "AESEQ": ae["version"], "AESPID": ae["ae_id"],
               "AETERM": ae["term"], "AEDECOD": ae["term"], "AETOXGR": ae["grade"],
               "AEREL": ae["attribution"].upper(), "AESTDTC": ae["onset"],
               "AEENDTC": ae["resolved_on"] or ""}


def _suppae(s: Subject) -> Iterator[Row]:
    """Each DLT adjudication as the supplemental qualifier AEDLT of its adverse event."""
    seq = {ae["ae_id"]: ae["version"] for ae in s.patient.adverse_events()}
    # Whether each DLT counts is derived from the current facts (its rule, the window).
    for dlt in s.patient.judged_dlts(s.trial.protocol):
        keys = {"STUDYID": s.study_id, "RDOMAIN": "AE", "USUBJID": s.usubjid,
                "IDVAR": "AESEQ", "IDVARVAL": seq.get(dlt["ae_id"], "")}
        yield {**keys, "QNAM": "AEDLT", "QLABEL": "Dose-Limiting Toxicity",
               "QVAL": _flag(dlt["is_dlt"]), "QORIG": "Assigned", "QEVAL": "INVESTIGATOR",
               "DLTRULE": dlt["rule_code"] or "", "DLTCOUNT": _flag(dlt["counts"]),
               "DLTWIN": dlt["window"] or "", "ADJSEQ": dlt["version"]}


def _rs(s: Subject) -> Iterator[Row]:
    for r in s.patient.responses():
        if r["category"] is not None:  # a baseline has no response, only measurements (TR)
            yield {**s.keys("RS"), "RSSEQ": r["version"], "RSTESTCD": "OVRLRESP",
                   "RSTEST": "Overall Response", "RSCAT": "RECIST 1.1",
                   "RSORRES": r["category"], "RSSTRESC": r["category"],
                   "RSEVAL": "INVESTIGATOR", "RSDTC": r["assessed_on"]}


def _tr(s: Subject) -> Iterator[Row]:
    for r in s.patient.responses():
        common = {**s.keys("TR"), "TRGRPID": r["version"], "TRDTC": r["assessed_on"],
                  "TRBLFL": "Y" if r["baseline"] else ""}
        for lesion in r["lesions"]:
            node = bool(lesion["is_lymph_node"])
            yield {**common, "TRLNKID": lesion["lesion_id"],
                   "TRTESTCD": "SAXIS" if node else "LDIAM",
                   "TRTEST": "Short Axis" if node else "Longest Diameter",
                   "TRORRES": lesion["short_axis_mm"] if node else lesion["longest_diameter_mm"],
                   "TRORRESU": "mm", "TRLOC": lesion["site"]}
        yield {**common, "TRLNKID": "", "TRTESTCD": "SUMDIAM", "TRTEST": "Sum of Diameters",
               "TRORRES": r["sum_mm"], "TRORRESU": "mm", "TRLOC": ""}


def _cm(s: Subject) -> Iterator[Row]:
    for c in s.patient.conmeds():
        yield {**s.keys("CM"), "CMSEQ": c["version"], "CMTRT": c["drug"],
               "CMDOSE": c["dose"] or "", "CMDOSU": c["unit"] or "",
               "CMROUTE": c["route"] or "", "CMINDC": c["indication"] or "",
               "CMSTDTC": c["start"], "CMENDTC": c["stop"] or ""}


def _lb(s: Subject) -> Iterator[Row]:
    """Each lab as recorded and in the grading's canonical unit, with its CTCAE grade as
    `labs()` derives it now (a corrected value or limit of normal regrades it)."""
    for lab in s.patient.labs():
        yield {**s.keys("LB"), "LBSEQ": lab["version"], "LBTESTCD": str(lab["test"]).upper(),
               "LBTEST": lab_grading(lab["test"]).name, "LBORRES": lab["value"],
               "LBORRESU": lab["unit"], "LBSTRESN": lab["canonical_value"],
               "LBSTRESU": lab["canonical_unit"],
               "LBORNRLO": "" if lab.get("lln") is None else lab["lln"],
               "LBORNRHI": "" if lab.get("uln") is None else lab["uln"],
               "LBTOXGR": "" if lab.get("grade") is None else lab["grade"],
               "LBDTC": lab["collected_on"],
               **_lab_visit(lab),
               "LBTPT": "" if lab.get("day") is None else f"DAY {lab['day']}"}


def _lab_visit(lab: dict[str, Any]) -> Row:
    """VISITNUM and VISIT of a lab: the visit it states when it states one (`course 2`,
    `week 9`), else its course."""
    course = lab.get("course")
    stated = lab.get("visit")
    if stated is None:
        return {"VISITNUM": "" if course is None else course,
                "VISIT": "" if course is None else f"COURSE {course}"}
    unit, number = str(stated).split()
    return {"VISITNUM": int(number) if unit == "course" else ("" if course is None else course),
            "VISIT": str(stated).upper()}


def _ds(s: Subject) -> Iterator[Row]:
    p = s.patient
    yield {**s.keys("DS"), "DSTERM": "INFORMED CONSENT OBTAINED",
           "DSDECOD": "INFORMED CONSENT OBTAINED", "DSCAT": "PROTOCOL MILESTONE",
           "DSSTDTC": p.consent_date}
    if s.withdrawal is not None:
        yield {**s.keys("DS"), "DSTERM": s.withdrawal["reason"],
               "DSDECOD": "WITHDRAWAL BY SUBJECT", "DSCAT": "DISPOSITION EVENT",
               "DSSTDTC": s.withdrawal["withdrawn_on"]}
    if s.off_study is not None:
        yield {**s.keys("DS"), "DSTERM": s.off_study["reason"], "DSDECOD": "OFF STUDY",
               "DSCAT": "DISPOSITION EVENT", "DSSTDTC": s.off_study["off_on"]}


def _variables(*named: tuple[str, str] | tuple[str, str, str]) -> tuple[Variable, ...]:
    return (*_KEYS, *(Variable(*n) for n in named))


DOMAINS: tuple[Domain, ...] = (
    Domain("DM", "Demographics", _variables(
        ("SUBJID", "Subject Identifier for the Study"),
        ("RFICDTC", "Date/Time of Informed Consent", "date"),
        ("RFXSTDTC", "Date/Time of First Study Treatment", "datetime"),
        ("RFXENDTC", "Date/Time of Last Study Treatment", "datetime"),
        ("ARMCD", "Planned Arm Code"), ("ARM", "Description of Planned Arm"),
        ("ACTARMCD", "Actual Arm Code"), ("ACTARM", "Description of Actual Arm"),
        ("COHORT", "Cohort Number", "integer"), ("DLTEVAL", "DLT-Evaluable Flag"),
        ("STATUS", "Status in trialctl")), _dm),
    Domain("EX", "Exposure", _variables(
        ("EXSEQ", "Sequence Number (record version)", "integer"),
        ("EXTRT", "Name of Treatment"), ("EXDOSE", "Dose", "decimal"),
        ("EXDOSU", "Dose Units"), ("EXSTDTC", "Start Date/Time of Treatment", "datetime"),
        ("EXENDTC", "End Date/Time of Treatment", "datetime"),
        ("VISITNUM", "Visit Number (course)", "integer"), ("VISIT", "Visit Name"),
        ("EXTPT", "Planned Time Point Name (day of course)")), _ex),
    Domain("AE", "Adverse Events", _variables(
        ("AESEQ", "Sequence Number (record version)", "integer"),
        ("AESPID", "Sponsor-Defined Identifier"), ("AETERM", "Reported Term"),
        ("AEDECOD", "Dictionary-Derived Term (CTCAE)"),
        ("AETOXGR", "Standard Toxicity Grade", "integer"), ("AEREL", "Causality"),
        ("AESTDTC", "Start Date/Time of Adverse Event", "date"),
        ("AEENDTC", "End Date/Time of Adverse Event", "date")), _ae),
    Domain("SUPPAE", "Supplemental Qualifiers for AE", (
        Variable("STUDYID", "Study Identifier"), Variable("RDOMAIN", "Related Domain"),
        Variable("USUBJID", "Unique Subject Identifier"),
        Variable("IDVAR", "Identifying Variable"),
        Variable("IDVARVAL", "Identifying Variable Value"),
        Variable("QNAM", "Qualifier Variable Name"), Variable("QLABEL", "Qualifier Label"),
        Variable("QVAL", "Data Value"), Variable("QORIG", "Origin"),
        Variable("QEVAL", "Evaluator"), Variable("DLTRULE", "Protocol DLT rule met"),
        Variable("DLTCOUNT", "DLT counts toward the dose decision (inside the window)"),
        Variable("DLTWIN", "DLT window, first..last day"),
        Variable("ADJSEQ", "Record version of the adjudication", "integer")), _suppae),
    Domain("RS", "Disease Response", _variables(
        ("RSSEQ", "Sequence Number (record version)", "integer"),
        ("RSTESTCD", "Assessment Short Name"), ("RSTEST", "Assessment Name"),
        ("RSCAT", "Category"), ("RSORRES", "Result in Original Units"),
        ("RSSTRESC", "Result in Standard Format"), ("RSEVAL", "Evaluator"),
        ("RSDTC", "Date/Time of Assessment", "date")), _rs),
    Domain("TR", "Tumor/Lesion Results", _variables(
        ("TRGRPID", "Group ID (record version of the assessment)", "integer"),
        ("TRDTC", "Date/Time of Assessment", "date"), ("TRBLFL", "Baseline Flag"),
        ("TRLNKID", "Link ID (lesion)"), ("TRTESTCD", "Short Name of Measurement"),
        ("TRTEST", "Name of Measurement"), ("TRORRES", "Result", "decimal"),
        ("TRORRESU", "Original Units"), ("TRLOC", "Location of the Lesion")), _tr),
    Domain("DS", "Disposition", _variables(
        ("DSTERM", "Reported Term for the Disposition Event"),
        ("DSDECOD", "Standardized Disposition Term"), ("DSCAT", "Category"),
        ("DSSTDTC", "Start Date/Time of Disposition Event", "date")), _ds),
    Domain("CM", "Concomitant Medications", _variables(
        ("CMSEQ", "Sequence Number (record version)", "integer"),
        ("CMTRT", "Reported Name of Drug"), ("CMDOSE", "Dose per Administration", "decimal"),
        ("CMDOSU", "Dose Units"), ("CMROUTE", "Route of Administration"),
        ("CMINDC", "Indication"), ("CMSTDTC", "Start Date/Time of Medication", "date"),
        ("CMENDTC", "End Date/Time of Medication", "date")), _cm),
    Domain("LB", "Laboratory Test Results", _variables(
        ("LBSEQ", "Sequence Number (record version)", "integer"),
        ("LBTESTCD", "Lab Test Short Name"), ("LBTEST", "Lab Test Name"),
        ("LBORRES", "Result in Original Units", "decimal"), ("LBORRESU", "Original Units"),
        ("LBSTRESN", "Numeric Result in Standard Units (the CTCAE grading's unit)",
         "decimal"),
        ("LBSTRESU", "Standard Units"),
        ("LBORNRLO", "Normal Range Lower Limit (as recorded)", "decimal"),
        ("LBORNRHI", "Normal Range Upper Limit (as recorded)", "decimal"),
        ("LBTOXGR", "Standard Toxicity Grade (CTCAE v3.0)", "integer"),
        ("LBDTC", "Date/Time of Specimen Collection", "date"),
        ("VISITNUM", "Visit Number (course)", "integer"), ("VISIT", "Visit Name"),
        ("LBTPT", "Planned Time Point Name (day of course)")), _lb),
)
# Every SDTM domain trialctl collects is written.
NOT_COLLECTED: dict[str, str] = {}

DECISIONS = ("DECISIONS", "Cohort decisions and their signers", (
    Variable("STUDYID", "Study Identifier"),
    Variable("COHORT", "Cohort Number", "integer"), Variable("LEVEL", "Dose Level", "integer"),
    Variable("ACTION", "Decision"), Variable("NEXTLVL", "Next Dose Level", "integer"),
    Variable("MTDLVL", "MTD Level Declared", "integer"), Variable("REASON", "Reason"),
    Variable("OVERRIDE", "Overrides the 3+3 recommendation"),
    Variable("SIGNER", "Signed by (user id)"), Variable("SIGNNAME", "Signer's printed name"),
    Variable("SIGNROLE", "Signer's role"), Variable("MEANING", "Signature meaning"),
    Variable("SIGNDTC", "Signed at", "datetime"), Variable("POSITION", "Ledger position",
                                                           "integer")))
AUDIT = ("AUDIT", "Audit trail: every signed entry", (
    Variable("POSITION", "Ledger position", "integer"),
    Variable("RECDTC", "Recorded at", "datetime"), Variable("USERID", "Signer (user id)"),
    Variable("NAME", "Signer's printed name"), Variable("ROLE", "Signer's role"),
    Variable("MEANING", "Signature meaning"), Variable("TYPE", "Event type"),
    Variable("RECORD", "Record (aggregate id)"), Variable("VERSION", "Record version",
                                                          "integer"),
    Variable("WHAT", "What happened"), Variable("OLDVAL", "Old value (corrections)"),
    Variable("NEWVAL", "New value (corrections)"), Variable("REASON", "Reason for change"),
    Variable("SHA256", "Entry hash")))
DICTIONARY = ("DEFINE", "Data dictionary: every column of every table", (
    Variable("DATASET", "Dataset"), Variable("LABEL", "Dataset label"),
    Variable("VARIABLE", "Variable name"), Variable("VARLABEL", "Variable label"),
    Variable("DATATYPE", "Data type (Dataset-JSON v1.1)"), Variable("ORDER", "Column order",
                                                                   "integer")))


# -- writing: CSV or Dataset-JSON, one row at a time -------------------------------------------


@dataclass
class Sink:
    """One table being written."""

    name: str
    label: str
    variables: tuple[Variable, ...]
    handle: IO[str]
    style: str
    head: dict[str, Any]
    count: int = 0
    _csv: Any = field(default=None, repr=False)

    def open(self) -> None:
        if self.style == "csv":
            self._csv = csv.writer(self.handle, lineterminator="\n")
            self._csv.writerow([v.name for v in self.variables])
            return
        columns = [{"itemOID": f"IT.{self.name}.{v.name}", "name": v.name, "label": v.label,
                    "dataType": v.data_type} for v in self.variables]
        header = {**self.head, "itemGroupOID": f"IG.{self.name}", "name": self.name,
                  "label": self.label, "columns": columns}
        # The rows stream before the record count, which JSON's object order allows.
        self.handle.write(json.dumps(header, indent=1)[:-2] + ',\n "rows": [')

    def write(self, row: Row) -> None:
        values = [row.get(v.name) for v in self.variables]
        if self.style == "csv":
            self._csv.writerow(["" if v is None else _cell(v) for v in values])
        else:
            typed = [_json_value(v, var.data_type) for v, var in zip(values, self.variables,
                                                                      strict=True)]
            self.handle.write(("\n  " if self.count == 0 else ",\n  ") + json.dumps(typed))
        self.count += 1

    def close(self) -> None:
        if self.style != "csv":
            self.handle.write(f"\n ],\n \"records\": {self.count}\n}}\n")
        self.handle.close()


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _json_value(value: Any, data_type: str) -> Any:
    """Dataset-JSON v1.1: integers as numbers, decimals as strings (exact), empty as null."""
    if value is None or value == "":
        return None
    if data_type == "integer":
        return int(value)
    return _cell(value)


@dataclass
class Tables:
    folder: Path
    style: str
    head: dict[str, Any]
    sinks: dict[str, Sink] = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        return ".csv" if self.style == "csv" else ".json"

    def open(self, name: str, label: str, variables: tuple[Variable, ...]) -> Sink:
        path = self.folder / f"{name.lower()}{self.suffix}"
        sink = Sink(name, label, variables, path.open("x", encoding="utf-8", newline=""),
                    self.style, self.head)
        sink.open()
        self.sinks[name] = sink
        return sink

    def close(self) -> dict[str, Path]:
        for sink in self.sinks.values():
            sink.close()
        return {f"{name.lower()}{self.suffix}": self.folder / f"{name.lower()}{self.suffix}"
                for name in self.sinks}


# -- reading: one patient at a time ---------------------------------------------------------


def _subject(source: ExportSource, record_id: UUID) -> Subject:
    recorder, mapper = source.ledger.signed_recorder, source.ledger.mapper
    stored, leaving = [], {}
    for event, entry in stored_entries(recorder, record_id, source.tree_size):
        stored.append(event)
        kind = entry.statement["type"].rpartition(".")[2]
        if kind in (Withdrawal.EVENT, OffStudy.EVENT):
            leaving[kind] = entry.statement["payload"]
    patient = advanced(None, stored, mapper)
    return Subject(source.trial.protocol_id, source.trial, patient,
                   leaving.get(Withdrawal.EVENT), leaving.get(OffStudy.EVENT))


def _trial_as_exported(source: ExportSource) -> tuple[Trial, dict[int, Row]]:
    stored, signers = [], {}
    recorder = source.ledger.signed_recorder
    for event, entry in stored_entries(recorder, source.trial.id, source.tree_size):
        stored.append(event)
        if entry.statement["type"] in DECISION_TYPES:
            signers[entry.statement["payload"]["cohort_number"]] = decision_signer(
                entry.statement)
    trial: Trial = advanced(None, stored, source.ledger.mapper)
    return trial, signers


def _decision_rows(trial: Trial, signers: dict[int, Row]) -> Iterator[Row]:
    levels = {c["number"]: c["level"] for c in trial.cohorts}
    for d in trial.decisions:
        signer = signers.get(d["cohort_number"]) or {}
        yield {"STUDYID": trial.protocol_id, "COHORT": d["cohort_number"],
               "LEVEL": levels.get(d["cohort_number"]), "ACTION": d["action"],
               "NEXTLVL": d["next_level"], "MTDLVL": d["mtd_level"],
               "REASON": d["reason"] or d["stop_reason"] or "",
               "OVERRIDE": _flag(bool(d["overridden"])), "SIGNER": signer.get("user_id"),
               "SIGNNAME": signer.get("name"), "SIGNROLE": signer.get("role"),
               "MEANING": signer.get("meaning"), "SIGNDTC": signer.get("recorded_at"),
               "POSITION": signer.get("position")}


def _audit_rows(entries: Iterable[LedgerEntry]) -> Iterator[Row]:
    for entry in entries:
        row = audit_row(entry.statement)
        yield {"POSITION": row["position"], "RECDTC": row["recorded_at"],
               "USERID": row["user_id"], "NAME": row["name"], "ROLE": row["role"],
               "MEANING": row["meaning"], "TYPE": row["type"], "RECORD": row["aggregate_id"],
               "VERSION": row["aggregate_version"], "WHAT": row["what"],
               "OLDVAL": row["old_value"], "NEWVAL": row["new_value"],
               "REASON": row["reason_for_change"], "SHA256": entry.entry_hash}


def write_sdtm(source: ExportSource, folder: Path, style: str) -> tuple[dict[str, Path], Row]:
    study = source.trial.protocol_id
    head = {"datasetJSONCreationDateTime": format_time(source.exported_at),
            "datasetJSONVersion": "1.1", "fileOID": f"trialctl.{study}.{source.tree_size}",
            "originator": "trialctl",
            "sourceSystem": {"name": "trialctl", "version": __version__},
            "studyOID": f"ST.{study}", "metaDataVersionOID": f"MDV.{study}.1"}
    tables = Tables(folder, style, head)
    try:
        sinks = [(domain, tables.open(domain.name, domain.label, domain.variables))
                 for domain in DOMAINS]
        for _, record_id in patient_record_ids(source.ledger.signed_recorder, source.trial.id,
                                               source.tree_size):
            subject = _subject(source, record_id)
            for domain, sink in sinks:
                for row in domain.rows(subject):
                    sink.write(row)
        decisions = tables.open(*DECISIONS)
        for row in _decision_rows(*_trial_as_exported(source)):
            decisions.write(row)
        audit = tables.open(*AUDIT)
        for row in _audit_rows(ledger_entries(source.ledger.signed_recorder,
                                              source.tree_size)):
            audit.write(row)
        dictionary = tables.open(*DICTIONARY)
        for name, label, variables in [*((d.name, d.label, d.variables) for d in DOMAINS),
                                       DECISIONS, AUDIT, DICTIONARY]:
            for order, variable in enumerate(variables, start=1):
                dictionary.write({"DATASET": name, "LABEL": label, "VARIABLE": variable.name,
                                  "VARLABEL": variable.label, "DATATYPE": variable.data_type,
                                  "ORDER": order})
    finally:
        files = tables.close()
    counts: Row = {name: sink.count for name, sink in tables.sinks.items()}
    return files, {"format": "csv" if style == "csv" else "CDISC Dataset-JSON v1.1",
                   "rows": counts, "not_collected": NOT_COLLECTED}


def sdtm_writer(style: str) -> Writer:
    def write(source: ExportSource, folder: Path) -> tuple[dict[str, Path], Row]:
        return write_sdtm(source, folder, style)
    return write
