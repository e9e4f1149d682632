"""Register and lab-system extracts -> a delivery in the contract's format.

Danish data teams receive register extracts (Statistics Denmark: BEF, DOD, VNDS, LMDB,
LPR; the Health Data Authority: CPR3_T_PERSON, LMS_EPIKUR, LPR_F_*, the lab register)
or a regional lab system's export, not fh-screen's CSV contract. ``convert`` maps such a
folder into one contract delivery with a manifest that accounts for every row. The
mappings are data (``layouts/*.yaml``) plus small pure functions (``fields``, ``people``,
``events``); ``step`` is the only part that reads or writes files. See docs/registers.md.
"""

from fh_screen.convert.layout import LAYOUTS
from fh_screen.convert.step import convert

__all__ = ["LAYOUTS", "convert"]
