"""``cards/hti1.yaml``: the ONC HTI-1 source attributes of each topic (45 CFR 170.315(b)(11)).

Every evidence-based decision support intervention publishes its bibliographic citation, its
developer, its funding source, its release and last revision dates, and whether it uses race,
ethnicity, language, sexual orientation, gender identity, sex, date of birth, social
determinants of health or health status assessments. The file holds defaults shared by every
topic plus one entry per topic; after merging, every attribute must be present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._errors import ContentError

# The (b)(11)(iv)(A) "use of ..." attributes, in the order the regulation lists them.
USE_ATTRIBUTES: dict[str, str] = {
    "race": "Race",
    "ethnicity": "Ethnicity",
    "language": "Language",
    "sexual_orientation": "Sexual orientation",
    "gender_identity": "Gender identity",
    "sex": "Sex",
    "date_of_birth": "Date of birth",
    "social_determinants_of_health": "Social determinants of health",
    "health_status_assessments": "Health status assessments",
}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Use(_Strict):
    """Whether the intervention uses the element as an input, and how (required when it does)."""

    used: bool
    how: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _how_when_used(self) -> Use:
        if self.used and not self.how:
            raise ValueError("how is required when used is true: say what the element feeds")
        return self


class Uses(_Strict):
    race: Use
    ethnicity: Use
    language: Use
    sexual_orientation: Use
    gender_identity: Use
    sex: Use
    date_of_birth: Use
    social_determinants_of_health: Use
    health_status_assessments: Use


class Hti1Attributes(_Strict):
    """The complete source attributes of one topic, once defaults and the entry are merged."""

    citation: list[str] = Field(min_length=1)
    developer: str = Field(min_length=1)
    funding_source: str = Field(min_length=1)
    release_date: date
    last_revision_date: date
    uses: Uses

    @model_validator(mode="after")
    def _revised_after_release(self) -> Hti1Attributes:
        if self.last_revision_date < self.release_date:
            raise ValueError("last_revision_date is before release_date")
        return self

    def uses_list(self) -> list[tuple[str, str, Use]]:
        """(key, label, use) for every attribute, in the regulation's order."""
        return [(key, label, getattr(self.uses, key)) for key, label in USE_ATTRIBUTES.items()]


class _Partial(_Strict):
    """Defaults or a topic entry: any attribute, none required until merged."""

    citation: list[str] | None = None
    developer: str | None = None
    funding_source: str | None = None
    release_date: date | None = None
    last_revision_date: date | None = None
    uses: dict[str, Use] | None = None

    @model_validator(mode="after")
    def _known_uses(self) -> _Partial:
        unknown = sorted(set(self.uses or {}) - set(USE_ATTRIBUTES))
        if unknown:
            raise ValueError(f"uses: unknown attributes {unknown}; known: {list(USE_ATTRIBUTES)}")
        return self


class Hti1File(_Strict):
    defaults: _Partial = _Partial()
    topics: dict[str, _Partial]


def merged(defaults: _Partial, entry: _Partial) -> dict[str, Any]:
    """The topic entry over the defaults; ``uses`` is merged attribute by attribute."""
    base = defaults.model_dump(exclude_none=True)
    over = entry.model_dump(exclude_none=True)
    uses: Mapping[str, Any] = {**base.pop("uses", {}), **over.pop("uses", {})}
    result: dict[str, Any] = {**base, **over}
    if uses:
        result["uses"] = dict(uses)
    return result


def _problems(prefix: str, exc: ValidationError) -> str:
    return "; ".join(
        ".".join([prefix, *(str(part) for part in error["loc"])]).strip(".") + f": {error['msg']}"
        for error in exc.errors(include_url=False)
    )


def resolve_hti1(
    path: Path,
    data: Any,
    *,
    cites: Mapping[str, Sequence[str]],
    sources: Mapping[str, object],
) -> dict[str, Hti1Attributes]:
    """The complete attributes of every topic in ``cites`` (topic code → the sources its cards
    cite); entries for topics not present are allowed and left out."""
    try:
        raw = Hti1File.model_validate(data)
    except ValidationError as exc:
        raise ContentError(f"{path}: {_problems('', exc) or 'invalid'}") from None
    attributes: dict[str, Hti1Attributes] = {}
    for code, cited in cites.items():
        entry = raw.topics.get(code)
        if entry is None:
            raise ContentError(
                f"{path}: topics.{code}: missing (every topic needs its HTI-1 source attributes)"
            )
        try:
            found = Hti1Attributes.model_validate(merged(raw.defaults, entry))
        except ValidationError as exc:
            raise ContentError(f"{path}: {_problems(f'topics.{code}', exc)}") from None
        unknown = [key for key in found.citation if key not in sources]
        if unknown:
            raise ContentError(f"{path}: topics.{code}.citation: unknown sources {unknown}")
        uncited = [key for key in cited if key not in found.citation]
        if uncited:
            raise ContentError(
                f"{path}: topics.{code}.citation: missing {uncited}, which topics/{code}.yaml cites"
            )
        attributes[code] = found
    return attributes
