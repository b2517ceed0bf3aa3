"""One writer per run directory: `train` holds an OS lock on WORKDIR/.lock while it runs.

The lock is `fcntl.flock`, not the file's existence: the kernel releases it when the holder
exits for any reason (SIGKILL included), so a lock file left behind by a dead process never
blocks. The file's content (pid, host, since when) only names the holder in the refusal. With
many processes, process 0 takes the lock and all learn the outcome (a collective) before any of
them writes. Reading commands (`sample`, `eval`, `generate`, `interpolate`) take no lock and
work while a run trains.
"""

import datetime
import fcntl
import json
import os
import socket
from pathlib import Path

import jax

from jaxgen import parallel

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another process is training this run directory."""


def _holder(fd: int) -> str:
    try:
        who = json.loads(os.pread(fd, 4096, 0).decode())
        return f"pid {who['pid']} on {who['host']} since {who['since']}"
    except (ValueError, KeyError, TypeError):
        return "another process (its details are unreadable)"


class RunLock:
    """An exclusive lock on `workdir` for this process; `release` (or exiting) frees it."""

    def __init__(self, workdir):
        self.path = Path(workdir) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunLockedError(
                f"{self.path.parent} is being trained by {holder}: wait for it, stop it, or "
                "train in another --workdir (sample, eval, generate and interpolate read a "
                "training run freely)") from None
        since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": since}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def take(workdir) -> RunLock | None:
    """The run's lock, taken by process 0 (the others get None); every process raises
    `RunLockedError` when process 0 could not take it. A collective: all processes call it."""
    lock, error = None, None
    if jax.process_index() == 0:
        try:
            lock = RunLock(workdir)
        except RunLockedError as e:
            error = e
    if parallel.any_process(error is not None):
        if error is not None:
            raise error
        raise RunLockedError(f"{workdir} is being trained by another process (process 0 "
                             "could not take the run's lock)")
    return lock
