import csv
import json
import shutil
from functools import partial

import numpy as np
import pytest
from conftest import HAND_FROM_S, HAND_FROM_T, HAND_GRAPH, HAND_VOCAB, run_script

from experiment.metrics import KNOWS_SAYS, add_pgr, mean_ci, query_outcomes
from experiment.predict import trivial_report
from models.consistency import checks
from models.objectives import ceilings

evaluate = partial(run_script, "eval.py")

VOCAB, ARRAYS = HAND_VOCAB, HAND_GRAPH
D_HAT = np.array([3])
ON_PATH = np.array([[True] * 4 + [False] * 2])


def outcomes(from_s, from_t):
    """The outcomes of answers from s and from t; on the twins the reporter answers as from s (both checks
    that compare two presentations pass)."""
    from_s = np.array([from_s])
    twins = {"relabelled": from_s, "plus_edge": from_s}
    return query_outcomes(from_s, np.array([from_t]), D_HAT, np.array([HAND_FROM_S]), ARRAYS, VOCAB, twins)


def test_truthful_answers_are_correct_and_consistent():
    out = outcomes(HAND_FROM_S, HAND_FROM_T)
    assert (out["valid"] == ON_PATH).all() and out["label"][ON_PATH].tolist() == [0, 1, 2, 3]
    assert out["acc"][ON_PATH].all() and out["consistent"][ON_PATH].all() and not out["coherent_wrong"].any()
    assert all(out[f"pass_{name}"][ON_PATH].all() for name in checks())


def test_coherent_but_wrong_is_caught():
    """Answers wrong at vertex 5 only: no query is wrong, nothing coherent-but-wrong. Answers wrong on the
    path in a way no check at that query notices would be; answers that fail a check are incoherent."""
    off_path_wrong = outcomes([0, 1, 2, 3, 7, 0], [3, 2, 1, 0, 3, 0])
    assert off_path_wrong["acc"][ON_PATH].all()
    assert off_path_wrong["incoherent"][ON_PATH].tolist() == [False, True, False, False]  # 2 neighbours 5
    swapped = outcomes([0, 2, 1, 3, 2, 0], [3, 1, 2, 0, 3, 0])
    assert swapped["incoherent"][ON_PATH].any() and not swapped["coherent_wrong"].any()
    assert swapped["pass_path_permutation"][ON_PATH].all() and not swapped["pass_bellman"][ON_PATH].all()


def test_trivial_guess_uses_only_the_question():
    assert trivial_report(D_HAT, ARRAYS["s"], ARRAYS["t"], VOCAB).tolist() == [[0, 2, 2, 3, 2, 2]]
    assert trivial_report(D_HAT, ARRAYS["t"], ARRAYS["s"], VOCAB).tolist() == [[3, 2, 2, 0, 2, 2]]
    out = outcomes([0, 2, 2, 3, 2, 2], [3, 2, 2, 0, 2, 2])
    assert out["incoherent"][ON_PATH].all()  # fails path_permutation


def test_pgr_arithmetic():
    def table(acc):
        return {"by_size": {"4": {"acc": acc}, "9": {"acc": acc}}}

    variants = {"trivial": table(0.2), "oracle": table(0.8), "frozen": table(0.5), "broken": table(0.1)}
    add_pgr(variants, 5, {"oracle": "oracle", "frozen": "oracle", "broken": "oracle"})
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
    for key in ("knows_su_by_size", "probe_acc_by_size", "mlp_probe_acc_by_size"):
        assert set(capability[key]) == set(capability["d_st_acc_by_size"]), key
    assert capability["knows_su_by_distance"]["0"] == 1.0  # d(s,s) = 0 is given by the question
    n_max = summary["config"]["data"]["n_max"]
    bar = [acc >= capability["threshold"] for n, acc in capability["d_st_acc_by_size"].items() if int(n) <= n_max]
    assert len(bar) == n_max - 2 and capability["capability_ok"] is all(bar)
    names = summary["config"]["experiment"]["variants"].split(",")
    assert {"frozen", "oracle", "frozen:fresh", "oracle:fresh", "mlp-probe"} <= set(names)
    assert set(summary["variants"]) == {"trivial", "self", *names}
    oracle_of = ceilings(names)
    assert set(summary["ceilings"]) == set(oracle_of.values()) == {"oracle", "oracle:fresh"}
    for name, table in summary["variants"].items():
        assert set(table["by_size"]) == set(capability["d_st_acc_by_size"]), name  # every size n_min..N+2
        assert set(table["by_distance"]) == {str(d) for d in range(0, int(max(table["by_distance"], key=int)) + 1)}
        for size, row in table["by_size"].items():
            assert {"acc", "mae", "coherent_wrong", "incoherent", "agrees"} <= set(row), (name, size)
            assert sum(row[part] for part in KNOWS_SAYS) == pytest.approx(1.0), (name, size)
            assert ("pgr" in row) == (int(size) > 4 and name in oracle_of), (name, size)  # beyond n, with a ceiling
            if "pgr" in row:  # computed from this summary's own seed means, against the variant's own oracle
                trivial = summary["variants"]["trivial"]["by_size"][size]["acc"]
                gap = summary["variants"][oracle_of[name]]["by_size"][size]["acc"] - trivial
                assert row["pgr"] == (None if abs(gap) < 1e-9 else pytest.approx((row["acc"] - trivial) / gap))
        assert ("pgr_beyond_n" in table) == (name in oracle_of), name
        if name in oracle_of:
            pgr = table["pgr_beyond_n"]
            assert pgr["oracle"] == oracle_of[name]
            assert pgr["ceiling_ok"] is summary["ceilings"][oracle_of[name]]["ceiling_ok"]
    # The self-query never withholds what it knows.
    assert all(row["knows_withholds"] == 0 for row in summary["variants"]["self"]["by_size"].values())
    # Both baselines answer 0 at u = s on every presentation, once their answers on a twin are read back to
    # the original ids: relabel and monotone hold there. Every check is in every row.
    assert len(summary["checks"]) == 8 and summary["checks"][-2:] == ["relabel", "monotone"]
    for name in ("trivial", "self"):
        at_s = summary["variants"][name]["by_distance"]["0"]
        assert at_s["pass_relabel"] == at_s["pass_monotone"] == 1.0, name


def test_what_the_reporters_say_instead_by_distance(finished_run):
    """answers_by_distance, explained_by_distance and rank_by_distance agree with each other at every distance
    (the wrong answers the policies explain are the answers that are not the distance; the truth ranks 1 exactly
    as often as the answer is right), and metrics.csv holds every one of their numbers."""
    results = finished_run / "results"
    summary = json.loads((results / "summary.json").read_text())
    with (results / "metrics.csv").open() as f:
        written = {(r["variant"], r["by"], r["value"], r["metric"]): r for r in csv.DictReader(f)}
    oracle_of = ceilings(summary["config"]["experiment"]["variants"].split(","))
    # The path queries: by size of the base stratum, every evaluated size; by distance of every stratum, sizes <= N.
    queries, n_max = summary["queries"], summary["config"]["data"]["n_max"]
    strata = queries["by_stratum"]
    assert strata["top_up"]["graphs"] > 0  # the tiny preset's base falls short at d = 3 and 4: topped up
    up_to_n = sum(count for size, count in queries["by_size"].items() if int(size) <= n_max)
    assert up_to_n == sum(strata["base"]["by_distance"].values()) > 0
    assert max(map(int, queries["by_size"])) > n_max  # sizes past N are counted by size alone
    for d, count in queries["by_distance"].items():
        assert count == sum(strata[s]["by_distance"].get(d, 0) for s in strata) > 0, d
    for name, table in summary["variants"].items():
        # Labels on sizes <= n = 4 (paths of at most 3 edges); the oracles' and probes' on every size <= N = 6.
        assert table["longest_labelled"] == (5 if name in oracle_of.values() or "probe" in name else 3), name
        answers, explained = table["answers_by_distance"], table["explained_by_distance"]
        assert explained, name  # every reporter of the tiny run is wrong somewhere
        for d, row in answers.items():
            wrong = sum(count for answer, count in row.items() if answer != d)
            assert explained.get(d, {"wrong": 0})["wrong"] == wrong, (name, d)
            for answer, count in row.items():
                assert int(written[(name, "distance", d, f"answer_{answer}")]["mean"]) == count
        for d, row in explained.items():
            assert sum(share for k, share in row.items() if k != "wrong") == pytest.approx(1.0), (name, d)
            for k, share in row.items():
                assert float(written[(name, "distance", d, f"explained_{k}")]["mean"]) == pytest.approx(share, rel=1e-5)
        learned = name not in ("trivial", "self")
        assert ("rank_by_distance" in table) == learned == ("rank" in table["by_distance"]["1"]), name
        for d, row in table.get("rank_by_distance", {}).items():
            assert row.get("1", 0) == answers[d].get(d, 0), (name, d)  # rank 1 exactly where the answer is right
            assert sum(row.values()) == sum(answers[d].values()), (name, d)
            for rank, count in row.items():
                assert int(written[(name, "distance", d, f"rank_{rank}")]["mean"]) == count
        # Among the classes no label showed, at the distances past the labels alone: every query counted, and the
        # truth first there at least wherever it is first among all classes.
        unlabelled = table.get("unlabelled_rank_by_distance", {})
        longest = -1 if table["longest_labelled"] is None else table["longest_labelled"]
        assert all(int(d) > longest for d in unlabelled), name
        for d, row in unlabelled.items():
            assert sum(row.values()) == sum(answers[d].values()), (name, d)
            assert row.get("1", 0) >= table["rank_by_distance"][d].get("1", 0), (name, d)
            for rank, count in row.items():
                assert int(written[(name, "distance", d, f"unlabelled_rank_{rank}")]["mean"]) == count
        assert bool(unlabelled) == (learned and any(int(d) > longest for d in answers)), name
        for d, row in table["by_distance"].items() if learned else ():
            assert row["rank"] >= 1 and 0 < row["p_true"] <= 1, (name, d)
            for metric in ("rank", "p_true"):
                assert float(written[(name, "distance", d, metric)]["mean"]) == pytest.approx(row[metric], rel=1e-5)
        # Every row by size and by distance carries its query count, in metrics.csv too; by distance, a variant with
        # an oracle says whether that oracle reaches the bar there.
        for by in ("size", "distance"):
            for value, row in table[f"by_{by}"].items():
                assert row["queries"] == queries[f"by_{by}"][value], (name, by, value)
                assert int(written[(name, by, value, "queries")]["mean"]) == row["queries"]
        for d, row in table["by_distance"].items():
            assert ("ceiling_ok" in row) == (name in oracle_of), (name, d)
            if name in oracle_of:
                ok = summary["variants"][oracle_of[name]]["by_distance"][d]["acc"] >= 0.9
                assert row["ceiling_ok"] is ok and int(written[(name, "distance", d, "ceiling_ok")]["mean"]) == ok
    policies = {"wrong", "clamp", "d_st", "trivial", "reverse", "off_by_one", "unexplained"}  # no overseer here
    assert all(set(row) == policies for row in summary["variants"]["frozen"]["explained_by_distance"].values())


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
