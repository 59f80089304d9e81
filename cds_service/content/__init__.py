"""The site-editable content of ``cards/``: thresholds, value sets, medications, card texts."""

from ._governance import ContentVersion, PageText
from ._hti1 import USE_ATTRIBUTES, Hti1Attributes, Use
from ._loader import (
    TOPIC_CODES,
    CompiledTopic,
    Content,
    ContentError,
    MedicationIndex,
    load_content,
)
from ._schema import INDICATOR_RANK, Indicator, Threshold

__all__ = [
    "INDICATOR_RANK",
    "TOPIC_CODES",
    "USE_ATTRIBUTES",
    "CompiledTopic",
    "Content",
    "ContentError",
    "ContentVersion",
    "Hti1Attributes",
    "Indicator",
    "MedicationIndex",
    "PageText",
    "Threshold",
    "Use",
    "load_content",
]
