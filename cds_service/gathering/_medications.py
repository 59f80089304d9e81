"""Medication references: which ones the orders need, and which Medications are at hand."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..protocol import Reference, Resource

# Tuples, not sets: a JSON value may be unhashable (a list), and ``in`` must not raise.
_ORDER_TYPES = ("MedicationRequest", "MedicationStatement")
_FHIR_ID = r"[A-Za-z0-9\-.]{1,64}"
_REFERENCE = re.compile(
    rf"(?P<base>https?://[^?#\s]+/)?(?P<path>Medication/(?P<id>{_FHIR_ID})(?:/_history/{_FHIR_ID})?)"
)


@dataclass(frozen=True, slots=True)
class MedicationRef:
    key: str
    """``Medication/<id>``: how the consumer looks the resource up."""
    path: str
    """The relative path to read, version included when the reference had one."""
    base: str | None
    """The server named by an absolute reference; None for a relative one."""


def parse_reference(reference: str) -> MedicationRef | None:
    """A literal Medication reference, or None for anything else (contained ones included)."""
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        return None
    base = match.group("base")
    return MedicationRef(
        key=f"Medication/{match.group('id')}",
        path=match.group("path"),
        base=base.rstrip("/") if base else None,
    )


@dataclass(slots=True)
class MedicationScan:
    """Medications seen and references wanted, accumulated over every batch of resources."""

    index: dict[str, Resource] = field(default_factory=dict)
    wanted: dict[str, MedicationRef] = field(default_factory=dict)
    unsupported: int = 0

    def add(self, resources: Iterable[Resource]) -> None:
        for resource in resources:
            resource_type = resource.resourceType
            if resource_type == "Medication":
                self._index(resource)
            elif resource_type in _ORDER_TYPES:
                self._want(resource.medicationReference)

    def _index(self, medication: Resource) -> None:
        medication_id = medication.id
        if isinstance(medication_id, str) and medication_id:
            self.index.setdefault(f"Medication/{medication_id}", medication)

    def _want(self, reference: Any) -> None:
        literal = reference.reference if isinstance(reference, Reference) else None
        # No literal reference (display only) or a contained one: the consumer handles those.
        if not isinstance(literal, str) or literal.startswith("#"):
            return
        parsed = parse_reference(literal)
        if parsed is None:
            self.unsupported += 1
        else:
            self.wanted.setdefault(parsed.key, parsed)

    def missing(self) -> list[MedicationRef]:
        return [ref for key, ref in self.wanted.items() if key not in self.index]
