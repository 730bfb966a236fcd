"""The reports in a real browser: headless Chromium loads each offline, runs its script, shows every chart.

Covers the MNIST, the LM and a user family's study (one code path). Saves
screenshots to <repo>/test-artifacts/report-<study>.png. Skipped when no
`chromium` is installed (scripts/test installs Debian's package).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless browser test needs `chromium` on PATH "
                                "(apt-get install chromium; scripts/test installs it)")

# Run after the page's own script: click the first legend entry and hover a point,
# then record what happened where --dump-dom can read it.
PROBE = """<script>
(function () {
  var button = document.querySelector(".legend-item");
  button.click();
  var key = button.getAttribute("data-s");
  var hidden = document.querySelectorAll('svg [data-s="' + key + '"].off').length;
  var point = document.querySelector("svg [data-tip]");
  point.dispatchEvent(new MouseEvent("mouseover", {bubbles: true, clientX: 20, clientY: 20}));
  var tip = document.getElementById("tooltip");
  document.body.setAttribute("data-probe", "hidden=" + hidden + ";pressed=" + button.getAttribute("aria-pressed")
    + ";tip=" + (tip.hidden ? "" : tip.textContent.split("\\n")[0]));
}());
</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("which,shot_name", [("written", "report-mnist"), ("lm_written", "report-lm"),
                                             ("toy_written", "report-toy-mlp")])
def test_report_renders_in_headless_chromium(which, shot_name, request, tmp_path):
    written = request.getfixturevalue(which)
    report = request.getfixturevalue({"written": "report", "lm_written": "lm_report",
                                      "toy_written": "toy_report"}[which])
    page = written.read_text()
    probed = written.with_name("probed.html")
    probed.write_text(page.replace("</body>", PROBE + "\n</body>"))
    run = chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--dump-dom",
                   probed.as_uri(), profile=tmp_path / "profile")
    dom = run.stdout
    assert "</html>" in dom, run.stderr[-2000:]
    assert "Uncaught" not in run.stderr, run.stderr[-2000:]
    assert 'data-js="ok"' in dom and "<title>JS error" not in dom
    assert re.search(r'<pre id="js-errors" hidden(="")?></pre>', dom), "the page reported a JavaScript error"
    assert "<title>INJECTED</title>" not in dom  # the MNIST study name's <script> stayed text
    charts = report.charts()
    assert len(re.findall(r'<section class="chart"', dom)) == len(charts)
    assert len(re.findall(r'<svg class="chart-panel"', dom)) == sum(len(c.panels) for c in charts)
    assert all(f'id="{c.key}"' in dom for c in charts)
    assert f'data-figures="{len(charts)}"' in dom
    probe = re.search(r'data-probe="hidden=(\d+);pressed=(\w+);tip=([^"]*)"', dom)
    assert probe, "the probe script did not run"
    assert int(probe.group(1)) > 0 and probe.group(2) == "false" and probe.group(3), probe.group(0)

    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / f"{shot_name}.png"
    shot.unlink(missing_ok=True)
    run = chromium(f"--screenshot={shot}", "--window-size=1400,4000", written.as_uri(),
                   profile=tmp_path / "profile")
    assert shot.exists() and shot.stat().st_size > 50_000, run.stderr[-2000:]
