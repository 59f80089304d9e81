"""Facts: normalised lab results, kidney function, the CNI course, classified medications, and
the named clinical predicates the rules read."""

from ._build import PREDICATES, Facts, build_facts
from ._cni import CniCourse
from ._kidney import ConditionFact, CorrectedCalcium, KidneyFunction, ckd_epi_2021
from ._labs import (
    LabResult,
    SkippedResult,
    decimals,
    format_number,
    is_above,
    is_below,
    read_observation,
    threshold_text,
)
from ._medications import IgnoredOrder, MedicationFact, classify

__all__ = [
    "PREDICATES",
    "CniCourse",
    "ConditionFact",
    "CorrectedCalcium",
    "Facts",
    "IgnoredOrder",
    "KidneyFunction",
    "LabResult",
    "MedicationFact",
    "SkippedResult",
    "build_facts",
    "ckd_epi_2021",
    "classify",
    "decimals",
    "format_number",
    "is_above",
    "is_below",
    "read_observation",
    "threshold_text",
]
