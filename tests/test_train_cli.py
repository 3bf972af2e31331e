import json
import shutil
from functools import partial

from conftest import TINY, run_script

train = partial(run_script, "train.py")


def test_help_documents_every_field():
    result = train("--help")
    assert result.returncode == 0
    for option in ["--data.n_max", "--data.n_report", "--model.encoder", "--model.loops", "--pretrain.lr"]:
        assert option in result.stdout


def test_run_writes_log_and_results(finished_run):
    lines = [json.loads(line) for line in (finished_run / "run" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["phase"] == "pretrain"] == [5, 10, 15, 20]
    assert {x["phase"] for x in lines} == {"pretrain"} | {
        f"{v}-seed{s}" for v in ["frozen", "trainable", "trainable+dst", "oracle", "probe"] for s in (100, 101)
    }
    for name in ["summary.json", "metrics.csv", "accuracy_vs_size.png", "coherent_wrong_vs_size.png"]:
        assert (finished_run / "results" / name).stat().st_size > 0


def test_existing_run_needs_resume_or_overwrite(finished_run):
    result = train(*TINY, "--run-dir", str(finished_run / "run"), "--results-dir", str(finished_run / "results"))
    assert result.returncode == 2 and "--resume" in result.stderr
    result = train(*TINY, "--pretrain.lr", "0.5", "--resume", "--run-dir", str(finished_run / "run"))
    assert result.returncode == 2 and "pretrain.lr" in result.stderr


def _log(path):
    return [(x["phase"], x["step"], x["loss"], x["acc"]) for x in map(json.loads, path.read_text().splitlines())]


def test_finished_phases_are_not_retrained(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run / "run", run)
    result = train(*TINY, "--resume", "--run-dir", str(run), "--results-dir", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    assert _log(run / "log.jsonl") == _log(finished_run / "run" / "log.jsonl")  # nothing appended
