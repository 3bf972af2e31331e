"""eval.py compare on fabricated results directories: the figures and the table hold both runs' numbers, runs on
different evaluation sets or n/N are refused (one line, nothing written) unless --mix, which says so."""

import copy
import csv
import json

import matplotlib.pyplot as plt
import pytest

import eval as evaluation
from experiment.plots import CROWDED, _comparison_curves, _frame, _weak_ceilings

SIZES = range(3, 9)  # n = 4, N = 6, evaluated up to 8


def summary(acc: float, eval_hash: str = "a" * 64, n_report: int = 4) -> dict:
    """A summary.json with the fields a comparison reads: two variants, accuracy `acc` at every size."""

    def row(value: float) -> dict:
        return {
            "acc": value,
            "acc_ci95": [value - 0.05, value + 0.05],
            "coherent_wrong": 1 - value,
            "coherent_wrong_ci95": [0.9 - value, 1.1 - value],
        }

    def table(value: float) -> dict:
        by_size = {str(n): row(value) for n in SIZES}
        return {"seeds": 3, "by_size": by_size, "pgr_beyond_n": {"mean": value, "ci95": [value - 0.1, value + 0.1]}}

    return {
        "config": {"data": {"n_max": 6}, "experiment": {"variants": "frozen,oracle", "seeds": 3}},
        "eval_set_hash": eval_hash,
        "n_report": n_report,
        "variants": {"frozen": table(acc), "oracle": table(0.9)},
    }


def results_dir(root, name: str, content: dict):
    (root / name).mkdir()
    (root / name / "summary.json").write_text(json.dumps(content))
    return str(root / name)


def compare(*argv: str) -> None:
    evaluation.main(["compare", *argv])


def test_compare_writes_both_runs_numbers(tmp_path):
    base, bellman = results_dir(tmp_path, "quick", summary(0.25)), results_dir(tmp_path, "quick-bellman", summary(0.5))
    compare(base, bellman, "--out", str(tmp_path / "out"))
    out = tmp_path / "out"
    for name in ("compare_acc_vs_size.png", "compare_coherent_wrong_vs_size.png", "compare_pgr_beyond_n.png"):
        assert (out / name).stat().st_size > 10_000, name
    assert not (out / "compare_knows_withholds_vs_size.png").exists()  # no run reports it
    rows = list(csv.DictReader((out / "compare.csv").open()))
    acc = {(r["run"], r["variant"], r["size"]): float(r["mean"]) for r in rows if r["metric"] == "acc"}
    assert acc[("quick", "frozen", "5")] == 0.25 and acc[("quick-bellman", "frozen", "5")] == 0.5
    assert len(acc) == 2 * 2 * len(SIZES)
    pgr = {(r["run"], r["variant"]): r for r in rows if r["metric"] == "pgr_beyond_n"}
    assert (
        float(pgr[("quick-bellman", "frozen")]["high"]) == pytest.approx(0.6)
        and pgr[("quick", "frozen")]["size"] == "5..6"
    )
    markdown = (out / "compare.md").read_text()
    assert "| quick | frozen | 3 | 0.250 | 0.250 | 0.250 | 0.750 | 0.250 [0.150, 0.350] |" in markdown
    assert "| quick-bellman | frozen | 3 | 0.500 |" in markdown and "Mixed" not in markdown


def test_variants_select_what_is_shown(tmp_path):
    dirs = results_dir(tmp_path, "a", summary(0.25)), results_dir(tmp_path, "b", summary(0.5))
    compare(*dirs, "--variants", "frozen", "--out", str(tmp_path / "out"))
    assert {r["variant"] for r in csv.DictReader((tmp_path / "out" / "compare.csv").open())} == {"frozen"}


@pytest.mark.parametrize(
    "other, why",
    [
        (summary(0.5, eval_hash="b" * 64), "different evaluation sets (a: aaaaaaaaaaaa…, b: bbbbbbbbbbbb…)"),
        (summary(0.5, n_report=5), "different n (a: 4, b: 5)"),
    ],
)
def test_mixed_runs_are_refused_unless_asked(tmp_path, capsys, other, why):
    dirs = results_dir(tmp_path, "a", summary(0.25)), results_dir(tmp_path, "b", other)
    with pytest.raises(SystemExit) as exit:
        compare(*dirs, "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1 and why in err and "--mix" in err
    assert err.startswith("eval.py compare: error: the runs are not comparable")
    assert not (tmp_path / "out").exists()
    compare(*dirs, "--out", str(tmp_path / "out"), "--mix")
    assert f"**Mixed comparison, not directly comparable:** {why}" in (tmp_path / "out" / "compare.md").read_text()
    assert (tmp_path / "out" / "compare_acc_vs_size.png").exists()


def test_bad_directories_are_one_line_errors(tmp_path, capsys):
    good = results_dir(tmp_path, "a", summary(0.25))
    broken = copy.deepcopy(summary(0.5))
    del broken["eval_set_hash"]
    no_variants, listed = {**summary(0.5), "variants": {}}, {**summary(0.5), "variants": []}
    not_json = tmp_path / "not_json"
    not_json.mkdir()
    (not_json / "summary.json").write_text("{not json")
    cases = [
        ([good, str(tmp_path / "missing")], "is not a directory"),
        ([good, str(tmp_path)], "holds no summary.json"),
        ([good, str(not_json)], "cannot read"),
        ([good, results_dir(tmp_path, "broken", broken)], "not a summary written by eval.py (no eval_set_hash)"),
        ([good, results_dir(tmp_path, "empty", no_variants)], "(no variants)"),
        ([good, results_dir(tmp_path, "listed", listed)], "(no variants)"),
        ([good], "at least two"),
        ([good, results_dir(tmp_path, "b", summary(0.5)), "--variants", "honest"], "no run has the variant(s) honest"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit:
            compare(*argv, "--out", str(tmp_path / "out"))
        err = capsys.readouterr().err
        assert exit.value.code == 2 and err.count("\n") == 1 and message in err, (argv, err)
        assert not (tmp_path / "out").exists()


def test_a_weak_ceiling_is_named_once_however_many_runs_have_it():
    """The PGR figure's title names each oracle left out for a weak ceiling once, not once per run."""
    weak = {"ceilings": {"oracle": {"ceiling_ok": True}, "oracle:fresh": {"ceiling_ok": False}}}
    other = {"ceilings": {"oracle:shared": {"ceiling_ok": False}}}
    note = "\nnot shown: PGR against oracle:fresh, oracle:shared (oracle < 0.9 on n+1..N: no ceiling)"
    assert _weak_ceilings(weak, weak, other) == note
    assert _weak_ceilings({"ceilings": {"oracle": {"ceiling_ok": True}}}) == ""


def test_the_table_marks_a_pgr_against_no_ceiling_and_an_oracles_own(tmp_path):
    """As the results index does: no PGR number for an oracle against itself, nor against an oracle that is no
    ceiling; neither is drawn or written to compare.csv."""
    weak = summary(0.25)
    weak["variants"]["oracle"]["pgr_beyond_n"] |= {"oracle": "oracle", "ceiling_ok": False}
    weak["variants"]["frozen"]["pgr_beyond_n"] |= {"oracle": "oracle", "ceiling_ok": False}
    good = summary(0.5)
    good["variants"]["oracle"]["pgr_beyond_n"] |= {"oracle": "oracle", "ceiling_ok": True}
    good["variants"]["frozen"]["pgr_beyond_n"] |= {"oracle": "oracle", "ceiling_ok": True}
    compare(results_dir(tmp_path, "weak", weak), results_dir(tmp_path, "good", good), "--out", str(tmp_path / "out"))
    markdown = (tmp_path / "out" / "compare.md").read_text()
    assert "| weak | frozen | 3 | 0.250 | 0.250 | 0.250 | 0.750 | — (oracle is no ceiling) |" in markdown
    assert "| weak | oracle | 3 | 0.900 | 0.900 | 0.900 | 0.100 | — (the ceiling itself) |" in markdown
    assert "| good | oracle | 3 | 0.900 | 0.900 | 0.900 | 0.100 | — (the ceiling itself) |" in markdown
    assert "| good | frozen | 3 | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 [0.400, 0.600] |" in markdown
    rows = csv.DictReader((tmp_path / "out" / "compare.csv").open())
    assert [(r["run"], r["variant"]) for r in rows if r["metric"] == "pgr_beyond_n"] == [("good", "frozen")]


def test_curves_by_distance_where_every_run_has_them(tmp_path):
    runs = {}
    for name, acc in (("a", 0.25), ("b", 0.5)):
        runs[name] = summary(acc)
        for table in runs[name]["variants"].values():
            table["by_distance"] = {str(d): {"acc": acc / (d + 1), "acc_ci95": [0, 1]} for d in range(5)}
            table["longest_labelled"] = 3
    compare(*(results_dir(tmp_path, n, s) for n, s in runs.items()), "--out", str(tmp_path / "out"))
    assert (tmp_path / "out" / "compare_acc_vs_distance.png").stat().st_size > 10_000
    assert not (tmp_path / "out" / "compare_coherent_wrong_vs_distance.png").exists()  # no run reports it so
    rows = list(csv.DictReader((tmp_path / "out" / "compare.csv").open()))
    by_distance = {(r["run"], r["variant"], r["distance"]): float(r["mean"]) for r in rows if r["distance"]}
    assert len(by_distance) == 2 * 2 * 5 and by_distance[("b", "frozen", "1")] == 0.25
    assert all(r["size"] == "" for r in rows if r["distance"])


def test_a_panel_by_distance_shades_its_own_variants_labelled_distances():
    """In a sweep's small multiples, an oracle's panel shades the distances it was labelled on (up to its own
    longest), not the run's; one axes with every variant shades the run's (the trivial baseline's)."""
    content = summary(0.5)
    content["variants"]["trivial"] = {"longest_labelled": 3}
    content["variants"]["oracle"]["longest_labelled"] = 5
    decorate = _frame(content, "distance", "accuracy")
    spans = {}
    for name in ("oracle", None):
        fig, ax = plt.subplots()
        decorate(ax, False, name)
        (shade,) = ax.patches
        spans[name] = shade.get_x() + shade.get_width()
        plt.close(fig)
    assert spans == {"oracle": 5.5, None: 3.5}


def test_a_comparison_of_many_curves_is_small_multiples_one_panel_per_variant():
    """Up to CROWDED (run, variant) curves on one axes; more: one panel per variant, each run's curve in it."""
    runs = {name: summary(acc) for name, acc in (("a", 0.25), ("b", 0.5))}
    names = [f"frozen@v{i}" for i in range(CROWDED // 2 + 1)]  # two runs: CROWDED + 1 or + 2 curves
    for content in runs.values():
        content["variants"] = {name: content["variants"]["frozen"] for name in names}
    shown = {run: names for run in runs}
    style, color = {"a": ("-", "o"), "b": ("--", "s")}, {name: f"C{i}" for i, name in enumerate(names)}
    fig = _comparison_curves(runs, shown, "size", "acc", style, color, "acc", "black")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.axison] == names
    assert all(len(ax.get_lines()) >= 2 for ax in fig.axes if ax.axison)  # a and b's curve in every panel
    plt.close(fig)
    fig = _comparison_curves(runs, {run: names[:2] for run in runs}, "size", "acc", style, color, "acc", "black")
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) >= 4
    plt.close(fig)
