"""Realistic benchmark patients: two years of Mg/K/Ca/albumin/creatinine/eGFR/tacrolimus labs and
30 active medications, as a patient-view request with full prefetch."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# (LOINC, display, unit, typical value, spread); Mg alternates mg/dL and mmol/L sources.
_LABS = [
    ("19123-9", "Magnesium [Mass/volume] in Serum or Plasma", "mg/dL", 1.9, 0.3),
    ("2601-3", "Magnesium [Moles/volume] in Serum or Plasma", "mmol/L", 0.78, 0.12),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 4.1, 0.5),
    ("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 9.1, 0.5),
    ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.9, 0.4),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 1.4, 0.3),
    ("98979-8", "eGFR CKD-EPI 2021", "mL/min/{1.73_m2}", 55, 10),
    ("11253-2", "Tacrolimus [Mass/volume] in Blood", "ng/mL", 7.5, 2.0),
]
# Other common labs a real Observation search by code would not return, but a broad one would.
_NOISE = [
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.5, 1.0),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 110, 20),
]

_MEDICATIONS = [
    ("198377", "Tacrolimus 1 MG Oral Capsule"),
    ("199058", "mycophenolate mofetil 250 MG Oral Capsule"),
    ("198051", "Omeprazole 20 MG Delayed Release Oral Capsule"),
    ("200801", "Furosemide 20 MG Oral Tablet"),
    ("198741", "Magnesium Oxide 400 MG Oral Tablet"),
    ("198116", "Potassium Chloride 20 MEQ Extended Release Oral Tablet"),
    ("197604", "Digoxin 0.125 MG Oral Tablet"),
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("860975", "metformin hydrochloride 500 MG Oral Tablet"),
    ("617310", "atorvastatin 20 MG Oral Tablet"),
    ("310798", "Hydrochlorothiazide 25 MG Oral Tablet"),
    ("312961", "simvastatin 20 MG Oral Tablet"),
    ("866924", "metoprolol tartrate 25 MG Oral Tablet"),
    ("243670", "aspirin 81 MG Oral Tablet"),
]


def _observation(rng: random.Random, index: int, patient_id: str, when: datetime) -> dict[str, Any]:
    pool = _LABS if index % 10 else _NOISE
    code, display, unit, typical, spread = pool[index % len(pool)]
    value = round(max(typical + rng.gauss(0, spread), 0.05), 2)
    return {
        "resourceType": "Observation",
        "id": f"obs-{index}",
        "meta": {"lastUpdated": when.isoformat()},
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                        "display": "Laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when.isoformat(),
        "issued": (when + timedelta(hours=2)).isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        "referenceRange": [
            {
                "low": {"value": typical - spread, "unit": unit},
                "high": {"value": typical + spread, "unit": unit},
            }
        ],
    }


def _medication_request(index: int, patient_id: str, now: datetime) -> dict[str, Any]:
    code, display = _MEDICATIONS[index % len(_MEDICATIONS)]
    return {
        "resourceType": "MedicationRequest",
        "id": f"med-{index}",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": display}],
            "text": display,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": (now - timedelta(days=30 + index * 11)).date().isoformat(),
        "dosageInstruction": [
            {
                "text": "1 tablet by mouth daily",
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            }
        ],
    }


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"urn:uuid:{uuid.UUID(int=i)}", "resource": r, "search": {"mode": "match"}}
            for i, r in enumerate(resources)
        ],
    }


def patient_view_request(
    observations: int, medications: int = 30, seed: int = 7, now: datetime = NOW
) -> dict[str, Any]:
    """A patient-view request with ``observations`` results spread over the two years to ``now``.

    The benchmark dates its patients to the moment it runs, so that a server on the real clock
    sees the same patient (the same cards) as the in-process measurement.
    """
    rng = random.Random(seed)
    patient_id = f"bench-{observations}"
    span = timedelta(days=730)
    step = span / max(observations, 1)
    obs = [_observation(rng, i, patient_id, now - step * i) for i in range(observations)]
    meds = [_medication_request(i, patient_id, now) for i in range(medications)]
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.UUID(int=observations)),
        "fhirServer": "http://localhost:9/fhir",
        "context": {"userId": "Practitioner/bench", "patientId": patient_id},
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": patient_id,
                "birthDate": "1966-02-03",
                "gender": "male",
                "name": [{"family": "Bench", "given": ["Pat"]}],
            },
            "observations": _bundle(obs),
            "medicationRequests": _bundle(meds),
            "medicationStatements": None,
            "conditions": _bundle([]),
        },
    }
