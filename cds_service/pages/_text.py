"""The plain-text convention of ``page:`` texts: paragraphs split by blank lines, "- " items."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Block:
    kind: Literal["p", "ul"]
    items: tuple[str, ...]


def blocks(text: str) -> list[Block]:
    """Paragraphs and bulleted lists; a line that does not start with "- " continues the item
    or paragraph above it."""
    found: list[Block] = []
    for chunk in text.strip().split("\n\n"):
        kind: Literal["p", "ul"] | None = None
        items: list[str] = []
        for raw in chunk.splitlines():
            line = raw.strip()
            if not line:
                continue
            if line.startswith("- "):
                if kind == "p":
                    found.append(Block("p", (" ".join(items),)))
                    items = []
                kind = "ul"
                items.append(line[2:].strip())
            elif kind == "ul":
                items[-1] = f"{items[-1]} {line}"
            else:
                kind = "p"
                items.append(line)
        if kind == "ul":
            found.append(Block("ul", tuple(items)))
        elif kind == "p":
            found.append(Block("p", (" ".join(items),)))
    return found
