"""`newsevents predict` stopped by a signal, as a scheduler (SIGTERM) or Ctrl-C (SIGINT to the
whole process group) stops it: real processes on a large input, killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).parent / "newsevents")


def live_processes(group: int) -> list[int]:
    """Processes of a process group that still run (zombies, already ended, are left out)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name sits in parentheses and may hold spaces: split after it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def wait_for_partial_output(directory: Path, process: subprocess.Popen, timeout: float) -> None:
    """Until the hidden partial output file holds some rows: the batch is mid-run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.stat().st_size > 0 for p in directory.glob(".*.part")):
            return
        if process.poll() is not None:
            pytest.fail(f"predict ended before it was interrupted: {process.stderr.read()}")
        time.sleep(0.05)
    pytest.fail(f"no partial output in {directory} after {timeout} s")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize(("signum", "whole_group", "message"), [
    (signal.SIGTERM, False, "newsevents predict: terminated (SIGTERM); nothing was written"),
    (signal.SIGINT, True, "newsevents predict: interrupted; nothing was written"),
], ids=["sigterm", "ctrl-c"])
def test_interrupted_predict_leaves_nothing_behind(tiny_model_dir, large_input_dir, tmp_path,
                                                   signum, whole_group, message):
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(
        [CLI, "predict", str(large_input_dir), "--model", str(tiny_model_dir),
         "-o", str(out / "labels.jsonl"), "--summary", str(out / "summary.csv")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_partial_output(out, process, timeout=120)
        if whole_group:
            os.killpg(process.pid, signum)
        else:
            os.kill(process.pid, signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 128 + signum
    assert stderr.strip().splitlines() == [message]  # one clear line, no traceback or warning
    assert list(out.iterdir()) == []  # no output, summary, errors file or hidden .part file
    deadline = time.monotonic() + 10
    while live_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_processes(process.pid) == []  # the worker processes ended too
