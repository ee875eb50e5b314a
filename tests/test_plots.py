"""imdb-plots: a plots page that renders with no network, checked in a real headless browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imdb_rnn.plots import PLOTS_PLACEHOLDER, offline_template

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Debian's chromium and sets this, so that the browser test cannot be skipped there.
REQUIRE_BROWSER = os.environ.get("IMDB_RNN_REQUIRE_BROWSER") == "1"


def test_the_template_inlines_the_libraries_and_leaves_the_cdn_out():
    page = offline_template("window.vegaEmbed = function () {}; // </script> inside")
    assert PLOTS_PLACEHOLDER in page and "{scripts}" not in page
    assert "https://" not in page and "<\\/script>" in page
    assert page.count("</script>") == 1


@pytest.fixture
def plots_project(tmp_path) -> Path:
    """The smallest DVC project with the pipeline's kinds of plots: a curve and a confusion
    matrix, read from files in the workspace (no stage needs to run)."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "loss.tsv").write_text("step\tloss\n0\t0.7\n1\t0.4\n2\t0.3\n")
    (root / "confusion.csv").write_text("actual,predicted\n0,0\n0,1\n1,1\n1,1\n")
    (root / "dvc.yaml").write_text(
        "plots:\n"
        "  - Loss per epoch:\n      x: step\n      y:\n        loss.tsv: loss\n"
        "  - Confusion:\n      template: confusion\n      x: actual\n"
        "      y:\n        confusion.csv: predicted\n"
    )
    environment = os.environ | {"DVC_NO_ANALYTICS": "1"}
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(command, cwd=root, check=True, env=environment)
    return root


@pytest.mark.slow
def test_the_page_renders_offline_in_a_headless_browser(plots_project, tmp_path):
    if not CHROMIUM:
        if REQUIRE_BROWSER:
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("needs Debian's chromium")
    imdb_plots = Path(sys.executable).parent / "imdb-plots"
    subprocess.run(
        [str(imdb_plots), "--out", str(tmp_path / "plots")], cwd=plots_project, check=True
    )
    page = tmp_path / "plots" / "index.html"
    html = page.read_text()
    assert "cdn.jsdelivr" not in html and "vegaEmbed(" in html
    screenshot = tmp_path / "page.png"
    browser = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,800",
        "--virtual-time-budget=10000", f"--screenshot={screenshot}", page.as_uri(),
    ]  # fmt: skip
    subprocess.run(browser, check=True, capture_output=True, timeout=120)
    from PIL import Image

    pixels = list(Image.open(screenshot).convert("L").getdata())
    drawn = sum(1 for value in pixels if value < 200) / len(pixels)
    assert drawn > 0.01, f"the page is blank ({drawn:.2%} of its pixels drawn)"
