"""Client-facing errors and their OperationOutcome bodies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue: what is wrong and where (a FHIRPath-like location)."""

    diagnostics: str
    code: str = "invalid"
    severity: str = "error"
    expression: str | None = None


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    body_issues: list[dict[str, Any]] = []
    for issue in issues:
        entry: dict[str, Any] = {
            "severity": issue.severity,
            "code": issue.code,
            "diagnostics": issue.diagnostics,
        }
        if issue.expression:
            entry["expression"] = [issue.expression]
        body_issues.append(entry)
    return {"resourceType": "OperationOutcome", "issue": body_issues}


@dataclass(eq=False)
class ServiceError(Exception):
    """An error with an HTTP status and an OperationOutcome for the client."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues) or f"HTTP {self.status}"

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class BadRequest(ServiceError):
    def __init__(self, diagnostics: str, expression: str | None = None) -> None:
        super().__init__(400, [Issue(diagnostics, "invalid", "error", expression)])


class DataUnavailable(ServiceError):
    """The data a service needs could not be obtained: answered with 412."""

    def __init__(self, missing: Sequence[str], reason: str) -> None:
        self.missing = list(missing)
        super().__init__(
            412,
            [
                Issue(f"{reason}: {key}", "not-found", "error", f"prefetch.{key}")
                for key in self.missing
            ]
            or [Issue(reason, "not-found")],
        )
