"""The one error a broken ``cards/`` raises."""

from __future__ import annotations


class ContentError(Exception):
    """A ``cards/`` file is broken: the message names the file, the field and the reason."""
