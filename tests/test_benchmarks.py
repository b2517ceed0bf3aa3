import json

from benchmarks.__main__ import main
from tests import helpers


def test_train_benchmark_reports_compile_and_steady_state(tmp_path):
    out = tmp_path / "r.json"
    assert main(["train", "--config", str(helpers.CPU_CONFIG), "--set", "batch_size=32",
                 "--steps", "3", "--repeats", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["devices"] == 8 and result["batch_size"] == 32
    assert result["compile_seconds"] > 0 and result["steps_per_second"] > 0
    assert result["step_seconds_min"] <= result["step_seconds_median"] <= result["step_seconds_max"]
    assert result["backend"] == "cpu" and result["jax"]
