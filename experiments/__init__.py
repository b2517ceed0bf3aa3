"""The shipped experiment configs: each `NAME.py` here defines `get_config()` and is named on
the command line as `--config NAME` (or by its path). `common.py` holds the helpers they share;
`studies/` holds scripts that compare runs, kept to the repository.

The wheel installs this folder as the package `jaxgen.experiments` (pyproject's
`package-dir`), so the configs travel with `pip install`; `jaxgen.config.experiments_dir()`
finds them either way."""
