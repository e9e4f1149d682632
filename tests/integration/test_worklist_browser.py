"""A GP worklist opened in a real headless Chromium: screenshot and DOM checks.

Skipped when Chromium is not installed, unless FH_REQUIRE_BROWSER=1 (CI), where a
missing browser fails the test instead.
"""

import os
import shutil
import struct
import subprocess
import sys
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.stages.referrals.step import referrals_step# noqa: E402

pytestmark = pytest.mark.browser
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,1600",
]


def chromium(which=shutil.which, fallback: Path = Path("/usr/bin/chromium")) -> str:
    path = which("chromium") or (str(fallback) if fallback.exists() else None)
    if path:
        return path
    if os.environ.get("FH_REQUIRE_BROWSER") == "1":
        pytest.fail("FH_REQUIRE_BROWSER=1 but chromium is not installed (scripts/browser.sh installs it)")
    pytest.skip("chromium not installed: apt-get install chromium (or run scripts/browser.sh) to run this test")


class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.starts, self.text, self._stack = [], {}, []

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))
        self._stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self._stack:
            while self._stack.pop() != tag:
                pass

    def handle_data(self, data):
        for tag in set(self._stack):
            self.text.setdefault(tag, []).append(data)


@pytest.fixture(scope="module")
def worklist(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    rows = [f.rule(f"p{i}", dlcn_points=12 - i) for i in range(4)]
    rows.append(f.rule("check", route="check_secondary_cause_first", secondary_cause="TSH 14 mIU/L on 2025-03-02"))
    labs = [{"result_id": f"l{i}", "patient_id": "p0", "sampled_at": datetime(2018 + i, 5, 1), "analyte": "ldl",
             "value": v, "status": "final"} for i, v in enumerate([5.4, 6.8, 8.1, 7.2, 4.9])]
    contacts = [{"patient_id": "p0", "full_name": '<script>document.title="pwned"</script> Ærø "Ø"'}]
    db_path = f.build_db(tmp / "r.duckdb", rows, labs=labs, contacts=contacts)
    ctx = f.context(tmp, db_path, cfg=f.settings(clinics=[]))
    referrals_step(ctx)
    return ctx.work_dir / "worklists" / "P1.html", tmp


def run_chromium(args, tmp):
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, timeout=120, check=True,
    )


def test_dom_as_the_browser_builds_it(worklist):
    page, tmp = worklist
    dom_text = run_chromium(["--dump-dom", page.as_uri()], tmp).stdout.decode("utf-8")
    dom = Dom()
    dom.feed(dom_text)
    html_attrs = [a for t, a in dom.starts if t == "html"][0]
    assert html_attrs["lang"] == "da"
    # the injected script was text, so the browser never ran it
    assert "pwned" not in "".join(dom.text.get("title", []))
    assert [t for t, _ in dom.starts].count("script") == 0
    assert "Arbejdsliste" in "".join(dom.text["h1"])
    assert len([1 for t, a in dom.starts if t == "section" and a.get("class") == "patient"]) == 5
    body_rows = [a for t, a in dom.starts if t == "th" and a.get("scope") == "row"]
    assert len(body_rows) >= 5
    headings = "".join(dom.text["h2"])
    assert 'Patient-id p0 – <script>document.title="pwned"</script> Ærø "Ø"' in headings
    assert "Beslutningsstøtte til klinikere" in "".join(dom.text["footer"])


def test_screenshot_shows_a_rendered_page(worklist):
    page, tmp = worklist
    shot = tmp / "worklist.png"
    run_chromium([f"--screenshot={shot}", page.as_uri()], tmp)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 1600)

    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    dark = (pixels[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.005 < dark < 0.5  # text drawn on a light page, not blank and not black
    heading_blue = ((pixels[..., 2] > 0.45) & (pixels[..., 0] < 0.2)).sum()
    assert heading_blue > 100  # the blue heading and badges rendered with their styles


@pytest.mark.parametrize("required, outcome", [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_browser_skips_locally_and_fails_in_ci(monkeypatch, tmp_path, required, outcome):
    monkeypatch.setenv("FH_REQUIRE_BROWSER", required)
    with pytest.raises(outcome):
        chromium(which=lambda name: None, fallback=tmp_path / "no-chromium")
