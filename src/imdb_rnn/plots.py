"""imdb-plots: the pipeline's plots as an HTML page that renders with no network.

`dvc plots show` writes a page that loads Vega, Vega-Lite and Vega-Embed from a CDN, so offline it
is blank. This command hands DVC a page template with those libraries inlined (the bundle that
vl-convert-python ships), so the page it writes works anywhere, a machine without internet
included:

    imdb-plots                       # dvc plots show, into plots/index.html
    imdb-plots --diff main           # dvc plots diff main: this workspace against main
    imdb-plots --out /tmp/plots -- --open   # anything after -- goes to dvc as it is
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from imdb_rnn import cli
from imdb_rnn.errors import PipelineError

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
