"""Every reported number against a fixture computed by hand: per-size and per-distance acc and mae (off-path
vertices excluded), the consistency outcomes with a constructed coherent-but-wrong answer, knows vs. says, PGR
per size and pooled against each variant's own oracle, ceiling_ok, the 95% interval for every seed count the
presets use, capability_ok at the boundary size N and the trivial baseline. All pure numpy (the checks run in
JAX on tiny arrays): no model, no training."""

import jax.numpy as jnp
import numpy as np
import pytest

from experiment.metrics import (
    CAPABILITY_THRESHOLD,
    CEILING_THRESHOLD,
    KNOWS_SAYS,
    METRICS,
    Scope,
    add_distance_ceilings,
    add_held_out_pgr,
    add_pgr,
    add_pooled_pgr,
    aggregate,
    capability,
    checks_passed,
    mean_ci,
    path_labels,
    pooled,
    pooled_parts,
    present_families,
    query_counts,
    query_labels,
    query_outcomes,
    split_masks,
    tables,
)
from experiment.predict import trivial_report
from experiment.summary import has_pgr
from graphgen.splits import parse_split
from models.consistency import checks, passes, question

VOCAB = 7
# Three examples (ids 1..7; absent ids are answered 0).
#   A, size 5: path 1-2-3-4 (s=1, t=4), vertex 5 hangs off 2. Truthful on the path; off the path, vertex 5 is
#      answered 6: that makes vertex 2 fail edge_lipschitz, and must not count against accuracy.
#   B, size 6: the path 1-2-3-4-5-6 (s=1, t=6). Answers 0 2 3 4 1 5: a permutation of 0..5 with both ends right,
#      d(t,.) = 5 - d(s,.). Vertex 3 (truth 2) answers 3 = 1 + min(2, 4) of its neighbours and is within 1 of
#      both: it passes every check and is wrong, coherent but wrong. Every other vertex has a neighbour more
#      than 1 away (incoherent); vertices 1 and 6 are right, 2..5 wrong.
#   C, size 5: A's graph answered by the trivial guess (0 2 2 3 2 ...): path_permutation fails everywhere.
ARRAYS = {
    "edges": np.array(
        [
            [[1, 2], [2, 3], [3, 4], [2, 5], [0, 0]],
            [[1, 2], [2, 3], [3, 4], [4, 5], [5, 6]],
            [[2, 1], [3, 2], [4, 3], [5, 2], [0, 0]],
        ]
    ),
    "edge_mask": np.array([[True] * 4 + [False], [True] * 5, [True] * 4 + [False]]),
    "s": np.array([1, 1, 1]),
    "t": np.array([4, 6, 4]),
    "path": np.array([[1, 2, 3, 4, 0, 0], [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 0, 0]]),
    "path_len": np.array([4, 6, 4]),
    "d_st": np.array([3, 5, 3]),
    "num_nodes": np.array([5, 6, 5]),
    "family": np.array([1, 2, 1]),  # A and C grids, B a tree; family 0 (listed, absent) holds no question
    "family_names": np.array(["ring", "grid", "tree"]),
}
D_HAT = np.array([3, 5, 3])
PRED_S = np.array([[0, 1, 2, 3, 6, 0, 0], [0, 2, 3, 4, 1, 5, 0], [0, 2, 2, 3, 2, 2, 2]])
PRED_T = np.array([[3, 2, 1, 0, 3, 0, 0], [5, 3, 2, 1, 4, 0, 0], [3, 2, 2, 0, 2, 2, 2]])
# What the model knows (self-query answers d(s,v)): A all but vertex 3 (1 for 2), B all but vertex 6 (0 for 5),
# C all but vertex 2 (3 for 1). Per path query, knows / report right:
#   A: knows 1 1 0 1, says 1 1 1 1  -> knows&says 3, says without knowing 1 (vertex 3)
#   B: knows 1 1 1 1 1 0, says 1 0 0 0 0 1  -> knows&says 1, withholds 4 (vertices 2..5), says unknowing 1
#   C: knows 1 0 1 1, says 1 0 1 1  -> knows&says 3, neither 1 (vertex 2)
SELF_S = np.array([[0, 1, 1, 3, 0, 0, 0], [0, 1, 2, 3, 4, 0, 0], [0, 3, 2, 3, 0, 0, 0]])
# The reporter's answers d(s,v) on each twin (new ids; one more edge), read back to the original ids: the same
# as PRED_S, so relabel and monotone pass everywhere and the outcomes above are those of the six other checks.
TWINS = {"relabelled": PRED_S, "plus_edge": PRED_S}
N = 6  # the pretraining size: every question of ARRAYS is within it


@pytest.fixture
def outcomes():
    """Per test, not per module: mutmut attributes a function to the tests that call it, and a cached
    fixture would hide every test but the first from the mutants of query_outcomes."""
    return query_outcomes(PRED_S, PRED_T, D_HAT, SELF_S, ARRAYS, VOCAB, TWINS)


def test_path_labels_are_positions_on_the_path_and_minus_one_elsewhere():
    assert path_labels(ARRAYS, VOCAB).tolist() == [
        [0, 1, 2, 3, -1, -1, -1],
        [0, 1, 2, 3, 4, 5, -1],
        [0, 1, 2, 3, -1, -1, -1],
    ]


def test_query_outcomes_per_vertex(outcomes):
    on_path = outcomes["valid"]
    assert on_path.sum() == 14
    assert outcomes["acc"][on_path].tolist() == [1, 1, 1, 1] + [1, 0, 0, 0, 0, 1] + [1, 0, 1, 1]
    assert outcomes["mae"][on_path].tolist() == [0, 0, 0, 0] + [0, 1, 1, 1, 3, 0] + [0, 1, 0, 0]
    assert outcomes["incoherent"][on_path].tolist() == [0, 1, 0, 0] + [1, 1, 0, 1, 1, 1] + [1, 1, 1, 1]
    assert outcomes["coherent_wrong"][on_path].tolist() == [0, 0, 0, 0] + [0, 0, 1, 0, 0, 0] + [0, 0, 0, 0]
    assert (outcomes["consistent"] == ~outcomes["incoherent"]).all()


def test_knows_vs_says_per_query(outcomes):
    on_path = outcomes["valid"]
    part = {name: outcomes[name][on_path].astype(int).tolist() for name in KNOWS_SAYS}
    assert part["knows_says"] == [1, 1, 0, 1] + [1, 0, 0, 0, 0, 0] + [1, 0, 1, 1]
    assert part["knows_withholds"] == [0, 0, 0, 0] + [0, 1, 1, 1, 1, 0] + [0, 0, 0, 0]
    assert part["says_unknowing"] == [0, 0, 1, 0] + [0, 0, 0, 0, 0, 1] + [0, 0, 0, 0]
    assert part["neither"] == [0, 0, 0, 0] + [0, 0, 0, 0, 0, 0] + [0, 1, 0, 0]
    # The four parts split the queries: each path query is in exactly one.
    assert (sum(outcomes[name].astype(int) for name in KNOWS_SAYS)[on_path] == 1).all()
    assert outcomes["agrees"][on_path].astype(int).tolist() == [1, 1, 0, 1] + [1, 0, 0, 0, 0, 0] + [1, 0, 1, 1]


def test_knows_vs_says_by_size_sums_to_one(outcomes):
    by_size = tables(outcomes, ARRAYS, Scope.of(ARRAYS, N))["by_size"]
    expected = {"5": (6 / 8, 0, 1 / 8, 1 / 8, 6 / 8), "6": (1 / 6, 4 / 6, 1 / 6, 0, 1 / 6)}
    for size, values in expected.items():
        got = tuple(by_size[size][name] for name in (*KNOWS_SAYS, "agrees"))
        assert got == pytest.approx(values), size
        assert sum(by_size[size][name] for name in KNOWS_SAYS) == pytest.approx(1.0)
    by_distance = tables(outcomes, ARRAYS, Scope.of(ARRAYS, N))["by_distance"]
    assert by_distance["1"]["knows_withholds"] == pytest.approx(1 / 3)  # B's vertex 2 of A, B, C's vertex 2
    assert by_distance["5"]["says_unknowing"] == 1.0


def test_the_self_query_as_a_reporter_never_withholds():
    own = query_outcomes(SELF_S, PRED_T, D_HAT, SELF_S, ARRAYS, VOCAB, TWINS)
    on_path = own["valid"]
    assert not own["knows_withholds"][on_path].any() and not own["says_unknowing"][on_path].any()
    assert own["agrees"][on_path].all() and (own["acc"] == own["knows_says"])[on_path].all()


def test_a_coherent_but_wrong_answer_passes_every_single_check(outcomes):
    """B's vertex 3: every condition alone passes there, and the answer is wrong."""
    for name in checks():
        assert outcomes[f"pass_{name}"][1, 2], name
    assert outcomes["label"][1, 2] == 2 and PRED_S[1, 2] == 3


def test_the_twin_checks_see_the_answers_on_the_twins():
    """A's vertex 1 (coherent above) answered 1 on the relabelled graph: relabel fails there and only there,
    and the vertex is incoherent; A's vertex 3 answered 3 (more than its 2) on the graph with one more edge:
    monotone fails there; 1 (less) on it: monotone holds."""
    relabelled, longer, shorter = PRED_S.copy(), PRED_S.copy(), PRED_S.copy()
    relabelled[0, 0], longer[0, 2], shorter[0, 2] = 1, 3, 1
    got = query_outcomes(PRED_S, PRED_T, D_HAT, SELF_S, ARRAYS, VOCAB, {**TWINS, "relabelled": relabelled})
    assert np.argwhere(~got["pass_relabel"]).tolist() == [[0, 0]] and got["incoherent"][0, 0]
    assert got["pass_monotone"].all()
    got = query_outcomes(PRED_S, PRED_T, D_HAT, SELF_S, ARRAYS, VOCAB, {**TWINS, "plus_edge": longer})
    assert np.argwhere(~got["pass_monotone"]).tolist() == [[0, 2]] and got["pass_relabel"].all()
    got = query_outcomes(PRED_S, PRED_T, D_HAT, SELF_S, ARRAYS, VOCAB, {**TWINS, "plus_edge": shorter})
    assert got["pass_monotone"].all()


def test_checks_do_not_depend_on_the_chunks_or_the_one_hot_width():
    """checks_passed runs in chunks of one size (the last padded by repeating its rows) on one-hot answers
    rounded up to a multiple of 8: the outcomes are those of `passes` on the whole batch at the answers' own width
    (7 here; 9 with A's vertex 5 answered 8, a width that must round up to 16), example by example. Chunks of 2
    pad the last example, C, to two rows."""
    q = question(*(jnp.asarray(ARRAYS[k]) for k in ("edges", "edge_mask", "s", "t", "path")), VOCAB)
    for pred_s in (PRED_S, np.where(PRED_S == 6, 8, PRED_S)):
        for chunk in (1, 2, 3, 2048):
            got = checks_passed(pred_s, PRED_T, D_HAT, ARRAYS, VOCAB, TWINS, chunk=chunk)
            for name in checks():
                expected = np.asarray(passes(name, q, pred_s, PRED_T, D_HAT, TWINS))
                assert (got[name] == expected).all(), (pred_s.max(), chunk, name)
    assert not got["path_permutation"][2, :4].any()  # C's trivial answers, by hand: no distance used once


def test_breakdown_by_size_and_distance_excludes_off_path_vertices(outcomes):
    got = tables(outcomes, ARRAYS, Scope.of(ARRAYS, N))
    by_size, by_distance = got["by_size"], got["by_distance"]
    assert set(by_size) == {"5", "6"} and set(by_distance) == {"0", "1", "2", "3", "4", "5"}
    assert set(by_size["5"]) == {*METRICS, "queries"}
    # Every row carries its query count: A and C's 4 path vertices at size 5, B's 6; one per question at
    # d = 0..3, B alone at 4 and 5.
    assert (by_size["5"]["queries"], by_size["6"]["queries"]) == (8, 6)
    assert {d: row["queries"] for d, row in by_distance.items()} == {"0": 3, "1": 3, "2": 3, "3": 3, "4": 1, "5": 1}
    expected_size = {  # size: (acc, mae, incoherent, coherent_wrong, consistent)
        "5": (7 / 8, 1 / 8, 5 / 8, 0, 3 / 8),
        "6": (2 / 6, 6 / 6, 5 / 6, 1 / 6, 1 / 6),
    }
    for size, (acc, mae, incoherent, coherent_wrong, consistent) in expected_size.items():
        row = by_size[size]
        assert row["acc"] == pytest.approx(acc) and row["mae"] == pytest.approx(mae), size
        assert row["incoherent"] == pytest.approx(incoherent) and row["consistent"] == pytest.approx(consistent)
        assert row["coherent_wrong"] == pytest.approx(coherent_wrong), size
    assert by_size["5"]["pass_edge_lipschitz"] == pytest.approx(5 / 8)  # A's vertex 2, C's 1 and 2 (0 next to 2)
    assert by_size["5"]["pass_path_permutation"] == pytest.approx(4 / 8)  # C fails it everywhere
    expected_distance = {"0": (1, 0), "1": (1 / 3, 2 / 3), "2": (2 / 3, 1 / 3), "3": (2 / 3, 1 / 3)}
    expected_distance |= {"4": (0, 3), "5": (1, 0)}
    for distance, (acc, mae) in expected_distance.items():
        row = by_distance[distance]
        assert (row["acc"], row["mae"]) == pytest.approx((acc, mae)), distance
    assert by_distance["2"]["coherent_wrong"] == pytest.approx(1 / 3)
    assert by_distance["3"]["coherent_wrong"] == 0


def test_rows_by_distance_are_over_sizes_up_to_n_alone(outcomes):
    """With N = 5, B (size 6) is past the pretraining size: reported by size, and not by distance, where it would
    mix extrapolation in size with extrapolation in distance. By distance, A and C alone: both right at d = 0, 2
    and 3; at d = 1, A right and C (the trivial 2) wrong; nothing at 4 and 5 (B's)."""
    scope = Scope.of(ARRAYS, 5)
    got = tables(outcomes, ARRAYS, scope)
    assert got["by_size"] == tables(outcomes, ARRAYS, Scope.of(ARRAYS, N))["by_size"]  # B's size 6 still there
    assert {d: (row["acc"], row["queries"]) for d, row in got["by_distance"].items()} == {
        "0": (1.0, 2), "1": (0.5, 2), "2": (1.0, 2), "3": (1.0, 2)
    }  # fmt: skip
    assert {d: row["queries"] for d, row in got["off_path_by_distance"].items()} == {"2": 2}  # A and C: vertex 5
    counted = query_counts(query_labels(ARRAYS, VOCAB), ARRAYS, scope)
    assert counted["by_size"] == {"5": 8, "6": 6}
    assert counted["by_distance"] == {"0": 2, "1": 2, "2": 2, "3": 2}
    assert counted["by_stratum"]["base"] == {"graphs": 3, "by_distance": counted["by_distance"]}


# C (the third question) as a graph of the long-distance top-up: it counts by distance, nowhere else.
TOPPED_UP = ARRAYS | {"stratum": np.array([0, 0, 1], np.int32)}


def test_a_top_up_question_changes_the_rows_by_distance_only(outcomes):
    """By size, family and pooled: A and B alone, as if C were not there; by distance: A, B and C."""
    got, alone = tables(outcomes, TOPPED_UP, Scope.of(TOPPED_UP, N)), tables(outcomes, ARRAYS, Scope.of(ARRAYS, N))
    assert got["by_size"]["5"]["acc"] == 1.0 and got["by_size"]["5"]["queries"] == 4  # A's 4 (with C: 7/8 of 8)
    assert got["by_size"]["6"] == alone["by_size"]["6"]  # B
    assert got["by_family"]["grid"]["acc"] == 1.0 and got["by_family_size"]["grid/5"]["queries"] == 4
    assert got["off_path_by_size"]["5"]["queries"] == 1 and got["off_path_by_size"]["5"]["acc"] == 0  # A's vertex 5
    assert got["by_distance"] == alone["by_distance"]  # C's answers at d = 1: wrong, 1/3 right (A, B, C)
    assert got["by_distance"]["1"]["acc"] == pytest.approx(1 / 3) and got["by_distance"]["1"]["queries"] == 3
    assert got["off_path_by_distance"] == alone["off_path_by_distance"]
    # Pooled over the size split's held-out sizes n+1..N (n = 4, N = 6): A and B, not C; every stratum is checked.
    masks = split_masks(parse_split("size"), outcomes, ARRAYS, 4, 6)
    topped_up, plain = Scope.of(TOPPED_UP, N), Scope.of(ARRAYS, N)
    assert pooled_parts(outcomes, masks, topped_up)["held_out"]["acc"] == pytest.approx(6 / 10)  # 4 of A, 2 of B
    assert pooled_parts(outcomes, masks, plain)["held_out"]["acc"] == pytest.approx(9 / 14)  # with C's 3 of 4
    assert pooled_parts(outcomes, masks, topped_up)["checked"]["acc"] is None  # no size <= 4


def test_query_counts_by_size_are_the_base_and_by_distance_every_stratum():
    counted = query_counts(query_labels(TOPPED_UP, VOCAB), TOPPED_UP, Scope.of(TOPPED_UP, N))
    assert counted["by_size"] == {"5": 4, "6": 6}  # A (size 5) and B; C is top-up
    assert counted["by_distance"] == {"0": 3, "1": 3, "2": 3, "3": 3, "4": 1, "5": 1}
    assert counted["by_stratum"] == {
        "base": {"graphs": 2, "by_distance": {"0": 2, "1": 2, "2": 2, "3": 2, "4": 1, "5": 1}},
        "top_up": {"graphs": 1, "by_distance": {"0": 1, "1": 1, "2": 1, "3": 1}},
    }
    plain = query_counts(query_labels(ARRAYS, VOCAB), ARRAYS, Scope.of(ARRAYS, N))  # a dataset without strata: all base
    assert plain["by_size"] == {"5": 8, "6": 6} and plain["by_stratum"]["top_up"] == {"graphs": 0, "by_distance": {}}


def test_capability_by_size_is_the_base_and_by_distance_every_stratum():
    d_hat = np.array([3, 5, 0])  # C (top-up, size 5, d(s,t) 3) answered wrong
    got = capability(d_hat, TOPPED_UP, n_max=6)
    assert got["d_st_acc_by_size"] == {"5": 1.0, "6": 1.0} and got["capability_ok"] is True
    assert got["d_st_acc_by_distance"] == {"3": 0.5, "5": 1.0}


def test_aggregate_keeps_the_query_count_as_it_is():
    seeds = [{"5": {"acc": acc, "queries": 8}} for acc in (0.2, 0.4)]
    assert aggregate(seeds)["5"]["queries"] == 8 and "queries_ci95" not in aggregate(seeds)["5"]


@pytest.mark.parametrize(("oracle_acc", "ok"), [(0.85, False), (0.9, True)])
def test_ceiling_ok_by_distance_flips_with_a_weak_oracle_at_one_distance(oracle_acc, ok):
    """By distance, each row of a variant with an oracle says whether that oracle reaches 0.9 at that distance:
    d = 3 strong, d = 7 `oracle_acc`; the probe (no oracle) and the trivial baseline get no mark."""

    def table(*accs):
        return {"by_distance": {d: {"acc": acc} for d, acc in zip(("3", "7"), accs, strict=True)}}

    variants = {"trivial": table(0.1, 0.1), "oracle": table(0.99, oracle_acc), "frozen": table(0.8, 0.0)}
    variants |= {"probe": table(0.5, 0.5)}
    add_distance_ceilings(variants, {"oracle": "oracle", "frozen": "oracle"})
    for name in ("oracle", "frozen"):
        assert variants[name]["by_distance"]["3"]["ceiling_ok"] is True
        assert variants[name]["by_distance"]["7"]["ceiling_ok"] is ok
    for name in ("trivial", "probe"):
        assert all("ceiling_ok" not in row for row in variants[name]["by_distance"].values()), name


def held_out_acc(outcomes, split: str, n_report: int, n_max: int) -> float | None:
    return pooled(outcomes, split_masks(parse_split(split), outcomes, ARRAYS, n_report, n_max)[1])["acc"]


def test_size_split_holds_out_the_path_queries_of_sizes_n_plus_1_to_N_only(outcomes):
    assert held_out_acc(outcomes, "size", n_report=5, n_max=6) == pytest.approx(2 / 6)  # B alone
    assert held_out_acc(outcomes, "size", n_report=4, n_max=5) == pytest.approx(7 / 8)  # A and C, not B (> N)
    assert held_out_acc(outcomes, "size", n_report=4, n_max=6) == pytest.approx(9 / 14)
    assert held_out_acc(outcomes, "size", n_report=6, n_max=6) is None  # nothing held out: no number


def test_every_split_checks_and_holds_out_the_queries_it_says(outcomes):
    counts = {  # split, N -> (checked, held-out) query counts
        ("size", 6): (8, 6),  # n = 5: A and C checked, B held out
        ("family:tree", 6): (8, 6),  # every other present family (grid: A and C) checked
        ("family:tree", 5): (8, 0),  # B is past N
        ("family:grid:tree", 6): (6, 8),
        ("family:ring", 6): (14, 0),
        ("distance:2", 6): (9, 5),  # d(s,u) <= 2: three per example
        ("distance:3", 5): (8, 0),  # past N: nothing
        ("offpath", 6): (14, 2),  # vertex 5 of A and of C
    }
    for (split, n_max), expected in counts.items():
        masks = split_masks(parse_split(split), outcomes, ARRAYS, 5, n_max)
        assert tuple(int(m.sum()) for m in masks) == expected, split
    assert held_out_acc(outcomes, "family:tree", 5, 6) == pytest.approx(2 / 6)
    assert held_out_acc(outcomes, "family:grid", 5, 6) == pytest.approx(7 / 8)
    assert held_out_acc(outcomes, "distance:2", 5, 6) == pytest.approx(3 / 5)  # A's 4, B's 6, C's 4 right
    assert held_out_acc(outcomes, "offpath", 5, 6) == pytest.approx(1 / 2)  # A's 5 answered 6 (truth 2), C's 2
    checked = pooled(outcomes, split_masks(parse_split("distance:2"), outcomes, ARRAYS, 5, 6)[0])
    assert checked["acc"] == pytest.approx(6 / 9) and checked["knows_says"] == pytest.approx(5 / 9)
    assert checked["knows_withholds"] == pytest.approx(2 / 9)  # B's 2 and 3


def test_off_path_queries_are_labelled_by_bfs_and_broken_down_apart(outcomes):
    assert outcomes["label"].tolist() == [
        [0, 1, 2, 3, 2, -1, -1],
        [0, 1, 2, 3, 4, 5, -1],
        [0, 1, 2, 3, 2, -1, -1],
    ]
    assert outcomes["off_path"].sum() == 2 and outcomes["off_path"][[0, 2], 4].all()
    table = tables(outcomes, ARRAYS, Scope.of(ARRAYS, N))
    assert set(table["off_path_by_size"]) == {"5"}  # B (size 6) has no off-path vertex: no row
    assert table["off_path_by_size"]["5"]["acc"] == pytest.approx(1 / 2)
    assert table["off_path_by_distance"]["2"]["mae"] == pytest.approx(2)  # |6 - 2| and 0
    assert table["off_path_by_size"]["5"]["neither"] == pytest.approx(1 / 2)  # the self-query knows neither
    assert table["by_size"]["5"]["acc"] == pytest.approx(7 / 8)  # the path queries' numbers stay their own


def test_breakdown_by_family(outcomes):
    table = tables(outcomes, ARRAYS, Scope.of(ARRAYS, N))
    assert set(table["by_family"]) == {"grid", "tree"}
    assert table["by_family"]["grid"]["acc"] == pytest.approx(7 / 8)
    assert table["by_family"]["tree"]["knows_withholds"] == pytest.approx(4 / 6)
    assert table["by_family_size"]["tree/6"]["acc"] == pytest.approx(2 / 6)
    assert set(table["by_family_size"]) == {"grid/5", "tree/6"}


def test_pgr_of_each_variant_is_on_its_own_held_out_queries():
    #  Four queries; the mask of "fam" holds out the first two, "size" the last two.
    right = {
        ("trivial", 0): [0, 0, 1, 0],
        ("oracle", 1): [1, 1, 1, 1],
        ("oracle", 2): [1, 0, 1, 1],
        ("fam", 1): [1, 0, 0, 0],
        ("fam", 2): [0, 0, 1, 1],
        ("size", 1): [0, 0, 1, 1],
        ("size", 2): [0, 0, 1, 0],
    }
    correct = {cell: np.array([v], bool) for cell, v in right.items()}
    first, last = np.array([[1, 1, 0, 0]], bool), np.array([[0, 0, 1, 1]], bool)
    held_out = {"fam": first, "size": last, "oracle": last}
    variants = {name: {} for name in ("fam", "size", "oracle")}
    oracle_of = {"oracle": "oracle", "size": "oracle", "fam": "oracle"}  # fam last: its queries are not the ceiling's
    ceilings = add_held_out_pgr(variants, correct, held_out, oracle_of, [1, 2])
    # fam: floor 0, oracle 0.75 on the first two; seeds 0.5 and 0 -> PGR 2/3 and 0.
    assert variants["fam"]["pgr_beyond_n"]["mean"] == pytest.approx(1 / 3)
    # size: floor 0.5, oracle 1; seeds 1 and 0.5 -> PGR 1 and 0.
    assert variants["size"]["pgr_beyond_n"]["mean"] == pytest.approx(1 / 2)
    assert ceilings == {"oracle": {"pooled_acc": 1.0, "ceiling_ok": True}}  # on the oracle's own queries
    variants = {"fam": {}, "size": {}}
    held_out, oracle_of = {"fam": first & last, "size": last}, {"fam": "oracle", "size": "oracle"}
    add_held_out_pgr(variants, correct, held_out, oracle_of, [1, 2])
    assert "pgr_beyond_n" not in variants["fam"]  # nothing held out: no PGR
    assert variants["size"]["pgr_beyond_n"]["mean"] == pytest.approx(1 / 2)  # and the next variant still its own


def test_trivial_report_by_hand():
    d_hat, s, t = np.array([4, 6, 3, 5, 1]), np.array([2, 5, 1, 1, 1]), np.array([5, 1, 3, 6, 2])
    assert trivial_report(d_hat, s, t, 6).tolist() == [
        [2, 0, 2, 2, 4, 2],
        [6, 3, 3, 3, 0, 3],
        [0, 2, 3, 2, 2, 2],
        [0, 2, 2, 2, 2, 5],  # 5/2 rounds half to even: 2
        [0, 1, 0, 0, 0, 0],  # 1/2 rounds half to even: 0
    ]
    assert trivial_report(d_hat, s, t, 6).dtype.kind == "i"  # answers are distances, compared with labels
    # On the fixture: trivial answers are exactly C's, and score what C scores.
    assert trivial_report(D_HAT[2:], ARRAYS["s"][2:], ARRAYS["t"][2:], VOCAB)[0, :4].tolist() == PRED_S[2, :4].tolist()


# Two-sided 95% Student-t quantiles t(0.975, df), from the standard table.
STUDENT_T = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764}


@pytest.mark.parametrize(
    ("values", "mean", "sd"),
    [
        ([0.5], 0.5, None),  # 1 seed: the mean alone
        ([0.4, 0.6], 0.5, 0.1 * 2**0.5),
        ([0.2, 0.4, 0.6], 0.4, 0.2),
        ([0.1, 0.2, 0.3, 0.4, 0.5], 0.3, (0.025) ** 0.5),
    ],
)
def test_mean_and_95_interval_for_every_seed_count_the_presets_use(values, mean, sd):
    got = mean_ci(values)
    if sd is None:
        assert got == (mean, mean, mean)
        return
    half = STUDENT_T[len(values) - 1] * sd / len(values) ** 0.5
    assert got == pytest.approx((mean, mean - half, mean + half), abs=1e-4)


def test_past_ten_seeds_the_interval_is_the_normal_one():
    values = [0.1 * (i % 2) for i in range(11)]  # df = 10: beyond the table, t(0.975) ~ 1.96
    mean, low, high = mean_ci(values)
    half = 1.96 * float(np.std(values, ddof=1)) / 11**0.5
    assert (low, high) == pytest.approx((mean - half, mean + half), abs=1e-9)


def test_aggregate_of_one_seed_is_its_numbers():
    row = aggregate([{"5": {m: 0.3 for m in METRICS}}])["5"]
    assert all(row[m] == 0.3 and row[f"{m}_ci95"] == [0.3, 0.3] for m in METRICS)


def test_aggregate_gives_seed_means_and_intervals_of_every_metric():
    seeds = [{"5": {m: value for m in METRICS}} for value in (0.2, 0.4, 0.6)]
    row = aggregate(seeds)["5"]
    half = STUDENT_T[2] * 0.2 / 3**0.5
    for m in METRICS:
        assert row[m] == pytest.approx(0.4) and row[f"{m}_ci95"] == pytest.approx([0.4 - half, 0.4 + half], abs=1e-4)


def test_pgr_per_size_from_seed_means_against_each_variants_own_oracle():
    def table(*accs):
        return {"by_size": {str(size): {"acc": acc} for size, acc in zip((4, 5, 6), accs, strict=True)}}

    variants = {
        "trivial": table(0.5, 0.2, 0.3),
        "oracle": table(0.9, 0.8, 0.3),
        "frozen": table(0.7, 0.65, 0.9),
        "oracle:fresh": table(0.9, 0.6, 0.5),
        "frozen:fresh": table(0.9, 0.5, 0.4),
        "probe": table(0.9, 0.9, 0.9),
    }
    oracle_of = {"oracle": "oracle", "frozen": "oracle", "oracle:fresh": "oracle:fresh", "frozen:fresh": "oracle:fresh"}
    add_pgr(variants, 4, oracle_of)
    frozen = variants["frozen"]["by_size"]
    assert "pgr" not in frozen["4"]
    assert frozen["5"]["pgr"] == pytest.approx((0.65 - 0.2) / (0.8 - 0.2))
    assert frozen["6"]["pgr"] is None  # no gap between oracle and trivial: PGR undefined, not infinite
    fresh = variants["frozen:fresh"]["by_size"]
    assert fresh["5"]["pgr"] == pytest.approx((0.5 - 0.2) / (0.6 - 0.2))  # its own oracle, not "oracle"
    assert fresh["6"]["pgr"] == pytest.approx((0.4 - 0.3) / (0.5 - 0.3))
    assert variants["oracle"]["by_size"]["5"]["pgr"] == pytest.approx(1)
    assert "pgr" not in variants["probe"]["by_size"]["5"] and "pgr" not in variants["trivial"]["by_size"]["5"]


def test_pooled_pgr_against_oracle_minus_floor():
    pooled = {"trivial": [0.2], "oracle": [0.8, 0.6], "frozen": [0.5, 0.4, 0.6], "probe": [0.7]}
    variants = {name: {} for name in pooled}
    ceilings = add_pooled_pgr(variants, pooled, {"frozen": "oracle", "oracle": "oracle"})
    # floor 0.2, top = oracle mean 0.7: frozen's per-seed PGR 0.6, 0.4, 0.8.
    frozen = variants["frozen"]["pgr_beyond_n"]
    half = STUDENT_T[2] * 0.2 / 3**0.5
    assert frozen["mean"] == pytest.approx(0.6) and frozen["ci95"] == pytest.approx([0.6 - half, 0.6 + half], abs=1e-4)
    assert frozen["oracle"] == "oracle"
    assert variants["oracle"]["pgr_beyond_n"]["mean"] == pytest.approx(1.0)
    assert "pgr_beyond_n" not in variants["probe"] and "pgr_beyond_n" not in variants["trivial"]
    assert ceilings == {"oracle": {"pooled_acc": pytest.approx(0.7), "ceiling_ok": False}}
    # No gap between the oracle and the floor: no PGR at all (not a division by zero).
    flat = {"trivial": [0.5], "oracle": [0.5, 0.5], "frozen": [0.7]}
    variants = {name: {} for name in flat}
    add_pooled_pgr(variants, flat, {"frozen": "oracle", "oracle": "oracle"})
    assert variants == {name: {} for name in flat}


@pytest.mark.parametrize(("oracle_acc", "ok"), [(0.85, False), (0.9, True), (0.97, True)])
def test_ceiling_ok_flips_with_a_weak_oracle(oracle_acc, ok):
    """A fabricated summary: a strong "oracle" and a second oracle whose pooled accuracy is `oracle_acc`; every
    variant divided by the second is marked, and the PGR plots leave it out."""
    assert CEILING_THRESHOLD == 0.9
    pooled = {"trivial": [0.5], "oracle": [1.0], "frozen": [0.8], "oracle:fresh": [oracle_acc], "frozen:fresh": [0.6]}
    oracle_of = {"oracle": "oracle", "frozen": "oracle", "oracle:fresh": "oracle:fresh", "frozen:fresh": "oracle:fresh"}
    variants = {name: {} for name in pooled}
    ceilings = add_pooled_pgr(variants, pooled, oracle_of)
    assert ceilings["oracle"]["ceiling_ok"] is True and ceilings["oracle:fresh"]["ceiling_ok"] is ok
    assert variants["frozen:fresh"]["pgr_beyond_n"]["ceiling_ok"] is ok
    assert variants["frozen"]["pgr_beyond_n"]["ceiling_ok"] is True
    assert has_pgr(variants["frozen:fresh"]) is ok and has_pgr(variants["frozen"])
    assert not has_pgr(variants["trivial"])


def capability_fixture(correct_by_size: dict[int, int], per_size: int = 20):
    """d(s,t) answered right on `correct_by_size[n]` of `per_size` examples of each size n."""
    sizes = np.repeat(list(correct_by_size), per_size)
    d_st = np.tile(np.arange(per_size) % 3 + 1, len(correct_by_size))
    right = np.concatenate([np.arange(per_size) < k for k in correct_by_size.values()])
    return np.where(right, d_st, 0), {"num_nodes": sizes, "d_st": d_st}


def test_capability_ok_at_the_boundary_size_N():
    assert CAPABILITY_THRESHOLD == 0.95
    # 19/20 = 0.95 exactly meets the bar; sizes beyond N = 6 do not count.
    d_hat, arrays = capability_fixture({5: 20, 6: 19, 7: 0})
    got = capability(d_hat, arrays, n_max=6)
    assert got["capability_ok"] is True and got["threshold"] == 0.95 and got["n_max"] == 6
    assert got["d_st_acc_by_size"] == {"5": 1.0, "6": 0.95, "7": 0.0}
    # By distance, sizes <= N only: distances 1, 2, 3 on 14, 14, 12 examples; the one miss (size 6's 20th
    # example, 19 % 3 + 1 = 2) is at distance 2. Size 7's misses would make every distance < 1.
    assert got["d_st_acc_by_distance"] == pytest.approx({"1": 1.0, "2": 13 / 14, "3": 1.0})
    # One more miss at size N fails the run; the same miss at N + 1 would not.
    assert capability(*capability_fixture({5: 20, 6: 18, 7: 0}), n_max=6)["capability_ok"] is False
    assert capability(*capability_fixture({5: 20, 6: 18, 7: 0}), n_max=5)["capability_ok"] is True
    assert capability(*capability_fixture({5: 18, 6: 20}), n_max=6)["capability_ok"] is False
    # With an overseer, its o(s,t) counts too: d(s,t) all right, o(s,t) right on 18 of size 6's 20 (0.90).
    d_hat, arrays = capability_fixture({5: 20, 6: 20})
    o_hat, _ = capability_fixture({5: 20, 6: 18})
    got = capability(d_hat, arrays, n_max=6, o_hat=o_hat, o_st=arrays["d_st"])
    assert got["o_st_acc_by_size"] == {"5": 1.0, "6": 0.9} and got["capability_ok"] is False


def test_present_families_are_the_listed_ones_with_a_question_in_the_list_order():
    arrays = {"family_names": np.array(["tree_plus", "grid_holes", "small_world"]), "family": np.array([2, 0, 2])}
    assert present_families(arrays) == ["tree_plus", "small_world"]
