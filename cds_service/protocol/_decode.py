"""Hook request bodies → the envelope as plain JSON, and prefetch as ``Resource`` models.

A realistic patient-view body is mostly what no rule reads: narrative, ``meta``, categories,
reference ranges, subjects, dosage instructions, Bundle ``fullUrl``s. msgspec decodes the body
against the schema below, builds the tolerant subset models of ``_resources`` for prefetch, and
skips every other member of a FHIR resource or Bundle in C. The envelope (``context`` and
``extension`` included) stays plain JSON for ``parse_hook_request``, the prefetch templates and
the configuration options.

A body that does not fit the schema (a ``prefetch`` that is not an object, nesting deep enough to
exhaust recursion: at the interpreter's default limit msgspec gives up before orjson's 1,024
levels), or is not valid JSON at all (UTF-8 included), is decoded again in full by the generic
path, whose 400 messages are the reference; its prefetch values become models when gathering
reads them (``as_resource``), so both paths give the same answer. Two differences remain, in
what the generic path refuses or rounds: a number beyond a double's range in a member no reader
reads is skipped here, and an integer beyond 64 bits stays exact here where orjson makes it a
float. ``tests/protocol/test_decode.py`` compares both paths over the fuzzer's mutations.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypedDict

import msgspec

from ._resources import OrJson, Resource
from .request import decode_json


class _HookBody(TypedDict, total=False):
    hook: Any
    hookInstance: Any
    fhirServer: Any
    fhirAuthorization: Any
    context: Any
    prefetch: dict[str, OrJson[Resource]] | None
    extension: Any


# Decimal keeps a number as the lab wrote it ("3.0", "1.20"): cards quote results with the
# precision they were reported with (about 8% more decoding work, measured).
_decoder = msgspec.json.Decoder(_HookBody, float_hook=Decimal)


def decode_hook_body(body: bytes) -> Any:
    """A hook request body with each prefetch object decoded as a ``Resource``.

    Falls back to ``decode_json`` (full decode, and its ``BadRequest`` for invalid JSON) for
    anything the schema does not describe: a non-object body, a ``prefetch`` that is not an
    object, nesting deep enough to exhaust recursion.
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
