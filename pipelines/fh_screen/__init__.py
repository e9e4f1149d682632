"""fh-screen: case-finding for familial hypercholesterolaemia from routine lab data.

Outputs are decision support for clinicians, not diagnoses.
"""

__version__ = "0.1.0"
