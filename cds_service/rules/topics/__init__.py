"""One module per card topic, each defining ``TOPIC``: its spec and its rule.

Modules are found by name (``_``-prefixed ones are shared helpers), so adding a topic is its
module here, its file in ``cards/topics/`` and its tests: nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

from .._base import TopicRule


def discover() -> tuple[TopicRule, ...]:
    """Every topic, ordered by its spec's priority (then code)."""
    found: list[TopicRule] = []
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue
        topic = getattr(importlib.import_module(f"{__name__}.{module.name}"), "TOPIC", None)
        if not isinstance(topic, TopicRule):
            raise TypeError(f"{__name__}.{module.name} defines no TOPIC")
        found.append(topic)
    return tuple(sorted(found, key=lambda t: (t.spec.priority, t.spec.code)))
