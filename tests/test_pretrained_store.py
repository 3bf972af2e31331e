"""The store of pretrained models (experiment/pretrained.py): runs that differ only after pretraining share
one; a run whose pretraining differs, or whose pretraining code differs, does not; a damaged one is refused."""

import json
import os
import shutil
from functools import partial
from pathlib import Path

import pytest
from conftest import TINY, run_script
from test_reliability import one_line_exit_2

from configs import PRESETS
from experiment import pretrained
from experiment.pretrained import code_fingerprint, key_of

train = partial(run_script, "train.py")
CFG = PRESETS["tiny"]


def files(directory) -> dict:
    return {p: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "changes",
    [
        {"finetune": {"steps": 99, "lr": 0.5}},
        {"experiment": {"variants": "oracle", "seeds": 5}},
        {"data": {"n_report": 5, "eval_beyond": 0, "eval_per_size": 3, "eval_seed": 9}},
        {"pretrain": {"log_every": 1, "checkpoint_every": 3}},
        {"pretrain": {"draw_ahead": 4}},  # the same batches, drawn four at a time
        {"data": {"finetune_pool": 1, "eval_per_distance": 7}},  # fine-tuning's batches, the evaluation set
    ],
)
def test_what_happens_after_pretraining_keeps_the_key(changes):
    assert key_of(CFG.replace(**changes)) == key_of(CFG)


@pytest.mark.parametrize(
    "changes",
    [
        {"data": {"n_max": 7}},
        {"data": {"n_min": 4}},
        {"data": {"vocab": 9}},
        {"data": {"pool": 2}},
        {"data": {"families": "small_world,tree_plus"}},  # the same families in another order: other batches
        {"model": {"width": 8}},
        {"model": {"dtype": "bfloat16"}},
        {"pretrain": {"steps": 21}},
        {"pretrain": {"lr": 0.5}},
        {"pretrain": {"seed": 1}},
        {"pretrain": {"batch_size": 8}},
    ],
)
def test_what_pretraining_depends_on_changes_the_key(changes):
    assert key_of(CFG.replace(**changes))[0] != key_of(CFG)[0]


def test_all_families_are_keyed_by_their_names():
    everything = CFG.replace(data={"families": "all"})
    assert key_of(everything)[1]["config"]["data"]["families"] == everything.data.family_list()


def test_an_edit_to_the_pretraining_code_changes_the_key(tmp_path, monkeypatch):
    for name in pretrained.CODE:
        source = pretrained.ROOT / name
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    monkeypatch.setattr(pretrained, "ROOT", tmp_path)
    before = code_fingerprint()
    model = tmp_path / "models" / "model.py"
    model.write_text(model.read_text() + "\n# an edit\n")
    assert code_fingerprint() != before
    model.write_text(model.read_text().removesuffix("\n# an edit\n"))
    assert code_fingerprint() == before
    (tmp_path / "experiment" / "fit.py").write_text("")
    assert code_fingerprint() != before


def test_runs_that_differ_after_pretraining_share_it_and_others_do_not(finished_run, tmp_path):
    """The session's finished tiny run pretrained into the session's store. A run with other fine-tuning and
    evaluation settings reuses that pretraining without a step of its own; a run with another pretraining seed
    pretrains a model of its own (the same programs: nothing to compile again)."""
    first = json.loads((finished_run / "results" / "summary.json").read_text())["pretrained"]
    entry = Path(os.environ["PATHPROBE_PRETRAINED"]) / first["key"]
    assert first["store"] == str(entry) and first["trained_by_this_run"]
    before = files(entry)

    argv = [*TINY, "--experiment.variants", "frozen", "--experiment.seeds", "1", "--finetune.steps", "5"]
    argv += ["--data.eval_per_size", "2"]
    result = train(*argv, "--run-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    assert f"reusing pretrained model {first['key']}" in result.stderr
    assert files(entry) == before  # not a step, not a log line, not a checkpoint
    second = json.loads((tmp_path / "results" / "summary.json").read_text())["pretrained"]
    assert second == {**first, "trained_by_this_run": False}
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["phase"] == "pretrain"] == [5, 10, 15, 20]  # the store's lines
    assert {r["pretrained"] for r in log if r["phase"] == "pretrain"} == {first["key"]}

    other = train(
        *argv, "--pretrain.seed", "1", "--run-dir", str(tmp_path / "other"), "--results-dir", str(tmp_path / "o")
    )
    assert other.returncode == 0, other.stderr
    third = json.loads((tmp_path / "o" / "summary.json").read_text())["pretrained"]
    assert third["key"] != first["key"] and third["trained_by_this_run"]
    assert "pretraining" in other.stderr and "reusing" not in other.stderr


def test_a_truncated_or_altered_shared_pretraining_is_refused(finished_run, tmp_path):
    first = json.loads((finished_run / "results" / "summary.json").read_text())["pretrained"]
    store = tmp_path / "store"
    entry = store / first["key"]
    shutil.copytree(first["store"], entry)
    argv = [*TINY, "--experiment.variants", "frozen", "--experiment.seeds", "1", "--results-dir", str(tmp_path / "r")]

    (data,) = (entry / "checkpoints" / "pretrain" / "20" / "params" / "d").iterdir()
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    one_line_exit_2(train(*argv, "--run-dir", str(tmp_path / "a"), store=store), "cannot restore", progress=True)

    # Whole files, other numbers: the recorded hash catches what orbax cannot.
    shutil.rmtree(entry)
    shutil.copytree(first["store"], entry)
    done = json.loads((entry / "done.json").read_text())
    (entry / "done.json").write_text(json.dumps({**done, "params_sha256": "0" * 64}))
    one_line_exit_2(
        train(*argv, "--run-dir", str(tmp_path / "b"), store=store), "does not match", "corrupt", progress=True
    )
    assert not (tmp_path / "r" / "summary.json").exists()


def test_a_store_that_cannot_be_a_directory_is_one_line_exit_2(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    argv = [*TINY, "--run-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "results")]
    one_line_exit_2(train(*argv, store=tmp_path / "file" / "store"), "as the store of pretrained models")
