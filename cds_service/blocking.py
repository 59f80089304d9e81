"""The one signal that a call made on the event loop would have to wait for I/O."""

from __future__ import annotations


class WouldBlock(Exception):
    """Raised by an ``inline`` call that would block on I/O (the FHIR server or the database).

    The HTTP layer runs hook calls on the event loop when they are pure CPU (complete prefetch)
    and retries them in a worker thread when they raise this.
    """
