"""A consistency sweep on the tiny preset, killed mid-way and run again: it skips the cells already finished
and ends with the numbers that uninterrupted training gives."""

import json
import shutil
import signal
import subprocess
import sys
import time

from conftest import TINY, run_script

from configs.sweeps import consistency_sweep


def test_killed_sweep_resumes_and_skips_finished_cells(finished_run, tmp_path):
    run, results = tmp_path / "run", tmp_path / "results"
    shutil.copytree(finished_run / "run", run)  # pretrained, with the frozen and oracle cells finished
    finished = {path: path.stat().st_mtime_ns for path in (run / "checkpoints").rglob("*") if path.is_file()}
    args = [*TINY, "--sweep", "consistency", "--run-dir", str(run), "--results-dir", str(results)]

    sweep = subprocess.Popen([sys.executable, "train.py", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_new_cell = run / "checkpoints" / "frozen@endpoints-seed100"
    deadline = time.monotonic() + 600
    while not any(first_new_cell.glob("*")) and sweep.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    sweep.send_signal(signal.SIGKILL)
    assert sweep.wait() == -signal.SIGKILL  # killed mid-sweep, not finished
    assert not (results / "summary.json").exists()

    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())  # loaded, not retrained
    summary = json.loads((results / "summary.json").read_text())
    assert list(summary["variants"]) == ["trivial", "self", *consistency_sweep(["tree_plus", "small_world"])]
    original = json.loads((finished_run / "results" / "summary.json").read_text())
    for name in ("frozen", "oracle"):
        assert summary["variants"][name] == original["variants"][name]
    assert "pgr_vs_strength.png" in {p.name for p in results.iterdir()}

    # The cell the kill interrupted ends exactly as training it alone, uninterrupted, does.
    alone = tmp_path / "alone"
    shutil.copytree(finished_run / "run", alone)
    cell = "frozen@endpoints"
    result = run_script(
        "train.py", *TINY, "--resume", "--experiment.variants", cell, "--run-dir", str(alone),
        "--results-dir", str(tmp_path / "alone-results"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reference = json.loads((tmp_path / "alone-results" / "summary.json").read_text())
    without_pgr = {
        size: {k: v for k, v in row.items() if k != "pgr"} for size, row in summary["variants"][cell]["by_size"].items()
    }
    assert without_pgr == reference["variants"][cell]["by_size"]  # (alone, without the oracle, there is no PGR)
    assert summary["variants"][cell]["by_distance"] == reference["variants"][cell]["by_distance"]
