"""Sphinx configuration of jaxgen's API reference, built from the docstrings:

    python -m sphinx -W --keep-going -b html docs/api docs/api/_build

Warnings are errors (a broken docstring fails the build); tests/test_docs.py builds it."""

import argparse
import re
import sys
from pathlib import Path

import jaxgen

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks, beside jaxgen

project = "jaxgen"
release = version = jaxgen.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autoclass_content = "both"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
default_role = "code"  # `name` in a docstring is code, as the sources write it
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = f"jaxgen {version} API reference"
suppress_warnings = ["ref.python"]  # a name re-exported by two modules is documented twice


def _cli_page(app) -> None:
    """cli.rst: the help of `python -m jaxgen` and of each of its commands, from the parser."""
    from jaxgen import cli

    parser = cli._parser()
    lines = ["Command line", "============", "", "``python -m jaxgen COMMAND`` (or ``jaxgen "
             "COMMAND``), from the parser itself.", "", "::", ""]
    lines += ["    " + line for line in parser.format_help().splitlines()]
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in subparsers.choices.items():
        lines += ["", name, "-" * len(name), "", "::", ""]
        lines += ["    " + line for line in command.format_help().splitlines()]
    Path(app.srcdir, "cli.rst").write_text("\n".join(lines) + "\n")


# A shape such as [B, *data_shape], written bare in the docstrings, as code: RST would read its
# star as the start of emphasis.
_SHAPE = re.compile(r"(?<![`\w])\[[^\[\]`\n]*\*[^\[\]`\n]*\](?!`)")


def _shapes_as_code(app, what, name, obj, options, lines) -> None:
    lines[:] = [_SHAPE.sub(lambda m: f"``{m.group(0)}``", line) for line in lines]


def setup(app):
    app.connect("builder-inited", _cli_page)
    app.connect("autodoc-process-docstring", _shapes_as_code)
