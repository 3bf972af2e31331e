"""A sweep killed mid-way and run again: it skips the cells already finished and ends with the numbers that
uninterrupted training gives, the columns sweep's summary among them (the tiny columns sweep: two cells beside the
oracle, which the shared tiny run has trained). The consistency sweep's strength figure, from a summary."""

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY, run_script, without_oracle

from configs import PRESETS
from configs.sweeps import columns_sweep, encoder_sweep, overseer_sweep
from experiment.plots import plot_strength
from experiment.rundir import phase_name
from models.objectives import ceilings, ladder


@pytest.mark.slow
def test_killed_sweep_resumes_skips_finished_cells_and_writes_the_columns_summary(finished_run, tmp_path):
    run, results = tmp_path / "run", tmp_path / "results"
    shutil.copytree(finished_run / "run", run)  # pretrained, with the oracle's cells finished
    finished = {path: path.stat().st_mtime_ns for path in (run / "checkpoints").rglob("*") if path.is_file()}
    args = [*TINY, "--plots", "--sweep", "columns", "--run-dir", str(run), "--results-dir", str(results)]
    cells = columns_sweep(PRESETS["tiny"].data)

    sweep = subprocess.Popen([sys.executable, "train.py", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_new_cell = run / "checkpoints" / phase_name(cells[0], PRESETS["tiny"].finetune.seed)
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
    assert list(summary["variants"]) == ["trivial", "self", *cells]
    original = json.loads((finished_run / "results" / "summary.json").read_text())
    assert summary["variants"]["oracle"] == original["variants"]["oracle"]

    # The columns summary: one entry per held-out family and k, read off its variant's table.
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

    # The cell the kill interrupted ends exactly as training it alone, uninterrupted, does.
    alone = tmp_path / "alone"
    shutil.copytree(finished_run / "run", alone)
    result = run_script(
        "train.py", *TINY, "--resume", "--experiment.variants", cells[0], "--run-dir", str(alone),
        "--results-dir", str(tmp_path / "alone-results"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reference = json.loads((tmp_path / "alone-results" / "summary.json").read_text())
    cell, alone_cell = summary["variants"][cells[0]], reference["variants"][cells[0]]
    for key in ("by_size", "by_distance"):  # (alone, without the oracle, there is no PGR and no ceiling)
        assert without_oracle(cell[key]) == alone_cell[key]


@pytest.mark.parametrize("ceiling_ok", [True, False])
def test_the_strength_figure_is_drawn_where_a_summary_holds_the_ladder(ceiling_ok, tmp_path):
    """pgr_vs_strength.png for a summary with the consistency ladder (against a weak ceiling, a note instead of
    points); none for a summary without it."""
    pgr = {"mean": 0.5, "ci95": [0.4, 0.6], "ceiling_ok": ceiling_ok}
    variants = {name: {"seeds": 3, "pgr_beyond_n": pgr} for name in ladder("frozen")}
    summary = {"variants": variants, "ceilings": {}, "n_report": 4, "config": {"data": {"n_max": 6}}}
    plot_strength(summary, tmp_path)
    assert (tmp_path / "pgr_vs_strength.png").stat().st_size > (5_000 if ceiling_ok else 1_000)
    plot_strength({"variants": {"frozen": {"pgr_beyond_n": pgr}}}, tmp_path / "none")
    assert not (tmp_path / "none").exists()


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


def test_the_encoder_sweep_sets_each_encoder_training_reporter_beside_an_oracle_that_trains_the_encoder():
    cells = encoder_sweep(PRESETS["tiny"].data)
    assert cells == ["frozen", "trainable", "trainable+dst", "oracle", "trainable-oracle"]
    assert ceilings(cells) == {name: "trainable-oracle" if "trainable" in name else "oracle" for name in cells}
