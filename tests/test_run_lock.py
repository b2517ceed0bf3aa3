"""One writer per run directory: a second trainer is refused in one line naming the holder and
touches nothing, the lock dies with its holder (SIGKILL included), a stale lock file never
blocks, reading commands work while a run trains, and the metrics log is rewritten atomically."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from jaxgen.train import lock as lock_lib
from jaxgen.train.run import MetricsLog
from tests import helpers


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("runs") / "vae"
    result = helpers.run_cli(["train", *helpers.cli_args("steps=20", "checkpoint_every=10"),
                              "--workdir", str(workdir), "--stop-at", "10"], devices=1)
    assert result.returncode == 0, result.stderr
    return workdir


def _tree(workdir) -> dict:
    return {str(p.relative_to(workdir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(workdir.rglob("*")) if p.name != lock_lib.LOCK_FILE}


def test_a_second_trainer_is_refused_and_readers_are_not(trained, tmp_path):
    before = _tree(trained)
    with lock_lib.RunLock(trained):
        result = helpers.run_cli(["train", *helpers.cli_args("steps=20", "checkpoint_every=10"),
                                  "--workdir", str(trained)], devices=1)
        assert result.returncode == 2, result.stderr
        line = result.stderr.strip()
        assert "\n" not in line and f"pid {os.getpid()} on {socket.gethostname()}" in line
        assert _tree(trained) == before  # nothing written, the log not doubled
        sample = helpers.run_cli(["sample", "--run", str(trained), "--num", "4", "--out",
                                  str(tmp_path / "s.npz")], devices=1)
        assert sample.returncode == 0, sample.stderr
    again = helpers.run_cli(["train", *helpers.cli_args("steps=20", "checkpoint_every=10"),
                             "--workdir", str(trained)], devices=1)
    assert again.returncode == 0, again.stderr  # released: the run continues
    steps = [json.loads(line)["step"] for line in (trained / "metrics.jsonl").open()]
    assert steps == sorted(set(steps)) and steps[-1] == 20


def test_the_lock_dies_with_its_holder_and_stale_files_do_not_block(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from jaxgen.train.lock import RunLock; "
         f"lock = RunLock({str(tmp_path)!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=helpers.ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lock_lib.RunLockedError, match=f"pid {holder.pid} on "):
            lock_lib.RunLock(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / lock_lib.LOCK_FILE).exists()  # left behind, and harmless
    lock_lib.RunLock(tmp_path).release()
    (tmp_path / lock_lib.LOCK_FILE).write_text("not json")
    with lock_lib.RunLock(tmp_path):
        with pytest.raises(lock_lib.RunLockedError, match=f"pid {os.getpid()}"):
            lock_lib.take(tmp_path)


def test_the_metrics_log_is_rewritten_atomically(tmp_path, monkeypatch):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in range(1, 6):
        log.append({"step": step, "loss": 1.0 / step})
    original = log.path.read_text()

    def killed(*_):
        raise KeyboardInterrupt  # the moment between writing the new log and renaming it

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        log.drop_after(2)
    assert log.path.read_text() == original
    monkeypatch.undo()
    log.drop_after(2)
    assert [r["step"] for r in log.records()] == [1, 2]
