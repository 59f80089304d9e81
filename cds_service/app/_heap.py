"""Keeping CPython's cyclic GC off the request path."""

from __future__ import annotations

import gc

# A request's objects die by reference counting when it ends. With a first generation this
# large, a collection runs every few requests instead of several times inside each one, where
# it would scan (and promote) the request's live objects; bench/ reports collections per request.
_FIRST_GENERATION_THRESHOLD = 50_000


def settle_heap() -> None:
    """Keep the cyclic GC off the hot path.

    Content, templates and lookup tables live for the whole process: freezing them after
    start-up keeps every later collection small, and a large first-generation threshold keeps
    collections from running inside a request (each request allocates a few thousand objects).
    """
    gc.collect()
    gc.freeze()
    _, *older = gc.get_threshold()
    gc.set_threshold(_FIRST_GENERATION_THRESHOLD, *older)
