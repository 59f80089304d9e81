"""Tolerant subset models of the FHIR R4 resources the service reads.

One ``Resource`` model serves every resource type (Observation, MedicationRequest/Statement,
Medication, Patient, OperationOutcome, Bundle): it holds only the members some reader looks at,
and msgspec skips every other member in C while decoding. Each member that FHIR defines as an
object or an array is typed as "the model, or whatever other JSON value was sent", so a
malformed resource still decodes, and the readers see the odd value and skip it with a reason,
exactly as they do for valid data. Nothing downstream reads raw dicts: a resource that arrives
as plain JSON (a FHIR server page, ``context.draftOrders``, a request decoded by the generic
path) goes through ``as_resource`` first, so there is one reading of every resource.

The models are frozen, and untracked by the cyclic GC: decoded JSON cannot hold a cycle, and a
request builds thousands of them.
"""

from __future__ import annotations

from typing import Any, TypeVar, Union

import msgspec

_T = TypeVar("_T")

# msgspec allows one object type and one array type in a union, beside any scalars: these two
# aliases cover every JSON value, so typing a member with them can never fail a decode.
OrJson = Union[_T, list[Any], str, int, float, bool, None]  # noqa: UP007
"""An object member: the model when the value is an object, else the value as sent."""
ListOrJson = Union[list[OrJson[_T]], dict[str, Any], str, int, float, bool, None]  # noqa: UP007
"""An array member: its objects as models, other items and non-array values as sent."""


class Coding(msgspec.Struct, frozen=True, gc=False):
    system: Any = None
    code: Any = None
    display: Any = None


class CodeableConcept(msgspec.Struct, frozen=True, gc=False):
    coding: ListOrJson[Coding] = None
    text: Any = None


class Quantity(msgspec.Struct, frozen=True, gc=False):
    value: Any = None
    comparator: Any = None
    unit: Any = None
    system: Any = None
    code: Any = None


class Reference(msgspec.Struct, frozen=True, gc=False):
    reference: Any = None
    display: Any = None


class Subject(msgspec.Struct, frozen=True, gc=False):
    """A resource's ``subject`` or ``patient``: only the literal reference is read."""

    reference: Any = None


class Period(msgspec.Struct, frozen=True, gc=False):
    start: Any = None
    end: Any = None


class Ingredient(msgspec.Struct, frozen=True, gc=False):
    itemCodeableConcept: OrJson[CodeableConcept] = None
    itemReference: OrJson[Reference] = None


class Dosage(msgspec.Struct, frozen=True, gc=False):
    route: OrJson[CodeableConcept] = None
    text: Any = None


class OutcomeIssue(msgspec.Struct, frozen=True, gc=False):
    severity: Any = None


class BundleLink(msgspec.Struct, frozen=True, gc=False):
    relation: Any = None
    url: Any = None


class EntrySearch(msgspec.Struct, frozen=True, gc=False):
    mode: Any = None


class BundleEntry(msgspec.Struct, frozen=True, gc=False):
    resource: OrJson[Resource] = None
    search: OrJson[EntrySearch] = None


class Resource(msgspec.Struct, frozen=True, gc=False):
    """Any FHIR resource, reduced to the members read anywhere in the service."""

    resourceType: Any = None
    id: Any = None
    status: Any = None
    # Whose data it is: one patient per call (``gathering._patient``)
    subject: OrJson[Subject] = None
    patient: OrJson[Subject] = None
    # Observation (``code`` is Medication.code too)
    code: OrJson[CodeableConcept] = None
    valueQuantity: OrJson[Quantity] = None
    valueString: Any = None
    effectiveDateTime: Any = None
    effectivePeriod: OrJson[Period] = None
    effectiveInstant: Any = None
    issued: Any = None
    # Patient
    birthDate: Any = None
    gender: Any = None
    # MedicationRequest, MedicationStatement, Medication
    medicationCodeableConcept: OrJson[CodeableConcept] = None
    medicationReference: OrJson[Reference] = None
    authoredOn: Any = None
    doNotPerform: Any = None
    priorPrescription: OrJson[Reference] = None
    dosageInstruction: ListOrJson[Dosage] = None
    dosage: ListOrJson[Dosage] = None
    contained: ListOrJson[Resource] = None
    ingredient: ListOrJson[Ingredient] = None
    form: OrJson[CodeableConcept] = None
    # Condition
    clinicalStatus: OrJson[CodeableConcept] = None
    verificationStatus: OrJson[CodeableConcept] = None
    abatementDateTime: Any = None
    abatementPeriod: Any = None
    abatementAge: Any = None
    abatementString: Any = None
    # OperationOutcome
    issue: ListOrJson[OutcomeIssue] = None
    # Bundle
    entry: ListOrJson[BundleEntry] = None
    link: ListOrJson[BundleLink] = None


def as_resource(value: Any) -> Resource | None:
    """A JSON object as a ``Resource``; None for anything else.

    Never raises for decoded JSON: every member accepts any JSON value. Only nesting deep enough
    to exhaust the interpreter's recursion limit (``contained`` within ``contained``...) is
    refused, as None.
    """
    if isinstance(value, Resource):
        return value
    if not isinstance(value, dict):
        return None
    try:
        return msgspec.convert(value, Resource)
    except (msgspec.ValidationError, RecursionError):
        return None
