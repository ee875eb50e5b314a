"""imdb-plots: a plots page that renders with no network, checked in a real headless browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imdb_rnn.errors import PipelineError
from imdb_rnn.plots import PLOTS_PLACEHOLDER, offline_template
from imdb_rnn.plots import main as plots_main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Debian's chromium and sets this, so that the browser test cannot be skipped there.
REQUIRE_BROWSER = os.environ.get("IMDB_RNN_REQUIRE_BROWSER") == "1"


def test_the_template_inlines_the_libraries_and_leaves_the_cdn_out():
    page = offline_template("window.vegaEmbed = function () {}; // </script> inside")
    assert PLOTS_PLACEHOLDER in page and "{scripts}" not in page
    assert "https://" not in page and "<\\/script>" in page
    assert page.count("</script>") == 1


def write_plots(root: Path) -> Path:
    """The smallest DVC project with the pipeline's kinds of plots: a curve and a confusion
    matrix, read from files in the workspace (no stage needs to run); git and DVC not set up."""
    root.mkdir()
    (root / "loss.tsv").write_text("step\tloss\n0\t0.7\n1\t0.4\n2\t0.3\n")
    (root / "confusion.csv").write_text("actual,predicted\n0,0\n0,1\n1,1\n1,1\n")
    (root / "dvc.yaml").write_text(
        "plots:\n"
        "  - Loss per epoch:\n      x: step\n      y:\n        loss.tsv: loss\n"
        "  - Confusion:\n      template: confusion\n      x: actual\n"
        "      y:\n        confusion.csv: predicted\n"
    )
    return root


@pytest.fixture
def plots_project(tmp_path) -> Path:
    root = write_plots(tmp_path / "project")
    environment = os.environ | {"DVC_NO_ANALYTICS": "1"}
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(command, cwd=root, check=True, env=environment)
    return root


def test_the_plots_of_the_pipeline_are_read_off_dvc_yaml():
    from imdb_rnn.params import read_document
    from imdb_rnn.plots import plot_data_files
    from tests.conftest import REPO_ROOT

    sources = plot_data_files(read_document(REPO_ROOT / "dvc.yaml")["plots"])
    assert ("Loss per epoch", "reports/train/plots/metrics/eval/loss.tsv", ("step", "loss")) in (
        sources
    )
    assert len(sources) == 8 and all((REPO_ROOT / file).is_file() for _, file, _ in sources)


def test_the_unchanged_plot_files_pass_the_check(tmp_path):
    from imdb_rnn.plots import check_workspace_plots

    root = write_plots(tmp_path / "project")
    (root / ".dvc").mkdir()
    check_workspace_plots(root / "subdirectory")  # found from anywhere inside the project


# Round 3: DVC drew the page without the plot, warned without naming the file, and exited 0.
@pytest.mark.parametrize(
    ("file", "content", "expected"),
    [
        ("confusion.csv", None, "confusion.csv (drawn in the plot 'Confusion') does not exist"),
        ("loss.tsv", b"\x00\x01garbage\xff", "loss.tsv (drawn in the plot 'Loss per epoch') is"
         " not readable ('utf-8' codec can't decode byte 0xff"),
        ("loss.tsv", b"", "loss.tsv (drawn in the plot 'Loss per epoch') holds no data"),
        ("loss.tsv", b"foo\tbar\n1\t2\n", "loss.tsv (drawn in the plot 'Loss per epoch') has"
         " no field 'step' (it has foo, bar)"),
    ],
)  # fmt: skip
def test_a_missing_or_unreadable_plot_file_is_named(tmp_path, monkeypatch, file, content, expected):
    root = write_plots(tmp_path / "project")
    (root / ".dvc").mkdir()
    if content is None:
        (root / file).unlink()
    else:
        (root / file).write_bytes(content)
    monkeypatch.chdir(root)
    with pytest.raises(PipelineError) as caught:
        plots_main(["--out", str(tmp_path / "plots")])
    assert str(caught.value).startswith(expected)
    assert str(caught.value).endswith("rerun the stage that writes it (dvc repro), or restore it"
                                      " (git checkout or dvc checkout)")  # fmt: skip
    assert not (tmp_path / "plots").exists()


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
