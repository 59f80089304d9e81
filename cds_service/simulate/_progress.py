"""A one-line progress bar with patients per second, for a terminal only."""

from __future__ import annotations

import time
from typing import TextIO

_WIDTH = 28
_EVERY_S = 0.2


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """Redraws at most five times a second; draws nothing unless ``enabled``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool,
        label: str,
        total: int | None,
        unit: str = "patients",
    ) -> None:
        self.stream = stream
        self.enabled = enabled
        self.label = label
        self.unit = unit
        self.total = total or None
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._shown = False

    def update(self, done: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < _EVERY_S:
            return
        self._drawn_at = now
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        total = self.total if self.total and self.total >= done else None
        if total:
            filled = int(_WIDTH * done / total)
            bar = "#" * filled + "-" * (_WIDTH - filled)
            eta = _clock((total - done) / rate) if rate > 0 else "?"
            text = (
                f"{self.label} [{bar}] {done:,}/{total:,} {self.unit}  "
                f"{rate:,.0f} {self.unit}/s  ETA {eta}"
            )
        else:
            text = f"{self.label} {done:,} {self.unit}  {rate:,.0f} {self.unit}/s"
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def finish(self, done: int, *, keep: bool = True) -> None:
        """The final state; ``keep`` False clears the line for the next bar."""
        if not self.enabled:
            return
        self.update(done, force=True)
        if self._shown:
            self.stream.write("\n" if keep else "\r\x1b[K")
            self.stream.flush()
