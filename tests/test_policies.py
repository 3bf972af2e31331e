"""What a reporter says instead (issue #33), by hand: each candidate policy on the hand-built graph, the first
policy that explains each wrong answer and the shares summing to 1 with `unexplained`, the counts of answers by
true distance (added over seeds), and the rank of the truth among known logits: 1 exactly where the argmax
answer is right. Also on a real (untrained) reporter: the rank computed inside the prediction pass is 1 exactly
where its answer is right, and asking for it changes no answer."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import HAND_GRAPH
from flax import nnx

from configs import PRESETS
from experiment.metrics import (
    counts_by_distance,
    explained_counts,
    explained_shares,
    longest_labelled,
    query_labels,
    summed_counts,
)
from experiment.policies import POLICIES, UNEXPLAINED, Question, applicable, first_match
from experiment.predict import answers, truth_rank
from experiment.rundir import make_eval_set, new_model, variant_model
from graphgen.splits import parse_split
from models.objectives import PRETRAINED, variant

# HAND_GRAPH: the path 1-2-3-4 (s=1, t=4), vertex 5 off vertex 2, id 6 absent (-1: no distance).
FROM_S = np.array([[0, 1, 2, 3, 2, -1]])
FROM_T = np.array([[3, 2, 1, 0, 3, -1]])
HAND = Question(s=HAND_GRAPH["s"], t=HAND_GRAPH["t"], d_st=np.array([3]), from_s=FROM_S, from_t=FROM_T, longest=2)


def test_the_registered_policies_in_their_fixed_order():
    assert list(POLICIES) == ["clamp", "d_st", "trivial", "reverse", "overseer", "off_by_one"]


@pytest.mark.parametrize(
    ("name", "by_hand"),
    [
        ("clamp", [[0, 1, 2, 2, 2, -1]]),  # min(d, 2)
        ("d_st", [[3, 3, 3, 3, 3, 3]]),  # the model's d(s,t) whatever u
        ("trivial", [[0, 2, 2, 3, 2, 2]]),  # 0 at s, d̂ at t, rint(3 / 2) = 2 elsewhere
        ("reverse", [[3, 2, 1, 0, 3, -1]]),  # d(u,t)
        ("off_by_one", [[[-1, 0, 1, 2, 1, -2]], [[1, 2, 3, 4, 3, 0]]]),  # d - 1 and d + 1
    ],
)
def test_each_policy_by_hand(name, by_hand):
    np.testing.assert_array_equal(POLICIES[name](HAND), by_hand)


def test_the_overseer_policy_is_the_runs_overseer_where_it_has_one():
    assert POLICIES["overseer"](HAND) is None and "overseer" not in applicable(HAND)
    o = np.array([[0, 1, 2, 2, 4, -1]])
    np.testing.assert_array_equal(POLICIES["overseer"](dataclasses.replace(HAND, overseer=o)), o)
    assert POLICIES["clamp"](dataclasses.replace(HAND, longest=None)) is None  # no labels: nothing to clamp to


@pytest.mark.parametrize(
    ("split", "everywhere", "longest"),
    [("size", False, 7), ("size", True, 15), ("distance:3", False, 3), ("offpath", False, 15)],
)
def test_the_largest_labelled_distance_of_each_split(split, everywhere, longest):
    """n = 8, N = 16: a graph of n vertices has paths of at most n - 1 edges; the oracles are labelled up to N."""
    assert longest_labelled(parse_split(split), 8, 16, everywhere) == longest


# Answers at ids 1..6: right at 1 (d=0); 3 at 2 (d=1): d_st; 1 at 3 (d=2): not clamp 2, d_st 3 or trivial 2, but
# reverse 1; 2 at 4 (d=3): clamp first (off_by_one too); 4 at 5 (d=2, off the path): no policy gives 4.
ANSWER = np.array([[0, 3, 1, 2, 4, 0]])
IN_GRAPH = FROM_S >= 0


def test_the_first_policy_that_gives_the_answer_explains_it():
    which, names = first_match(ANSWER, HAND)
    assert names == ["clamp", "d_st", "trivial", "reverse", "off_by_one", UNEXPLAINED]
    assert [names[i] for i in which[0][:5]] == ["clamp", "d_st", "reverse", "clamp", UNEXPLAINED]


def test_wrong_answers_by_distance_and_policy_by_hand():
    counts = explained_counts(ANSWER, HAND, FROM_S, IN_GRAPH)
    zero = dict.fromkeys(["clamp", "d_st", "trivial", "reverse", "off_by_one", UNEXPLAINED], 0)
    assert counts == {  # d = 0 is answered right: no wrong answer there
        "1": {"wrong": 1, **zero, "d_st": 1},
        "2": {"wrong": 2, **zero, "reverse": 1, UNEXPLAINED: 1},
        "3": {"wrong": 1, **zero, "clamp": 1},
    }
    # With an overseer that answers 4 at vertex 5, it explains that answer (before off_by_one).
    o = np.array([[0, 1, 2, 2, 4, -1]])
    seen = explained_counts(ANSWER, dataclasses.replace(HAND, overseer=o), FROM_S, IN_GRAPH)
    assert seen["2"]["overseer"] == 1 and seen["2"][UNEXPLAINED] == 0
    # Shares of the wrong answers: every distance's sum to 1 with unexplained.
    shares = explained_shares(summed_counts([counts, counts]))
    assert shares["2"] == {"wrong": 4, **zero, "reverse": 0.5, UNEXPLAINED: 0.5}
    for row in shares.values():
        assert sum(v for k, v in row.items() if k != "wrong") == pytest.approx(1.0)


def test_answers_by_distance_are_counts_added_over_seeds():
    path = np.array([[True, True, True, True, False, False]])
    assert counts_by_distance(FROM_S, ANSWER, path) == {"0": {"0": 1}, "1": {"3": 1}, "2": {"1": 1}, "3": {"2": 1}}
    other = np.array([[0, 1, 1, 10, 0, 0]])
    added = summed_counts([counts_by_distance(FROM_S, a, IN_GRAPH) for a in (ANSWER, other)])
    assert added == {"0": {"0": 2}, "1": {"1": 1, "3": 1}, "2": {"0": 1, "1": 2, "4": 1}, "3": {"2": 1, "10": 1}}
    assert list(added["3"]) == ["2", "10"]  # in numeric order


# Known logits over 4 classes, with the truth and, by hand, its rank and probability.
LOGITS = np.array(
    [
        [0.1, 2.0, 0.5, 0.0],  # truth 1: the answer, rank 1
        [3.0, 2.0, 1.0, 0.0],  # truth 2: two above it, rank 3
        [1.0, 1.0, 0.0, 0.0],  # truth 1 tied with 0, which argmax picks: rank 2
        [1.0, 1.0, 0.0, 0.0],  # truth 0: argmax's pick, rank 1
        [0.0, 0.0, 0.0, 5.0],  # no truth (not in the graph): 0
    ]
)
TRUTH = np.array([1, 2, 1, 0, -1])


def test_the_truth_ranks_first_exactly_where_the_answer_is_right():
    rank, p_true, unlabelled = (np.asarray(a) for a in truth_rank(jnp.asarray(LOGITS), jnp.asarray(TRUTH)))
    assert rank.tolist() == [1, 3, 2, 1, 0]
    assert unlabelled.tolist() == rank.tolist()  # no labels: every class is unlabelled
    soft = np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)
    np.testing.assert_allclose(p_true, [soft[0, 1], soft[1, 2], soft[2, 1], soft[3, 0], 0.0], rtol=1e-6)
    known = TRUTH >= 0
    assert ((rank == 1) == (LOGITS.argmax(-1) == TRUTH))[known].all()


def test_the_rank_among_unlabelled_classes_counts_only_the_classes_past_the_longest_labelled_distance():
    """Labels up to 0: row 2's truth 1 ties with class 0, labelled, so it is first among 1..3; row 1's truth 2 has
    class 1 above it (rank 2); row 3's truth 0 was labelled (0). Labels up to 1: only row 1's truth is unlabelled,
    and no class above 1 beats it."""
    logits, truth = jnp.asarray(LOGITS), jnp.asarray(TRUTH)
    assert np.asarray(truth_rank(logits, truth, 0)[2]).tolist() == [1, 2, 1, 0, 0]
    assert np.asarray(truth_rank(logits, truth, 1)[2]).tolist() == [0, 1, 0, 0, 0]


def test_a_reporters_rank_inside_the_prediction_pass():
    cfg = PRESETS["tiny"]
    arrays = make_eval_set(cfg.data)
    pretrained = new_model(cfg, 3)
    model = variant_model(
        cfg, nnx.state(pretrained, PRETRAINED), 100, variant("frozen:fresh")
    )  # a fresh head: varied answers
    label = query_labels(arrays, cfg.data.vocab)["label"]
    plain = answers(pretrained, [(model, "fresh")], arrays, cfg.data.n_max)[0]
    asked = answers(pretrained, [(model, "fresh")], arrays, cfg.data.n_max, truth=label, longest=[3])
    given, rank, p_true, unlabelled = asked[0]
    np.testing.assert_array_equal(given, plain)  # asking for the rank changes no answer
    known = label >= 0
    assert 0 < (given == label)[known].mean() < 1  # both cases occur
    np.testing.assert_array_equal((rank == 1)[known], (given == label)[known])
    assert (rank[~known] == 0).all() and (p_true[known] > 0).all() and (p_true <= 1).all()
    beyond = label > 3  # the truths no label showed: ranked among the classes 4.. alone, never lower than among all
    assert (unlabelled[~beyond] == 0).all() and (unlabelled[beyond] >= 1).all()
    assert (unlabelled[beyond] <= rank[beyond]).all() and (unlabelled[beyond] < rank[beyond]).any()
