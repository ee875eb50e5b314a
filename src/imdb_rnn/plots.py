"""imdb-plots: the pipeline's plots as an HTML page that renders with no network.

`dvc plots show` writes a page that loads Vega, Vega-Lite and Vega-Embed from a CDN, so offline it
is blank. This command hands DVC a page template with those libraries inlined (the bundle that
vl-convert-python ships), so the page it writes works anywhere, a machine without internet
included:

    imdb-plots                       # dvc plots show, into plots/index.html
    imdb-plots --diff main           # dvc plots diff main: this workspace against main
    imdb-plots --out /tmp/plots -- --open   # anything after -- goes to dvc as it is

DVC draws a page without a plot whose data file is missing or unreadable, warns without naming
the file, and exits 0; so the workspace's data files are checked first, and one that is missing,
unreadable or empty, or lacks a field its plot draws, is an error that names it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from imdb_rnn import cli
from imdb_rnn.errors import PipelineError
from imdb_rnn.params import read_document

# The placeholder dvc fills with one <div> and <script> per plot; the page DVC would otherwise
# fill {scripts} with <script src="https://cdn..."> tags, which this template leaves out.
PLOTS_PLACEHOLDER = "{plot_divs}"


def offline_template(bundle: str) -> str:
    """An HTML page template for `dvc plots show --html-template`, with ``bundle`` (JavaScript
    that defines vega, vegaLite and vegaEmbed) inlined in its head."""
    # "</script" inside the bundle would end the inline script early.
    safe_bundle = bundle.replace("</script", "<\\/script")
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>imdb-rnn plots</title>\n'
        f'<script type="text/javascript">\n{safe_bundle}\n</script>\n'
        "<style>body { font-family: sans-serif; } table { border-spacing: 15px; }</style>\n"
        f"</head>\n<body>\n{PLOTS_PLACEHOLDER}\n</body>\n</html>\n"
    )


def vega_bundle() -> str:
    try:
        import vl_convert
    except ImportError:
        raise PipelineError(
            "vl-convert-python is not installed; pip install -e . -c constraints.txt"
        ) from None
    return vl_convert.javascript_bundle()


def plot_data_files(plots: list | None) -> list[tuple[str, str, tuple[str, ...]]]:
    """(plot title, data file, the fields the plot draws from it) for every data file of a
    dvc.yaml's top-level plots section; the files are relative to that dvc.yaml."""
    sources = []
    for entry in plots or []:
        title, props = (entry, None) if isinstance(entry, str) else next(iter(entry.items()))
        props = props if isinstance(props, dict) else {}
        x, y = props.get("x"), props.get("y")
        if isinstance(y, dict):  # the id is a title, and y maps each data file to its fields
            for file, fields in y.items():
                x_field = x.get(file) if isinstance(x, dict) else x
                sources.append((title, file, _fields(x_field) + _fields(fields)))
        else:  # the id is the data file itself
            sources.append((title, title, _fields(x) + _fields(y)))
    return sources


def _fields(value: Any) -> tuple[str, ...]:
    if value is None or isinstance(value, dict):
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def check_plot_data(root: Path, title: str, file: str, fields: tuple[str, ...]) -> None:
    """A one-line error if the workspace's data file cannot give its plot anything to draw."""
    path = root / file
    if path.is_dir():  # a directory of plots: DVC draws whatever it holds
        return
    where = f"{file} (drawn in the plot '{title}')"
    fix = "rerun the stage that writes it (dvc repro), or restore it (git checkout or dvc checkout)"
    if not path.exists():
        raise PipelineError(f"{where} does not exist; {fix}")
    try:
        table = _read_table(path)
    except (OSError, ValueError, csv.Error) as error:  # UnicodeDecodeError is a ValueError
        detail = " ".join(str(error).split()) or type(error).__name__
        raise PipelineError(f"{where} is not readable ({detail}); {fix}") from None
    if table is None:  # a format this check does not read (DVC also draws YAML and images)
        return
    columns, rows = table
    if rows == 0:
        raise PipelineError(f"{where} holds no data; {fix}")
    for field in fields:
        if field not in columns:
            raise PipelineError(
                f"{where} has no field {field!r} (it has {', '.join(columns) or 'none'}); {fix}"
            )


def _read_table(path: Path) -> tuple[list[str], int] | None:
    """(column names, number of rows) of a CSV, TSV or JSON data file, as DVC reads them."""
    delimiters = {".csv": ",", ".tsv": "\t"}
    if path.suffix in delimiters:
        text = path.read_text(encoding="utf-8")
        reader = csv.reader(io.StringIO(text), delimiter=delimiters[path.suffix])
        lines = [row for row in reader if row]
        return (lines[0], len(lines) - 1) if lines else ([], 0)
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):  # DVC draws the first list it finds in an object
            data = next((value for value in data.values() if isinstance(value, list)), [])
        if not isinstance(data, list):
            raise ValueError("neither a list of records nor an object holding one")
        columns = list(dict.fromkeys(key for row in data if isinstance(row, dict) for key in row))
        return columns, len(data)
    return None


def project_root(start: Path) -> Path | None:
    """The DVC project that ``start`` lies in (the directory holding .dvc), if any."""
    return next((path for path in (start, *start.parents) if (path / ".dvc").is_dir()), None)


def check_workspace_plots(start: Path) -> None:
    """Check every data file that the project's dvc.yaml draws, as the workspace holds it."""
    root = project_root(start.resolve())
    if root is None or not (root / "dvc.yaml").is_file():
        return  # dvc itself says what is wrong
    document = read_document(root / "dvc.yaml")
    plots = document.get("plots") if isinstance(document, dict) else None
    for title, file, fields in plot_data_files(plots):
        check_plot_data(root, title, file, fields)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="imdb-plots", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("plots"), help="where index.html goes")
    parser.add_argument(
        "--diff", nargs="*", metavar="REV", help="compare revisions (dvc plots diff)"
    )
    parser.add_argument("dvc_args", nargs="*", help="passed to dvc after --")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.diff is None or len(args.diff) <= 1:  # the page draws the workspace's files
        check_workspace_plots(Path.cwd())
    with tempfile.TemporaryDirectory(prefix="imdb-plots-") as scratch:
        template = Path(scratch) / "offline.html"
        template.write_text(offline_template(vega_bundle()), encoding="utf-8")
        command = (
            ["dvc", "plots", "diff", *args.diff]
            if args.diff is not None
            else ["dvc", "plots", "show"]
        )
        command += ["--html-template", str(template), "--out", str(args.out), *args.dvc_args]
        completed = cli.run_dvc(command)
    if completed.returncode != 0:
        raise PipelineError(f"{' '.join(command[:3])} failed (exit status {completed.returncode})")
    print(f"offline plots: {args.out / 'index.html'}")


def entry_point() -> None:
    cli.run(main, "imdb-plots", log_level="WARNING", dies_with_parent=False)
