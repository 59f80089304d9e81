"""One patient's resources as records: when each became known, and its state at a given time.

An export holds today's state of every resource. Simulating a moment ``T`` in the past shows
what the chart held then:

- a resource dated after ``T`` is not there yet (Observation: ``effective[x]``, MedicationRequest
  and ServiceRequest: ``authoredOn``, MedicationStatement: ``effectivePeriod.start``, Condition:
  ``onsetDateTime`` or ``recordedDate``); a resource without a date is always there;
- a medication that has ended since (``completed``/``stopped``, ended at
  ``dispenseRequest.validityPeriod.end`` or ``effectivePeriod.end``) and a Condition resolved
  since (``abatementDateTime``) were still active at ``T`` and are shown as ``active``.

Each line is decoded once, in the partition (msgspec, in C, only the members named below): what
the simulation needs travels beside the raw line as a short header (``encode``), so evaluating
a patient splits bytes instead of parsing JSON again. The resource itself travels as the raw
bytes of its line, rewritten only when its state at ``T`` differs from the export's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar, Union

import msgspec
import orjson

from ..protocol import Period, Reference
from ._queries import MaskTables

_T = TypeVar("_T")
OrJson = Union[_T, list[Any], str, int, float, bool, None]  # noqa: UP007

ENDED = {
    "MedicationRequest": frozenset({"completed", "stopped"}),
    "MedicationStatement": frozenset({"completed", "stopped"}),
    "Condition": frozenset({"resolved", "inactive", "remission"}),
}


_NULL = msgspec.Raw(b"null")


class Coding(msgspec.Struct, frozen=True, gc=False):
    # No display: its text would be decoded for every Observation and never read.
    system: Any = None
    code: Any = None


class CodeableConcept(msgspec.Struct, frozen=True, gc=False):
    coding: Union[list[OrJson[Coding]], dict[str, Any], str, int, float, bool, None] = None  # noqa: UP007


class _Dispense(msgspec.Struct, frozen=True, gc=False):
    validityPeriod: OrJson[Period] = None


class Head(msgspec.Struct, frozen=True, gc=False):
    """The members of a resource the partition and the simulation read."""

    resourceType: Any = None
    id: Any = None
    status: Any = None
    intent: Any = None
    # Kept as the JSON sent: the partition matches each distinct concept against the code
    # filters once (see ``code_mask``).
    code: msgspec.Raw = _NULL
    medicationCodeableConcept: msgspec.Raw = _NULL
    medicationReference: OrJson[Reference] = None
    clinicalStatus: OrJson[CodeableConcept] = None
    effectiveDateTime: Any = None
    effectiveInstant: Any = None
    effectivePeriod: OrJson[Period] = None
    issued: Any = None
    authoredOn: Any = None
    onsetDateTime: Any = None
    recordedDate: Any = None
    dateAsserted: Any = None
    abatementDateTime: Any = None
    dispenseRequest: OrJson[_Dispense] = None
    subject: OrJson[Reference] = None
    patient: OrJson[Reference] = None


decode_head = msgspec.json.Decoder(Head).decode
SEPARATOR = b"\x1f"


# The results of one draw share their time: parsed once.
_EPOCHS: dict[str, float | None] = {}
_EPOCHS_MAX = 65_536


def epoch(value: object) -> float | None:
    """A FHIR date or dateTime as epoch seconds (a date, or no zone: UTC); None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return _EPOCHS[value]
    except KeyError:
        pass
    parsed: float | None = None
    if len(value) >= 10:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None:
            parsed = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if len(_EPOCHS) >= _EPOCHS_MAX:
        _EPOCHS.clear()
    _EPOCHS[value] = parsed
    return parsed


def _start(period: object) -> Any:
    return period.start if isinstance(period, Period) else None


def _codings(concept: object) -> tuple[tuple[str | None, str | None], ...]:
    # ``type() is``: this runs for every Observation of the population.
    if type(concept) is not CodeableConcept or type(concept.coding) is not list:
        return ()
    return tuple(
        (
            coding.system if type(coding.system) is str else None,
            coding.code if type(coding.code) is str else None,
        )
        for coding in concept.coding
        if type(coding) is Coding
    )


def _known_at(kind: str, head: Head) -> float | None:
    if kind == "Observation":
        value = head.effectiveDateTime or head.effectiveInstant or _start(head.effectivePeriod)
        return epoch(value or head.issued)
    if kind in ("MedicationRequest", "ServiceRequest"):
        return epoch(head.authoredOn)
    if kind == "MedicationStatement":
        return epoch(_start(head.effectivePeriod) or head.effectiveDateTime or head.dateAsserted)
    if kind == "Condition":
        return epoch(head.onsetDateTime or head.recordedDate)
    return None


def _end(kind: str, head: Head) -> float | None:
    if kind == "MedicationRequest":
        dispense = head.dispenseRequest
        period = dispense.validityPeriod if isinstance(dispense, _Dispense) else None
        return epoch(period.end) if isinstance(period, Period) else None
    if kind == "MedicationStatement":
        period = head.effectivePeriod
        return epoch(period.end) if isinstance(period, Period) else None
    if kind == "Condition":
        return epoch(head.abatementDateTime)
    return None


def _status(kind: str, head: Head) -> str | None:
    if kind == "Condition":
        codes = [code for _, code in _codings(head.clinicalStatus) if code]
        return codes[0] if codes else None
    return head.status if type(head.status) is str else None


def _medication(head: Head) -> str | None:
    reference = head.medicationReference
    target = reference.reference if type(reference) is Reference else None
    if not isinstance(target, str) or "Medication/" not in target:
        return None
    return "/".join(target.split("/_history/")[0].rstrip("/").split("/")[-2:])


ConceptJson = Union[CodeableConcept, list[Any], str, int, float, bool, None]  # noqa: UP007
_decode_concept = msgspec.json.Decoder(ConceptJson).decode
_SEEN_MAX = 100_000


def _concept_mask(concept: object, tables: MaskTables) -> int:
    if type(concept) is not CodeableConcept or type(concept.coding) is not list:
        return 0
    mask = 0
    pairs, codes, systems = tables.pairs, tables.codes, tables.systems
    for coding in concept.coding:
        if type(coding) is not Coding:
            continue
        system = coding.system if type(coding.system) is str else None
        code = coding.code
        if type(code) is str:
            mask |= pairs.get((system or "", code), 0) | codes.get(code, 0)
        if system is not None:
            mask |= systems.get(system, 0)
    return mask


def code_mask(head: Head, tables: MaskTables) -> int:
    """The bits of every code filter that one of the resource's codings matches."""
    mask = 0
    for raw in (head.code, head.medicationCodeableConcept):
        if raw == _NULL:
            continue
        key = bytes(raw)
        found = tables.seen.get(key)
        if found is None:
            try:
                found = _concept_mask(_decode_concept(raw), tables)
            except (msgspec.DecodeError, RecursionError):
                found = 0
            if len(tables.seen) >= _SEEN_MAX:
                tables.seen.clear()
            tables.seen[key] = found
        mask |= found
    return mask


def _text(value: object) -> bytes:
    # Header fields never carry a separator or a line break.
    return value.encode() if type(value) is str and value.isprintable() else b""


def _number(value: float | None) -> bytes:
    return b"" if value is None else repr(value).encode()


_EPOCH_TEXT: dict[str, bytes] = {}


def _observation(prefix: bytes, head: Head, mask: int, raw: bytes) -> bytes:
    # Most lines of an export are Observations: only their date, status and codes matter.
    value = head.effectiveDateTime or head.effectiveInstant or _start(head.effectivePeriod)
    value = value or head.issued
    known = _EPOCH_TEXT.get(value) if type(value) is str else None
    if known is None:
        known = _number(epoch(value))
        if type(value) is str and len(_EPOCH_TEXT) < _EPOCHS_MAX:
            _EPOCH_TEXT[value] = known
    status = head.status
    return b'%sObservation\x1f\x1f%s\x1f\x1f%s\x1f\x1f\x1f%s\x1f{"resource":%s}\n' % (
        prefix,
        known,
        status.encode() if type(status) is str and status.isprintable() else b"",
        b"%d" % mask if mask else b"",
        raw,
    )


def encode(prefix: bytes, kind: str, head: Head, mask: int, raw: bytes) -> bytes:
    """A bucket line: ``prefix`` (the patient), the header pass 2 reads, and the resource as the
    Bundle entry it will be in (``{"resource": ...}``)."""
    if kind == "Observation":
        return _observation(prefix, head, mask, raw)
    return prefix + SEPARATOR.join(
        (
            kind.encode(),
            _text(head.id),
            _number(_known_at(kind, head)),
            _number(_end(kind, head)),
            _text(_status(kind, head)),
            _text(head.intent),
            _text(_medication(head)),
            str(mask).encode() if mask else b"",
            b'{"resource":' + raw + b"}\n",
        )
    )


class Record:
    """One resource of the patient, read from its header, and its state at a given time."""

    __slots__ = (
        "_reopened",
        "end",
        "ended",
        "entry",
        "id",
        "intent",
        "kind",
        "known_at",
        "mask",
        "medication",
        "status",
    )

    def __init__(self, fields: list[bytes]) -> None:
        """``fields``: a bucket line split in ten, the patient id first."""
        _, kind, rid, known_at, end, status, intent, medication, mask, entry = fields
        self.kind = kind.decode()
        self.id = rid.decode() or None
        self.known_at = float(known_at) if known_at else None
        self.end = float(end) if end else None
        self.status = status.decode() or None
        self.intent = intent.decode() or None
        self.medication = medication.decode() or None
        self.mask = int(mask) if mask else 0
        self.entry = entry
        """The resource as a searchset Bundle entry: ``{"resource": ...}``."""
        self._reopened: bytes | None = None
        # Ended, with a known end: at an earlier moment it may still have been active.
        self.ended = self.end is not None and self.status in ENDED.get(self.kind, ())

    def visible(self, at: float) -> bool:
        return self.known_at is None or self.known_at <= at

    def reopened(self, at: float) -> bool:
        """Ended since ``at``: still active then."""
        end = self.end
        return self.ended and end is not None and at < end

    def status_at(self, at: float) -> str | None:
        return "active" if self.reopened(at) else self.status

    @property
    def raw(self) -> bytes:
        """The resource's JSON, as exported."""
        return self.entry[12:-1]

    def entry_at(self, at: float) -> bytes:
        """The Bundle entry of the resource as it was at ``at``."""
        if not self.reopened(at):
            return self.entry
        if self._reopened is None:
            resource = orjson.loads(self.raw)
            if self.kind == "Condition":
                resource["clinicalStatus"] = {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                }
                resource.pop("abatementDateTime", None)
            else:
                resource["status"] = "active"
            self._reopened = b'{"resource":' + orjson.dumps(resource) + b"}"
        return self._reopened

    def as_draft(self) -> bytes:
        """The resource as a draft order being placed."""
        resource = orjson.loads(self.raw)
        resource["status"] = "draft"
        return orjson.dumps(resource)
