"""Hook request bodies → plain dicts that hold only the FHIR fields the service reads.

A realistic patient-view body is mostly what no rule reads: narrative, ``meta``, categories,
reference ranges, subjects, dosage instructions, Bundle ``fullUrl``s. Decoding those into Python
objects, then freeing them, was most of the cost of a request. msgspec decodes the body against
the ``TypedDict`` schema below and skips every other member of a FHIR resource or Bundle in C,
so the rest of the service sees the same dicts it would from a full decode, minus fields it
never looks at. ``tests/protocol/test_decode.py`` records every key the pipeline reads from
prefetch resources over all fixture scenarios and fails if one is missing here.

The schema only narrows where FHIR itself does (a Bundle's ``entry`` is an array of objects).
A body that does not fit it, or is not valid JSON at all (UTF-8 included), is decoded again in
full by the generic path, whose handling of odd values (and whose 400 messages) are the
reference, so this module never changes an answer: it only makes well-formed requests cheaper.
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec

from .request import decode_json


class _Resource(TypedDict, total=False):
    """A FHIR resource or Bundle, reduced to the members read anywhere in the service."""

    resourceType: Any
    id: Any
    status: Any
    # Observation
    code: Any
    valueQuantity: Any
    effectiveDateTime: Any
    effectivePeriod: Any
    effectiveInstant: Any
    issued: Any
    # Patient
    birthDate: Any
    gender: Any
    # MedicationRequest, MedicationStatement, Medication (a reference, or contained)
    medicationCodeableConcept: Any
    medicationReference: Any
    authoredOn: Any
    contained: Any
    ingredient: Any
    # OperationOutcome
    issue: Any
    # Bundle
    entry: list[_Entry] | None
    link: Any


class _Entry(TypedDict, total=False):
    resource: _Resource | None
    search: Any


class _HookBody(TypedDict, total=False):
    hook: Any
    hookInstance: Any
    fhirServer: Any
    fhirAuthorization: Any
    context: Any
    prefetch: dict[str, _Resource | None] | None


RESOURCE_FIELDS = frozenset(_Resource.__annotations__)
"""The resource and Bundle members kept from prefetch; every other member is skipped."""
ENTRY_FIELDS = frozenset(_Entry.__annotations__)

_decoder = msgspec.json.Decoder(_HookBody)


def decode_hook_body(body: bytes) -> Any:
    """A hook request body with its prefetch reduced to ``RESOURCE_FIELDS``.

    Falls back to ``decode_json`` (full decode, and its ``BadRequest`` for invalid JSON) for
    anything the reduced schema does not describe: a non-object body, a prefetch value that is
    not an object, a Bundle entry that is not one, nesting deep enough to exhaust recursion.
    """
    if not body.isascii() and not _is_utf8(body):
        return decode_json(body)  # members that are skipped are never checked for UTF-8
    try:
        return _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return decode_json(body)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
