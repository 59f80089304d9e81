"""The site-editable content of ``cards/``: thresholds, value sets, medications, card texts."""

from ._loader import (
    CompiledAdvice,
    CompiledTopic,
    Content,
    ContentError,
    load_content,
    merge,
    unit_key,
)
from ._medications import MedicationIndex, NameMatch, RouteIndex, WordTable, words_of
from ._schema import (
    INDICATOR_RANK,
    SOURCE_RANK,
    Dosing,
    FormularyEntry,
    Indicator,
    Source,
    Spacing,
    Threshold,
    Thresholds,
    UnitSpec,
    Windows,
)
from ._spec import COMMON_VALUES, AdviceSpec, TopicSpec

__all__ = [
    "COMMON_VALUES",
    "INDICATOR_RANK",
    "SOURCE_RANK",
    "AdviceSpec",
    "CompiledAdvice",
    "CompiledTopic",
    "Content",
    "ContentError",
    "Dosing",
    "FormularyEntry",
    "Indicator",
    "MedicationIndex",
    "NameMatch",
    "RouteIndex",
    "Source",
    "Spacing",
    "Threshold",
    "Thresholds",
    "TopicSpec",
    "UnitSpec",
    "Windows",
    "WordTable",
    "load_content",
    "merge",
    "unit_key",
    "words_of",
]
