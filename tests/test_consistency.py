"""Consistency conditions: hand-made cases where each check must pass and must fail, the losses' zeros, and
the proof that no label reaches a consistency loss."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import HAND_FROM_S, HAND_FROM_T, HAND_GRAPH, HAND_VOCAB
from flax import nnx

from graphgen import sample_batch
from models.consistency import CONDITIONS, Question, loss, passes, question
from models.model import ModelConfig, PathModel
from models.objectives import Unlabelled, consistency_loss, unlabelled, variant

VOCAB, FROM_S, FROM_T = HAND_VOCAB, HAND_FROM_S, HAND_FROM_T
Q = question(*(jnp.asarray(HAND_GRAPH[k]) for k in ("edges", "edge_mask", "s", "t", "path")), VOCAB)
D_HAT = jnp.array([3])


def check(name, from_s, from_t):
    return np.asarray(passes(name, Q, jnp.array([from_s]), jnp.array([from_t]), D_HAT))[0]


def answers_with(values, **changes):
    out = list(values)
    for vertex, value in changes.items():
        out[int(vertex[1:]) - 1] = value
    return out


# (condition, answers from s, answers from t, ids of the vertices where the check must fail)
CASES = [
    ("endpoints", answers_with(FROM_S, v1=1), FROM_T, [1, 2, 3, 4]),  # d(s,s) != 0
    ("endpoints", answers_with(FROM_S, v4=2), FROM_T, [1, 2, 3, 4]),  # report at t != d(s,t) head
    ("range", answers_with(FROM_S, v3=4), FROM_T, [3]),
    ("additivity", FROM_S, answers_with(FROM_T, v2=1), [2]),
    ("path_permutation", answers_with(FROM_S, v3=1), FROM_T, [1, 2, 3, 4]),
    ("edge_lipschitz", answers_with(FROM_S, v5=4), FROM_T, [2, 5]),
    ("bellman", answers_with(FROM_S, v5=3), FROM_T, [5]),
    ("bellman", answers_with(FROM_S, v3=3), FROM_T, [3, 4]),
]


def test_every_condition_has_a_case():
    assert {case[0] for case in CASES} == set(CONDITIONS)


@pytest.mark.parametrize("name", CONDITIONS)
def test_truthful_answers_pass(name):
    _, scope = CONDITIONS[name](
        Q, jax.nn.one_hot(jnp.array([FROM_S]), 8), jax.nn.one_hot(jnp.array([FROM_T]), 8), D_HAT
    )
    assert check(name, FROM_S, FROM_T)[np.asarray(scope[0])].all()


@pytest.mark.parametrize(("name", "from_s", "from_t", "failing"), CASES)
def test_each_check_fails_where_it_must(name, from_s, from_t, failing):
    _, scope = CONDITIONS[name](
        Q, jax.nn.one_hot(jnp.array([from_s]), 8), jax.nn.one_hot(jnp.array([from_t]), 8), D_HAT
    )
    in_scope = np.flatnonzero(np.asarray(scope[0])) + 1
    failed = [int(v) for v in in_scope if not check(name, from_s, from_t)[v - 1]]
    assert failed == failing


def test_a_loss_is_the_mean_over_its_scope_of_minus_log_the_probability_it_holds():
    """range on the hand graph: vertex 3 answers 2 or 4 with probability 1/2 each (4 > d̂ = 3), the other path
    vertices the truth. P(range holds) = 1/2 at vertex 3 and 1 elsewhere, over a scope of 4 path vertices."""
    from_s = jax.nn.one_hot(jnp.array([FROM_S]), 8).at[0, 2].set(jnp.zeros(8).at[2].set(0.5).at[4].set(0.5))
    got = float(loss("range", Q, from_s, jax.nn.one_hot(jnp.array([FROM_T]), 8), D_HAT))
    assert got == pytest.approx(np.log(2) / 4, rel=1e-6)


def test_swapping_two_path_answers_is_coherent_to_weak_checks_only():
    """d(s,2) and d(s,3) exchanged (and d(t,.) to match): wrong, yet endpoints, range, additivity and
    path_permutation all pass; only checks that look off the path (or at neighbours) catch it."""
    from_s, from_t = answers_with(FROM_S, v2=2, v3=1), answers_with(FROM_T, v2=1, v3=2)
    for name in ("endpoints", "range", "additivity", "path_permutation"):
        assert check(name, from_s, from_t)[:4].all(), name
    assert not check("bellman", from_s, from_t)[:4].all()


@pytest.mark.parametrize(("name", "from_s", "from_t", "failing"), CASES)
def test_each_loss_is_zero_on_the_truth_and_positive_when_perturbed(name, from_s, from_t, failing):
    def value(s_answers, t_answers):
        one_hot = lambda a: jax.nn.one_hot(jnp.array([a]), 8)  # noqa: E731
        return float(loss(name, Q, one_hot(s_answers), one_hot(t_answers), D_HAT))

    assert value(FROM_S, FROM_T) == pytest.approx(0, abs=1e-6)
    assert value(from_s, from_t) > 0.1
    # Soft answers: a reporter 90% sure of the truth pays little, one 90% sure of the perturbation more.
    soft = lambda a: 0.9 * jax.nn.one_hot(jnp.array([a]), 8) + 0.1 / 8  # noqa: E731
    truth = float(loss(name, Q, soft(FROM_S), soft(FROM_T), D_HAT))
    assert truth < float(loss(name, Q, soft(from_s), soft(from_t), D_HAT))


def test_no_label_reaches_a_consistency_loss():
    """The loss sees `Unlabelled` only: no distance, no path order. Corrupting every label of a batch
    (d(s,t), path order and length, per-vertex distances) leaves the loss bit-for-bit unchanged."""
    assert set(Unlabelled._fields) == {"edges", "edge_mask", "s", "t", "path_set"}
    assert set(Question._fields) == {"adj", "on_path", "s", "t"}
    batch = sample_batch(jax.random.key(0), 8, families=("tree_plus",), n_min=5, n_max=8, vocab=10)
    reversed_path = jax.vmap(lambda p, n: jnp.where(jnp.arange(p.shape[0]) < n, jnp.roll(p[::-1], n), 0))(
        batch.path, batch.path_len
    )
    corrupted = batch._replace(
        d_st=batch.d_st + 3,
        path=reversed_path,
        path_len=batch.path_len * 0,
        dist_s=batch.dist_t,
        dist_t=batch.dist_s,
    )
    assert not np.array_equal(corrupted.path, batch.path)  # the corruption is real
    model = PathModel(ModelConfig(width=16, heads=2), 10, nnx.Rngs(0))
    reporter = variant("frozen@all")
    clean = consistency_loss(model, reporter, unlabelled(batch), reporter.weights(), 8, 10)[0]
    assert float(consistency_loss(model, reporter, unlabelled(corrupted), reporter.weights(), 8, 10)[0]) == float(clean)
    # Control: the loss does depend on the question (another path set changes it), so equality can fail.
    other = unlabelled(batch)._replace(path_set=jnp.roll(unlabelled(batch).path_set, 1, axis=0))
    assert float(consistency_loss(model, reporter, other, reporter.weights(), 8, 10)[0]) != float(clean)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("frozen@nope", "unknown consistency condition 'nope'"),
        ("nope@range", "unknown variant 'nope'"),
        ("frozen@range=x", "is not a number"),
        ("frozen@range=-1", "must be positive"),
        ("frozen@range=0", "must be positive"),
        ("nope", r"\(known: frozen, trainable, trainable\+dst, oracle, probe, mlp-probe, consistency-only;"),
        ("frozen:nope", r"\(report heads: fresh, warm, shared; the probes take none\)"),
        ("frozen@nope", r"\(known: endpoints, range, additivity, path_permutation, edge_lipschitz, bellman, all\)"),
        ("frozen@", "no consistency condition"),
    ],
)
def test_variant_specs_are_validated(spec, message):
    with pytest.raises(ValueError, match=message):
        variant(spec)


def test_variant_specs():
    assert variant("frozen@range+bellman=0.5").consistency == (("range", 1.0), ("bellman", 0.5))
    # One weight per registered condition, in CONDITIONS order; 0 for every condition the spec leaves out.
    weights = variant("frozen@range+bellman=0.5").weights()
    assert weights.dtype == jnp.float32
    assert weights.tolist() == [{"range": 1.0, "bellman": 0.5}.get(name, 0.0) for name in CONDITIONS]
    assert variant("frozen").weights().tolist() == [0.0] * len(CONDITIONS)
    assert [name for name, _ in variant("consistency-only").consistency] == list(CONDITIONS)
    assert not variant("consistency-only").labels
    assert dataclasses.replace(variant("oracle@range"), consistency=()) == variant("oracle")


# Path s=1 - 2 - 3=t and vertex 4 beyond t: d(s,4) = 3 is the largest answer of the question, above d(s,t) = 2
# and every d(t,.). `passes` one-hot encodes answers up to the largest answer or d̂; all of them count.
BEYOND_T = question(
    jnp.array([[[1, 2], [2, 3], [3, 4]]]), jnp.ones((1, 3), bool), jnp.array([1]), jnp.array([3]),
    jnp.array([[1, 2, 3]]), 4,
)  # fmt: skip


def test_the_question_marks_the_path_as_a_set_of_booleans():
    assert BEYOND_T.on_path.dtype == jnp.bool_ and BEYOND_T.on_path.tolist() == [[True, True, True, False]]


@pytest.mark.parametrize("name", CONDITIONS)
def test_the_largest_answer_is_an_answer_like_any_other(name):
    """Truthful answers, the largest of them off the path beyond t, pass every check in its scope."""
    from_s, from_t, d_hat = jnp.array([[0, 1, 2, 3]]), jnp.array([[2, 1, 0, 1]]), jnp.array([2])
    _, scope = CONDITIONS[name](BEYOND_T, jax.nn.one_hot(from_s, 4), jax.nn.one_hot(from_t, 4), d_hat)
    assert np.asarray(passes(name, BEYOND_T, from_s, from_t, d_hat))[np.asarray(scope)].all()
    assert np.asarray(scope).any()


def test_a_d_hat_above_every_answer_still_counts():
    """Every answer at most 1 while the d(s,t) head says 2: the report at t disagrees with the head (endpoints)
    and d(s,s) + d(t,s) = 0 + 1 falls short of it (additivity at s), however few classes the answers need."""
    from_s, from_t = jnp.array([[0, 1, 1, 1]]), jnp.array([[1, 1, 0, 1]])
    for d_hat, holds in ((2, False), (1, True)):  # d̂ = 1: the same answers are coherent (the control)
        assert np.asarray(passes("endpoints", BEYOND_T, from_s, from_t, jnp.array([d_hat]))).all() == holds
        assert bool(np.asarray(passes("additivity", BEYOND_T, from_s, from_t, jnp.array([d_hat])))[0, 0]) == holds
