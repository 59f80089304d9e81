"""The site-editable content of ``cards/``: thresholds, value sets, medications, card texts."""

from ._errors import ContentError
from ._governance import ContentVersion, Governance, PageText
from ._hti1 import USE_ATTRIBUTES, Hti1Attributes, Use
from ._loader import (
    TOPIC_CODES,
    CompiledTopic,
    Content,
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
    "Governance",
    "Hti1Attributes",
    "Indicator",
    "MedicationIndex",
    "PageText",
    "Threshold",
    "Use",
    "load_content",
]
