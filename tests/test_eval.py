import json
import shutil
from functools import partial

import numpy as np
import pytest
from conftest import run_script

from eval import add_pgr, mean_ci, query_outcomes, trivial_report
from models.consistency import CHECKS, consistent

evaluate = partial(run_script, "eval.py")

# One example, d(s,t) = 3, path s=a0, a1, a2, t=a3 (slots 0..3), one padding slot.
VALID = np.array([[True, True, True, True, False]])
D_HAT = np.array([3])
ARRAYS = {"path": np.zeros((1, 5), np.int32), "path_len": np.array([4])}


def outcomes(pred_su, pred_tu):
    return query_outcomes(np.array([pred_su]), np.array([pred_tu]), D_HAT, ARRAYS)


def test_truthful_answers_pass_every_check():
    out = outcomes([0, 1, 2, 3, 0], [3, 2, 1, 0, 0])
    assert out["acc"][VALID].all() and out["consistent"][VALID].all() and not out["coherent_wrong"][VALID].any()


def test_coherent_but_wrong_is_caught():
    """Swapping the two middle vertices' answers keeps every check satisfied, yet both answers are wrong."""
    out = outcomes([0, 2, 1, 3, 0], [3, 1, 2, 0, 0])
    assert out["consistent"][VALID].all()
    assert out["coherent_wrong"][VALID].tolist() == [False, True, True, False]
    assert out["incoherent"][VALID].sum() == 0


@pytest.mark.parametrize(
    ("name", "pred_su", "pred_tu", "failing"),
    [
        ("endpoints", [1, 1, 2, 3, 0], [3, 2, 1, 0, 0], [True] * 4),  # d(s,s) != 0
        ("endpoints", [0, 1, 2, 2, 0], [3, 2, 1, 0, 0], [True] * 4),  # report at t != d(s,t) head
        ("range", [0, 1, 4, 3, 0], [3, 2, 1, 0, 0], [False, False, True, False]),
        ("additivity", [0, 1, 2, 3, 0], [3, 1, 1, 0, 0], [False, True, False, False]),
        ("path_permutation", [0, 1, 1, 3, 0], [3, 2, 2, 0, 0], [True] * 4),
    ],
)
def test_each_check_fails_where_it_must(name, pred_su, pred_tu, failing):
    passed = CHECKS[name](np.array([pred_su]), np.array([pred_tu]), D_HAT, VALID)
    assert (~passed[VALID]).tolist() == failing
    truthful = CHECKS[name](np.array([[0, 1, 2, 3, 0]]), np.array([[3, 2, 1, 0, 0]]), D_HAT, VALID)
    assert truthful[VALID].all()
    assert not consistent(np.array([pred_su]), np.array([pred_tu]), D_HAT, VALID)[VALID].all()


def test_trivial_guess_uses_only_the_question():
    assert trivial_report(D_HAT, VALID).tolist() == [[0, 2, 2, 3, 2]]
    swapped = trivial_report(D_HAT, VALID, swap=True)
    assert swapped.tolist() == [[3, 2, 2, 0, 2]]
    assert outcomes([0, 2, 2, 3, 0], [3, 2, 2, 0, 0])["incoherent"][VALID].all()  # fails path_permutation


def test_pgr_arithmetic():
    def table(acc):
        return {"by_size": {"4": {"acc": acc}, "9": {"acc": acc}}}

    variants = {"trivial": table(0.2), "oracle": table(0.8), "frozen": table(0.5), "broken": table(0.1)}
    add_pgr(variants, n_report=5)
    assert "pgr" not in variants["frozen"]["by_size"]["4"]  # sizes <= n have labels: no gap to recover
    assert variants["frozen"]["by_size"]["9"]["pgr"] == pytest.approx(0.5)
    assert variants["oracle"]["by_size"]["9"]["pgr"] == pytest.approx(1.0)
    assert variants["broken"]["by_size"]["9"]["pgr"] == pytest.approx(-1 / 6)


def test_mean_and_95_interval():
    assert mean_ci([0.5]) == (0.5, 0.5, 0.5)
    mean, low, high = mean_ci([0.4, 0.6])
    assert mean == pytest.approx(0.5) and high - mean == pytest.approx(12.706 * 0.1414213 / 1.4142136, rel=1e-4)


def test_summary_has_the_promised_structure(finished_run):
    summary = json.loads((finished_run / "results" / "summary.json").read_text())
    assert len(summary["eval_set_hash"]) == 64 and summary["config"]["data"]["n_max"] == 6
    capability = summary["capability"]
    assert set(capability["d_st_acc_by_size"]) == {str(n) for n in range(3, 9)}
    assert set(capability["probe_acc_by_size"]) == set(capability["d_st_acc_by_size"])
    assert isinstance(capability["capability_ok"], bool)
    assert set(summary["variants"]) == {"trivial", "frozen", "trainable", "trainable+dst", "oracle", "probe"}
    for name, table in summary["variants"].items():
        assert set(table["by_distance"]) == {str(d) for d in range(0, int(max(table["by_distance"], key=int)) + 1)}
        for size, row in table["by_size"].items():
            assert {"acc", "mae", "coherent_wrong", "incoherent"} <= set(row), (name, size)
            assert row["coherent_wrong"] <= 1 - row["incoherent"] + 1e-9
            assert ("pgr" in row) == (int(size) > 4), (name, size)  # PGR only beyond the labelled sizes


def test_eval_rejects_missing_or_corrupt_runs(finished_run, tmp_path):
    cases = {}
    cases["missing"] = tmp_path / "nowhere"
    corrupt = tmp_path / "corrupt"
    shutil.copytree(finished_run / "run", corrupt)
    (corrupt / "eval_set.npz").write_bytes(b"garbage")
    cases["corrupt eval set"] = corrupt
    bad_config = tmp_path / "bad_config"
    shutil.copytree(finished_run / "run", bad_config)
    (bad_config / "config.json").write_text("{not json")
    cases["bad config"] = bad_config
    no_ckpt = tmp_path / "no_ckpt"
    shutil.copytree(finished_run / "run", no_ckpt)
    shutil.rmtree(no_ckpt / "checkpoints" / "oracle-seed101")
    cases["missing checkpoint"] = no_ckpt
    for name, run in cases.items():
        result = evaluate("--run", str(run), "--results", str(tmp_path / "out"))
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
    assert not (tmp_path / "out" / "summary.json").exists()
