"""CDS Hooks 2.0.1 prefetch tokens → a relative FHIR query."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

_TOKEN = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_.]*)\s*\}\}")

# Tokens derived from context.userId ("Practitioner/123"), per CDS Hooks 2.0.1.
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return str(value)
    return None


def _user_id_of(context: Mapping[str, Any], resource_type: str) -> str | None:
    user = _scalar(context.get("userId"))
    if user is None:
        return None
    parts = user.rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != resource_type:
        return None
    return parts[-1] or None


def _token_value(name: str, context: Mapping[str, Any]) -> str | None:
    if name.startswith("context."):
        field = name.removeprefix("context.")
        return None if "." in field else _scalar(context.get(field))
    resource_type = _USER_TOKENS.get(name)
    return _user_id_of(context, resource_type) if resource_type else None


def render_template(template: str, context: Mapping[str, Any]) -> str | None:
    """Substitute prefetch tokens with URL-encoded context values.

    Returns None when any token cannot be resolved (unknown token, missing or non-scalar
    value, a userId of another resource type, or a stray ``{{``/``}}``): that key cannot be
    obtained. Values are percent-encoded with no safe characters, so an id can never add a
    path segment or a query parameter.
    """
    unresolved = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal unresolved
        value = _token_value(match.group(1), context)
        if value is None:
            unresolved = True
            return ""
        return quote(value, safe="")

    rendered = _TOKEN.sub(substitute, template)
    if unresolved or "{{" in rendered or "}}" in rendered:
        return None
    return rendered
