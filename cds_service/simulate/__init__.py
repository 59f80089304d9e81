"""Alert burden measured before go-live: the real service run over a FHIR Bulk Data export.

``cds-service simulate POPULATION`` answers the question a CDS committee asks before switching a
rule on: how often will it fire, and for whom. For every patient of the export it sends the
service a patient-view at ``--at`` and replays each order authored in the simulated period as
the draft it was, through the same code path as the HTTP hook, then counts the cards per topic
and indicator (``summary.json``), lists them (``cards.ndjson``) and draws them
(``report.html``). Memory stays bounded however large the export: lines are routed to buckets on
disk by patient (``_partition``) and one bucket is evaluated at a time per worker.
"""

from ._run import SimulateOptions, SimulationError, simulate
from ._summary import HOOKS, headline_table

__all__ = ["HOOKS", "SimulateOptions", "SimulationError", "headline_table", "simulate"]
