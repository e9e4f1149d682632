"""One definition of each concept: outputs read the project's reference lists instead of
keeping their own copies."""

from __future__ import annotations

from fh_screen import reference
from fh_screen.outputs import worklists


def test_worklists_name_drugs_from_the_one_drug_list():
    names = worklists.drug_names()
    assert set(names) == set(reference.csv("lipid_drugs")["atc_code"])
    assert names["C10AX17"] == "evinacumab" and names["C10AA05"] == "atorvastatin"
    assert names["C10BA05"] == "atorvastatin + ezetimibe"
