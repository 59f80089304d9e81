"""The site-editable content of ``cards/``: thresholds, value sets, medications, card texts."""

from ._errors import ContentError
from ._governance import ContentVersion, Governance, PageText
from ._hti1 import USE_ATTRIBUTES, Hti1Attributes, Use
from ._loader import (
    CompiledAdvice,
    CompiledTopic,
    Content,
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
    "USE_ATTRIBUTES",
    "AdviceSpec",
    "CompiledAdvice",
    "CompiledTopic",
    "Content",
    "ContentError",
    "ContentVersion",
    "Dosing",
    "FormularyEntry",
    "Governance",
    "Hti1Attributes",
    "Indicator",
    "MedicationIndex",
    "NameMatch",
    "PageText",
    "RouteIndex",
    "Source",
    "Spacing",
    "Threshold",
    "Thresholds",
    "TopicSpec",
    "UnitSpec",
    "Use",
    "Windows",
    "WordTable",
    "load_content",
    "merge",
    "unit_key",
    "words_of",
]
