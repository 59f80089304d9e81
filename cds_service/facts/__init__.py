"""Facts: normalised lab results, derived kidney function and calcium, classified medications."""

from ._build import Facts, build_facts
from ._kidney import CorrectedCalcium, KidneyFunction, ckd_epi_2021
from ._labs import LabResult, SkippedResult, format_number, is_below, read_observation
from ._medications import MedicationFact, classify

__all__ = [
    "CorrectedCalcium",
    "Facts",
    "KidneyFunction",
    "LabResult",
    "MedicationFact",
    "SkippedResult",
    "build_facts",
    "ckd_epi_2021",
    "classify",
    "format_number",
    "is_below",
    "read_observation",
]
