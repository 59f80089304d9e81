"""The site-editable content of ``cards/``: thresholds, value sets, medications, card texts."""

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
    "CompiledTopic",
    "Content",
    "ContentError",
    "Indicator",
    "MedicationIndex",
    "Threshold",
    "load_content",
]
