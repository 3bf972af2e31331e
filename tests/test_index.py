"""results/README.md: one row per results directory, with the command that made it (recorded, or derived from
the directory's name for older summaries), commit, hashes and headline; the committed index is current."""

import json
from pathlib import Path

import pytest

from common.cli import UsageError
from configs import PRESETS
from experiment.index import config_hash, index_markdown, index_rows, write_index

ROOT = Path(__file__).resolve().parents[1]


def summary(**extra) -> dict:
    pgr = {"mean": 0.5, "ci95": [0.25, 0.75]}
    return {
        "config": PRESETS["quick"].to_dict(),
        "eval_set_hash": "e" * 64,
        "n_report": 8,
        "capability": {"capability_ok": True},
        "variants": {
            "trivial": {"seeds": 0, "by_size": {}},
            "frozen": {"seeds": 3, "by_size": {}, "pgr_beyond_n": pgr},
        },
        "provenance": {"code": {"commit": "c" * 40, "dirty": False}},
        **extra,
    }


def test_the_index_lists_every_results_directory(tmp_path):
    for name, content in {
        "quick": summary(),
        "quick-consistency": summary(),
        "mine": summary(command="python train.py --preset quick --model.width 32"),
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(content))
    (tmp_path / "compare").mkdir()  # a comparison: no summary.json, not a results directory
    rows = {row["results"]: row for row in index_rows(tmp_path)}
    assert set(rows) == {"[mine/](mine/)", "[quick/](quick/)", "[quick-consistency/](quick-consistency/)"}
    assert rows["[quick/](quick/)"]["command"] == "`python train.py --preset quick`"
    assert rows["[quick-consistency/](quick-consistency/)"]["command"].endswith("--sweep consistency`")
    assert rows["[mine/](mine/)"]["command"] == "`python train.py --preset quick --model.width 32`"
    assert rows["[quick/](quick/)"]["headline"] == "capability_ok true; PGR frozen 0.50 [0.25, 0.75]"
    assert rows["[quick/](quick/)"]["evaluation set"] == "e" * 12 and rows["[quick/](quick/)"]["commit"] == "c" * 10
    text = (write_index(tmp_path)).read_text()
    assert text.count("\n| [") == 3


def test_a_changed_config_is_derived_and_flagged(tmp_path):
    old = summary()
    old["config"]["model"]["width"] = 32
    (tmp_path / "quick").mkdir()
    (tmp_path / "quick" / "summary.json").write_text(json.dumps(old))
    (row,) = index_rows(tmp_path)
    assert row["command"] == "`python train.py --preset quick --model.width 32`"
    assert row["config = preset now"] == "no: the preset changed model.width"


def test_the_config_hash_ignores_the_variants():
    config = PRESETS["quick"].to_dict()
    sweep = json.loads(json.dumps(config))
    sweep["experiment"]["variants"] = "frozen,oracle"
    assert config_hash(config) == config_hash(sweep)
    sweep["data"]["n_max"] += 1
    assert config_hash(config) != config_hash(sweep)


def test_the_committed_index_is_current():
    expected = index_markdown(index_rows(ROOT / "results"))
    assert (ROOT / "results" / "README.md").read_text() == expected, "run: python eval.py index"


def test_older_or_odd_summaries_still_get_a_row(tmp_path):
    """Results older than a config field, or with a variant this code no longer knows, are listed, not a crash;
    a file that is not a summary is a one-line error naming it."""
    old = summary()
    del old["config"]["model"]["width"]
    old["variants"]["gone@nothing"] = {"seeds": 3, "by_size": {}, "pgr_beyond_n": {"mean": 0.9, "ci95": [0.8, 1.0]}}
    (tmp_path / "quick").mkdir()
    (tmp_path / "quick" / "summary.json").write_text(json.dumps(old))
    (row,) = index_rows(tmp_path)
    assert row["command"] == "`python train.py --preset quick`"
    assert "PGR gone@nothing 0.90" in row["headline"]
    (tmp_path / "quick" / "summary.json").write_text(json.dumps({"variants": {}}))
    with pytest.raises(UsageError, match="quick/summary.json is not a summary written by eval.py"):
        index_rows(tmp_path)


def test_the_headline_leaves_out_a_pgr_against_a_weak_ceiling_and_counts_trained_variants(tmp_path):
    weak = summary()
    weak["variants"]["self"] = {"seeds": 0, "by_size": {}}
    fresh = {"mean": 0.95, "ci95": [0.9, 1.0], "oracle": "oracle:fresh", "ceiling_ok": False}
    weak["variants"]["frozen:fresh"] = {"seeds": 3, "by_size": {}, "pgr_beyond_n": fresh}
    (tmp_path / "quick").mkdir()
    (tmp_path / "quick" / "summary.json").write_text(json.dumps(weak))
    (row,) = index_rows(tmp_path)
    assert row["headline"] == "capability_ok true; PGR frozen 0.50 [0.25, 0.75]"  # not frozen:fresh's 0.95
    assert row["variants × seeds"] == "2 × 3"  # frozen, frozen:fresh; not trivial or self
    fresh["ceiling_ok"] = True
    (tmp_path / "quick" / "summary.json").write_text(json.dumps(weak))
    assert "PGR frozen:fresh 0.95" in index_rows(tmp_path)[0]["headline"]


def test_a_columns_sweep_is_headlined_by_its_held_out_family_at_the_fewest_and_most_columns(tmp_path):
    def cell(k, per_seed):
        return {"k": k, "held_out": "x", "held_out_acc": {"per_seed": per_seed}}

    columns = [cell(1, [0.2, 0.4]), cell(1, [0.6, 0.8]), cell(2, [0.9, 0.9]), cell(3, [1.0, 1.0])]
    (tmp_path / "quick-columns").mkdir()
    (tmp_path / "quick-columns" / "summary.json").write_text(json.dumps(summary(columns=columns)))
    (row,) = index_rows(tmp_path)
    # k = 1 pools both folds' seeds: mean 0.5, t(3) interval 0.5 +- 3.182 * 0.2582 / 2
    assert (
        row["headline"]
        == "capability_ok true; held-out family acc k=1 0.50 [0.09, 0.91]; held-out family acc k=3 1.00 [1.00, 1.00]"
    )


def test_an_overseer_run_is_headlined_by_what_the_frozen_reporter_says_where_o_and_d_differ(tmp_path):
    with_overseer = summary(overseer={"name": "nearsighted"})
    with_overseer["variants"]["frozen"]["pooled"] = {"policy": {"truthful": 0.25, "overseer": 0.625, "other": 0.125}}
    (tmp_path / "quick-overseer").mkdir()
    (tmp_path / "quick-overseer" / "summary.json").write_text(json.dumps(with_overseer))
    (row,) = index_rows(tmp_path)
    assert row["headline"] == (
        "capability_ok true; PGR frozen 0.50 [0.25, 0.75]; frozen where o != d: truthful 0.25, overseer 0.62"
    )
