import csv
import json
import shutil
from functools import partial

import pytest
from conftest import TINY, log_records, run_script
from matplotlib.image import imread

from configs import PRESETS
from experiment.rundir import read_log

train = partial(run_script, "train.py")


def test_help_documents_every_field():
    result = train("--help")
    assert result.returncode == 0
    for option in ["--data.n_max", "--data.n_report", "--model.encoder", "--model.loops", "--pretrain.lr"]:
        assert option in result.stdout


def test_run_writes_log_and_results(finished_run):
    lines = read_log(finished_run / "run")
    assert [x["step"] for x in lines if x["phase"] == "pretrain"] == [5, 10, 15, 20]
    variants = PRESETS["tiny"].experiment.variant_list()
    assert {x["phase"] for x in lines} == {"pretrain"} | {f"{v}-seed{s}" for v in variants for s in (100, 101)}
    results = finished_run / "results"
    summary = json.loads((results / "summary.json").read_text())
    # metrics.csv holds exactly the summary's numbers: every metric of every variant, size and distance.
    with (results / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    written = {(r["variant"], r["by"], r["value"], r["metric"]): r for r in rows}
    for name, table in summary["variants"].items():
        for by in ("size", "distance"):
            for value, row in table[f"by_{by}"].items():
                for metric in ("acc", "mae", "coherent_wrong", "incoherent", "knows_withholds", "agrees"):
                    line = written[(name, by, value, metric)]
                    assert float(line["mean"]) == pytest.approx(row[metric], rel=1e-5, abs=1e-9)
                    assert int(line["seeds"]) == table["seeds"]
    for size, acc in summary["capability"]["d_st_acc_by_size"].items():
        assert float(written[("capability", "size", size, "d_st_acc")]["mean"]) == pytest.approx(acc, rel=1e-5)
    for name in [
        "accuracy_vs_size.png",
        "coherent_wrong_vs_size.png",
        "capability_vs_report.png",
        "withheld_vs_size.png",
        "training_curves.png",
        "accuracy_vs_distance.png",
        "withheld_vs_distance.png",
        "answers_vs_distance.png",
        "explained_vs_distance.png",
        "truth_rank_vs_distance.png",
    ]:
        image = imread(results / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0, name  # a real, non-blank picture


def test_existing_run_needs_resume_or_overwrite(finished_run):
    result = train(*TINY, "--run-dir", str(finished_run / "run"), "--results-dir", str(finished_run / "results"))
    assert result.returncode == 2 and "--resume" in result.stderr
    result = train(*TINY, "--pretrain.lr", "0.5", "--resume", "--run-dir", str(finished_run / "run"))
    assert result.returncode == 2 and "pretrain.lr" in result.stderr


def test_finished_phases_are_not_retrained(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run / "run", run)
    result = train(*TINY, "--resume", "--run-dir", str(run), "--results-dir", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    assert log_records(run) == log_records(finished_run / "run")  # nothing appended
