"""A consistency sweep on the tiny preset, killed mid-way and run again: it skips the cells already finished
and ends with the numbers that uninterrupted training gives. The columns sweep's summary."""

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY, run_script

from configs import PRESETS
from configs.sweeps import columns_sweep, consistency_sweep, overseer_sweep


@pytest.mark.slow
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
    assert list(summary["variants"]) == ["trivial", "self", *consistency_sweep(PRESETS["tiny"].data)]
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


def test_columns_sweep_writes_one_entry_per_held_out_family_and_k(finished_run, tmp_path):
    run, results = tmp_path / "run", tmp_path / "results"
    shutil.copytree(finished_run / "run", run)
    result = run_script("train.py", *TINY, "--sweep", "columns", "--run-dir", str(run), "--results-dir", str(results))
    assert result.returncode == 0, result.stderr
    summary = json.loads((results / "summary.json").read_text())
    assert list(summary["variants"]) == ["trivial", "self", *columns_sweep(PRESETS["tiny"].data)]
    entries = summary["columns"]
    assert [(e["held_out"], e["k"], e["labelled"]) for e in entries] == [
        ("small_world", 1, ["tree_plus"]),
        ("tree_plus", 1, ["small_world"]),
    ]
    for e in entries:
        table = summary["variants"][e["variant"]]
        assert table["split"] == f"family:{e['held_out']}:{e['labelled'][0]}"
        held_out, checked = table["pooled"]["held_out"], table["pooled"]["checked"]
        assert e["held_out_acc"]["per_seed"] == held_out["acc_per_seed"] and len(held_out["acc_per_seed"]) == 2
        assert e["checked_acc"]["mean"] == checked["acc"] and e["withheld"]["mean"] == held_out["knows_withholds"]
        assert e["knows"] == pytest.approx(held_out["knows_says"] + held_out["knows_withholds"])
        assert held_out["acc"] != checked["acc"]  # two different sets of queries
        assert table.get("pgr_beyond_n", {"oracle": "oracle"})["oracle"] == "oracle"
    assert any("pgr_beyond_n" in summary["variants"][e["variant"]] for e in entries)  # (none where no gap to divide)
    assert "columns.png" in {p.name for p in results.iterdir()}


def test_the_overseer_sweep_starts_a_reporter_from_the_overseer_only_where_pretraining_learned_it():
    """Learned: every head on the frozen encoder (warm-overseer too), fresh, trainable, @all on each frozen head,
    the oracle; the control has no warm-overseer cells (no overseer question to start from)."""
    data = PRESETS["tiny"].data
    learned = overseer_sweep(dataclasses.replace(data, overseer="nearsighted"))
    assert learned == [
        "frozen", "frozen:shared", "frozen:warm-overseer", "frozen:fresh", "trainable",
        "frozen@all", "frozen:shared@all", "frozen:warm-overseer@all", "oracle",
    ]  # fmt: skip
    control = overseer_sweep(dataclasses.replace(data, overseer="nearsighted", learn_overseer=False))
    assert control == [cell for cell in learned if "warm-overseer" not in cell]
