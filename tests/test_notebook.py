"""Runs the Colab notebook's code cells on CPU with its tiny config and checks what they produce."""

import math
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "experiments" / "vae_colab_tpu.ipynb"
COLAB_ONLY = "colab-only"


def _is_colab_only(cell) -> bool:
    return COLAB_ONLY in cell.get("metadata", {}).get("tags", [])


def _read():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    return notebook


def test_notebook_is_clean_and_only_the_install_cell_is_colab_only():
    code = [c for c in _read().cells if c.cell_type == "code"]
    tagged = [c for c in code if _is_colab_only(c)]
    assert len(tagged) == 1, "exactly one code cell (the install cell) is tagged colab-only"
    install = tagged[0].source
    assert "REPO_URL" in install and "pip install" in install and "jax[tpu]" in install
    assert code.index(tagged[0]) == 0, "the install cell runs before everything else"
    for cell in code:
        assert not cell.get("outputs") and cell.get("execution_count") is None
        if cell is not tagged[0]:
            magics = [ln for ln in cell.source.splitlines() if ln.lstrip().startswith(("!", "%"))]
            assert not magics, f"shell/magic lines outside the colab-only cell: {magics}"


def test_notebook_runs_tiny_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXGEN_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("JAXGEN_NOTEBOOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(ROOT)
    import matplotlib

    matplotlib.use("Agg")  # in case pyplot was already imported with another backend

    namespace = {"__name__": "__main__"}
    cells = [c for c in _read().cells if c.cell_type == "code" and not _is_colab_only(c)]
    for index, cell in enumerate(cells):
        exec(compile(cell.source, f"<notebook code cell {index}>", "exec"), namespace)

    import matplotlib.pyplot as plt

    plt.close("all")
    assert namespace["TINY"] is True
    config, result = namespace["config"], namespace["result"]
    assert config.steps == 20 and config.model.kind == "mlp"
    assert int(result.state.step) == config.steps
    assert Path(result.workdir).resolve() == tmp_path.resolve()
    checkpoints = tmp_path / "checkpoints"
    assert checkpoints.is_dir()
    assert {p.name for p in checkpoints.iterdir()} >= {"10", "20"}
    assert (tmp_path / "metrics.jsonl").exists()

    metrics = namespace["metrics"]
    assert math.isfinite(metrics["elbo"]) and metrics["elbo"] < 0
    assert math.isfinite(metrics["iwae_nll"]) and metrics["iwae_nll"] > 0
    assert metrics["num_examples"] == 64 and metrics["iwae_samples"] == 10

    sample_path = Path(namespace["sample_path"])
    assert sample_path == tmp_path / "samples_final.png"
    assert sample_path.stat().st_size > 0
