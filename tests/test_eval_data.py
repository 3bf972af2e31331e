"""Bring your own column: a run evaluated on a dataset file made from networkx graphs (eval.py --data), and the
one-line refusals of a file the run's model cannot read."""

import json

import networkx as nx
import numpy as np
import pytest
from conftest import run_script

import eval as evaluation
from graphgen import from_networkx
from graphgen.dataset import content_hash, load, save

VOCAB = 8  # the tiny preset's


def user_graphs() -> list[nx.Graph]:
    return [nx.path_graph(6), nx.cycle_graph(7), nx.balanced_tree(2, 2), nx.star_graph(4), nx.path_graph(8)]


def test_a_run_evaluates_on_a_users_networkx_graphs(finished_run, tmp_path):
    path, results = tmp_path / "mine.npz", tmp_path / "results"
    save(path, from_networkx(user_graphs(), VOCAB, seed=3, family=["path", "cycle", "tree", "star", "path"]))
    before = (finished_run / "run" / "eval_set.npz").read_bytes()
    run = str(finished_run / "run")
    result = run_script("eval.py", "--run", run, "--data", str(path), "--results", str(results), "--no-plots")
    assert result.returncode == 0, result.stderr
    assert not list(results.glob("*.png"))
    summary = json.loads((results / "summary.json").read_text())
    assert summary["eval_data"] == str(path) and summary["eval_set_hash"] == content_hash(load(path))
    assert set(summary["capability"]["d_st_acc_by_size"]) == {"5", "6", "7", "8"}
    frozen = summary["variants"]["frozen"]
    assert set(frozen["by_family"]) == {"path", "cycle", "tree", "star"}
    assert set(frozen["by_family_size"]) == {"path/6", "path/8", "cycle/7", "tree/7", "star/5"}
    assert frozen["seeds"] == 2 and (finished_run / "run" / "eval_set.npz").read_bytes() == before


def test_a_file_the_model_cannot_read_is_one_line(finished_run, tmp_path, capsys):
    too_big = tmp_path / "big.npz"
    save(too_big, from_networkx([nx.path_graph(VOCAB + 1)], VOCAB + 1))
    broken = tmp_path / "broken.npz"
    arrays = from_networkx(user_graphs(), VOCAB)
    arrays["path_len"] = arrays["path_len"] + np.int32(1)
    save(broken, arrays)
    for path, message in [
        (too_big, "knows the ids 1..8 only (data.vocab = 8)"),
        (broken, "'path' and 'path_len' disagree"),
        (tmp_path / "none.npz", "no such file"),
    ]:  # in this process, like test_bad_input: each fails before anything compiles
        with pytest.raises(SystemExit) as exit_:
            evaluation.main(["--run", str(finished_run / "run"), "--data", str(path), "--results", str(tmp_path / "r")])
        stderr = capsys.readouterr().err
        assert exit_.value.code == 2 and message in stderr, stderr
        assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
        assert not (tmp_path / "r").exists()
