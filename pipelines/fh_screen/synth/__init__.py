"""Synthetic region generator: families with FH, lab histories, treatment, care records.

``generate`` writes deliveries in the data contract's format plus a separate ground truth
that the pipeline never reads. Parameters and their sources: ``params.yaml``.
"""

from fh_screen.synth.generate import generate

__all__ = ["generate"]
