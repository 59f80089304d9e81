"""A ``profile:`` block of the trust file: how to talk to a client's FHIR server and EHR."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..gathering import DISPENSABLE_RESOURCES
from ..versions import CDS_HOOKS_VERSIONS
from ._errors import TrustConfigError
from ._models import DEFAULT_CDS_HOOKS_VERSION, ClientProfile

PROFILE_FIELDS = ("page_size", "sort", "skip_resources", "cds_hooks_version", "content")
MAX_PAGE_SIZE = 1000
# Resource types the rules can do without: a server that lacks one gives "no data" for it.
SKIPPABLE_RESOURCES = DISPENSABLE_RESOURCES
# Resource types the rules cannot do without: a server that lacks one cannot be served.
REQUIRED_RESOURCES = frozenset({"Patient", "Observation", "MedicationRequest"})


class _Block:
    """One profile block being read: errors name the file and the field."""

    def __init__(self, file: Path, where: str) -> None:
        self.file = file
        self.where = where

    def error(self, field: str, reason: str) -> TrustConfigError:
        return TrustConfigError(self.file, f"{self.where}.{field}" if field else self.where, reason)


def _page_size(block: _Block, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise block.error("page_size", f"must be a whole number from 1 to {MAX_PAGE_SIZE}")
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise block.error("page_size", f"{value} is not from 1 to {MAX_PAGE_SIZE}")
    return value


def _sort(block: _Block, value: object) -> bool:
    if not isinstance(value, bool):
        raise block.error("sort", "must be true or false")
    return value


def _skip_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "must be a resource type"
    if name in REQUIRED_RESOURCES:
        return (
            f"{name} cannot be skipped: the rules cannot do without it "
            f"(skippable: {', '.join(sorted(SKIPPABLE_RESOURCES))})"
        )
    if name not in SKIPPABLE_RESOURCES:
        return (
            f"{name!r} is not a resource type the service can skip "
            f"(skippable: {', '.join(sorted(SKIPPABLE_RESOURCES))})"
        )
    return None


def _skip_resources(block: _Block, value: object) -> frozenset[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple):
        raise block.error("skip_resources", "must be a list of resource types")
    for position, name in enumerate(names):
        if problem := _skip_problem(name):
            raise block.error(f"skip_resources[{position}]", problem)
    return frozenset(names)


def _version(block: _Block, value: object) -> str:
    if value not in CDS_HOOKS_VERSIONS or not isinstance(value, str):
        quoted = " or ".join(f'"{v}"' for v in CDS_HOOKS_VERSIONS)
        hint = " (quote it: YAML reads 1.0 as a number)" if isinstance(value, float) else ""
        raise block.error("cds_hooks_version", f"must be {quoted}, not {value!r}{hint}")
    return value


def _content(block: _Block, value: object) -> tuple[Path, str]:
    """The overlay folder, resolved against the trust file's folder, and its label."""
    if not isinstance(value, str) or not value.strip():
        raise block.error("content", "must be the path of a folder (relative to the trust file)")
    folder = Path(value)
    if not folder.is_absolute():
        folder = block.file.parent / folder
    if not folder.is_dir():
        reason = "is not a folder" if folder.exists() else "does not exist"
        raise block.error("content", f"{folder} {reason}")
    resolved = folder.resolve()
    relative = os.path.relpath(resolved, block.file.parent.resolve())
    label = resolved.as_posix() if relative.startswith("..") else Path(relative).as_posix()
    return resolved, label


def parse_profile(
    file: Path, where: str, value: object, base: Mapping[str, Any] | None = None
) -> ClientProfile:
    """A ``profile:`` block (``where`` in ``file``), on top of ``base`` (a preset's values)."""
    block = _Block(file, where)
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise block.error("", f"must be a mapping of {', '.join(PROFILE_FIELDS)}")
    for name in value:
        if name not in PROFILE_FIELDS:
            raise block.error(str(name), f"unknown field (allowed: {', '.join(PROFILE_FIELDS)})")
    fields = {"sort": True, "cds_hooks_version": DEFAULT_CDS_HOOKS_VERSION, **(base or {}), **value}
    folder, label = (
        _content(block, fields["content"]) if fields.get("content") is not None else (None, "")
    )
    return ClientProfile(
        page_size=_page_size(block, fields.get("page_size")),
        sort=_sort(block, fields["sort"]),
        skip_resources=_skip_resources(block, fields.get("skip_resources", [])),
        cds_hooks_version=_version(block, fields["cds_hooks_version"]),
        content=folder,
        content_label=label,
        where=where,
    )
