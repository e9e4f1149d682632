"""Register and lab-system extracts -> a delivery in the contract's format.

Danish data teams receive register extracts (Statistics Denmark: BEF, DOD, VNDS, LMDB,
LPR; the Health Data Authority: CPR3_T_PERSON, LMS_EPIKUR, LPR_F_*, the lab register)
or a regional lab system's export, not fh-screen's CSV contract. ``convert`` maps such a
folder into one contract delivery with a manifest that accounts for every row. The
mappings are data (``layouts/*.yaml``) plus small pure functions (``fields``, ``people``,
``events``); ``step`` is the only part that reads or writes files. See docs/registers.md.
"""

from pathlib import Path

from fh_screen.convert.layout import LAYOUTS, load_layout
from fh_screen.convert.read import sources_present
from fh_screen.convert.step import convert


def extracts_ready(folder: Path, layout: str) -> bool:
    """True when ``folder`` holds the required register tables of ``layout``."""
    return Path(folder).is_dir() and sources_present(Path(folder), load_layout(layout))


__all__ = ["LAYOUTS", "convert", "extracts_ready"]
