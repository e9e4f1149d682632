"""Pilot outcome metrics for evaluators: additive aggregates, disclosure control, the
federated merge, the HTML report. See ``compute`` for the definitions and ``federated``
for why regions export two files."""

from fh_screen.stages.metrics.step import metrics_step

__all__ = ["metrics_step"]
