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
from graphgen.overseers import OVERSEERS
from models.consistency import CONDITIONS, SELF_TRAINING, Question, checks, holds, loss, passes, question
from models.model import ModelConfig, PathModel
from models.objectives import Unlabelled, consistency_loss, overseer_st, unlabelled, variant

VOCAB, FROM_S, FROM_T = HAND_VOCAB, HAND_FROM_S, HAND_FROM_T
Q = question(*(jnp.asarray(HAND_GRAPH[k]) for k in ("edges", "edge_mask", "s", "t", "path")), VOCAB)
D_HAT = jnp.array([3])
# The answers d(s,v) on each twin (graphgen/twins.py), read back to the original ids: the truth on both (the
# twin with one more edge may shorten distances; here it added none, or one that shortens nothing).
TWINS = {"relabelled": FROM_S, "plus_edge": FROM_S}


def one_hot(answers, classes: int = 8):
    return jax.nn.one_hot(jnp.array([answers]), classes)


def check(name, from_s, from_t, twins=TWINS):
    twins = {twin: jnp.array([a]) for twin, a in twins.items()}
    return np.asarray(passes(name, Q, jnp.array([from_s]), jnp.array([from_t]), D_HAT, twins))[0]


def scope_of(name, from_s, from_t, twins=TWINS):
    twins = {twin: one_hot(a) for twin, a in twins.items()}
    return np.asarray(holds(name, Q, one_hot(from_s), one_hot(from_t), D_HAT, twins)[1][0])


def answers_with(values, **changes):
    out = list(values)
    for vertex, value in changes.items():
        out[int(vertex[1:]) - 1] = value
    return out


# (condition, answers from s, answers from t, answers on the twins, ids of the vertices where the check must fail)
CASES = [
    ("endpoints", answers_with(FROM_S, v1=1), FROM_T, TWINS, [1, 2, 3, 4]),  # d(s,s) != 0
    ("endpoints", answers_with(FROM_S, v4=2), FROM_T, TWINS, [1, 2, 3, 4]),  # report at t != d(s,t) head
    ("range", answers_with(FROM_S, v3=4), FROM_T, TWINS, [3]),
    ("additivity", FROM_S, answers_with(FROM_T, v2=1), TWINS, [2]),
    ("path_permutation", answers_with(FROM_S, v3=1), FROM_T, TWINS, [1, 2, 3, 4]),
    ("edge_lipschitz", answers_with(FROM_S, v5=4), FROM_T, TWINS, [2, 5]),
    ("bellman", answers_with(FROM_S, v5=3), FROM_T, TWINS, [5]),
    ("bellman", answers_with(FROM_S, v3=3), FROM_T, TWINS, [3, 4]),
    ("relabel", FROM_S, FROM_T, {**TWINS, "relabelled": answers_with(FROM_S, v5=3)}, [5]),  # ids changed it
    ("relabel", answers_with(FROM_S, v2=2), FROM_T, TWINS, [2]),
    ("monotone", FROM_S, FROM_T, {**TWINS, "plus_edge": answers_with(FROM_S, v4=4)}, [4]),  # an edge lengthened it
    ("monotone", FROM_S, FROM_T, {**TWINS, "plus_edge": answers_with(FROM_S, v4=1, v5=1)}, []),  # shorter: fine
]


def test_every_check_has_a_case_and_the_self_training_objectives_are_no_checks():
    assert {case[0] for case in CASES} == set(checks())
    assert {"confidence", "entropy"} == SELF_TRAINING and set(checks()) == set(CONDITIONS) - SELF_TRAINING


@pytest.mark.parametrize("name", CONDITIONS)
def test_truthful_answers_pass(name):
    assert check(name, FROM_S, FROM_T)[scope_of(name, FROM_S, FROM_T)].all()


@pytest.mark.parametrize(("name", "from_s", "from_t", "twins", "failing"), CASES)
def test_each_check_fails_where_it_must(name, from_s, from_t, twins, failing):
    in_scope = np.flatnonzero(scope_of(name, from_s, from_t, twins)) + 1
    failed = [int(v) for v in in_scope if not check(name, from_s, from_t, twins)[v - 1]]
    assert failed == failing


def test_a_loss_is_the_mean_over_its_scope_of_minus_log_the_probability_it_holds():
    """range on the hand graph: vertex 3 answers 2 or 4 with probability 1/2 each (4 > d̂ = 3), the other path
    vertices the truth. P(range holds) = 1/2 at vertex 3 and 1 elsewhere, over a scope of 4 path vertices."""
    from_s = jax.nn.one_hot(jnp.array([FROM_S]), 8).at[0, 2].set(jnp.zeros(8).at[2].set(0.5).at[4].set(0.5))
    got = float(loss("range", Q, from_s, jax.nn.one_hot(jnp.array([FROM_T]), 8), D_HAT))
    assert got == pytest.approx(np.log(2) / 4, rel=1e-6)


# Wrong answers of every shape, and the verdict of every check on each, worked out by hand on the hand graph
# (path 1 - 2 - 3 - 4, vertex 5 off it at 2, d̂ = 3). The twins (relabel, monotone) answer the truth: a reporter
# truthful on the other presentations and wrong on this one. Each verdict lists the vertices where the check
# fails, among those it looks at (PATH_SCOPE or GRAPH_SCOPE): a vertex outside its scope is none of its business,
# e.g. range never judges the off-path vertex 5, however wrong.
PATH_SCOPE, GRAPH_SCOPE = [1, 2, 3, 4], [1, 2, 3, 4, 5]  # id 6 is absent: no check looks at it
SCOPE = {
    "endpoints": PATH_SCOPE,  # per question: fails at every path vertex or at none
    "range": PATH_SCOPE,
    "additivity": PATH_SCOPE,
    "path_permutation": PATH_SCOPE,  # per question, like endpoints
    "edge_lipschitz": GRAPH_SCOPE,
    "bellman": GRAPH_SCOPE,
    "relabel": GRAPH_SCOPE,
    "monotone": GRAPH_SCOPE,
}
# shape -> (answers from s, answers from t)
SHAPES = {
    # d(s,3) = 4 > d̂ = 3, d(t,3) the truth: 4 + 1 != 3
    "beyond d̂": (answers_with(FROM_S, v3=4), FROM_T),
    # ... and d(t,3) = 0 as if 3 were t: d(s,3) + d(3,t) = 4 is not 3, whatever d(t,.) is asked at rest = -1
    "beyond d̂, d(u,t) = 0": (answers_with(FROM_S, v3=4), answers_with(FROM_T, v3=0)),
    # d(s,s) = 2 = 1 + d(s,2): the Bellman step from its neighbour holds, only d(s,s) = 0 catches it
    "at s": (answers_with(FROM_S, v1=2), FROM_T),
    # the report at t says 2, the d(s,t) head 3
    "at t": (answers_with(FROM_S, v4=2), FROM_T),
    "off the path": (answers_with(FROM_S, v5=4), FROM_T),
    # every d(s,.) one too many: every difference along an edge is the truth's
    "shifted by one": ([a + 1 for a in FROM_S[:5]] + [0], FROM_T),
    # d(s,2) and d(s,3) exchanged, and d(t,.) to match: a coherent lie on the path
    "swapped on the path": (answers_with(FROM_S, v2=2, v3=1), answers_with(FROM_T, v2=1, v3=2)),
}
VERDICTS = {
    "beyond d̂": {
        "endpoints": [], "range": [3], "additivity": [3], "path_permutation": PATH_SCOPE,
        "edge_lipschitz": [2, 3],  # |1 - 4| on edge 2-3
        "bellman": [3, 4],  # 4 != 1 + min(1, 3); at 4: 3 != 1 + 4
        "relabel": [3], "monotone": [],  # the twin's 2 is at most 4
    },
    "beyond d̂, d(u,t) = 0": {
        "endpoints": [], "range": [3], "additivity": [3], "path_permutation": PATH_SCOPE,
        "edge_lipschitz": [2, 3], "bellman": [3, 4], "relabel": [3], "monotone": [],
    },
    "at s": {
        "endpoints": PATH_SCOPE, "range": [], "additivity": [1],  # 2 + 3 != 3
        "path_permutation": PATH_SCOPE,  # {2, 1, 2, 3}
        "edge_lipschitz": [],  # |2 - 1| on edge 1-2
        "bellman": [1, 2],  # at s: 2 != 0; at 2: 1 != 1 + min(2, 2, 2)
        "relabel": [1], "monotone": [],
    },
    "at t": {
        "endpoints": PATH_SCOPE, "range": [], "additivity": [4], "path_permutation": PATH_SCOPE,  # {0, 1, 2, 2}
        "edge_lipschitz": [], "bellman": [4],  # 2 != 1 + 2
        "relabel": [4], "monotone": [4],  # the twin's 3 is more than 2
    },
    "off the path": {  # the path checks do not look at 5
        "endpoints": [], "range": [], "additivity": [], "path_permutation": [],
        "edge_lipschitz": [2, 5], "bellman": [5], "relabel": [5], "monotone": [],
    },
    "shifted by one": {
        "endpoints": PATH_SCOPE, "range": [4], "additivity": PATH_SCOPE, "path_permutation": PATH_SCOPE,
        "edge_lipschitz": [],
        "bellman": [1],  # every step from a neighbour holds: only d(s,s) = 0 fails
        "relabel": GRAPH_SCOPE, "monotone": [],
    },
    "swapped on the path": {  # weak checks pass; those that look at neighbours catch it
        "endpoints": [], "range": [], "additivity": [], "path_permutation": [],
        "edge_lipschitz": PATH_SCOPE,  # |0 - 2| on edge 1-2, |1 - 3| on edge 3-4
        "bellman": [2, 3, 4, 5],  # 2 != 1 + 0, 1 != 1 + 2, 3 != 1 + 1, 2 != 1 + 2
        "relabel": [2, 3], "monotone": [3],  # the twin's 2 is more than 1
    },
}  # fmt: skip


def test_every_shape_has_a_verdict_of_every_check():
    assert set(VERDICTS) == set(SHAPES) and set(SCOPE) == set(checks())
    assert all(set(verdict) == set(checks()) for verdict in VERDICTS.values())


@pytest.mark.parametrize("name", SCOPE)
def test_each_check_looks_at_the_vertices_it_is_about(name):
    assert (np.flatnonzero(scope_of(name, FROM_S, FROM_T)) + 1).tolist() == SCOPE[name]


@pytest.mark.parametrize(("shape", "name"), [(shape, name) for shape in SHAPES for name in SCOPE])
def test_each_check_on_wrong_answers_of_every_shape(shape, name):
    """The verdict at every vertex the check looks at, against the hand-computed table."""
    from_s, from_t = SHAPES[shape]
    verdict = check(name, from_s, from_t)
    assert [v for v in SCOPE[name] if not verdict[v - 1]] == VERDICTS[shape][name]


@pytest.mark.parametrize(("name", "from_s", "from_t", "twins", "failing"), CASES)
def test_each_loss_is_zero_on_the_truth_and_positive_when_perturbed(name, from_s, from_t, twins, failing):
    def value(s_answers, t_answers, twins_answers, encode=one_hot):
        twins_answers = {twin: encode(a) for twin, a in twins_answers.items()}
        return float(loss(name, Q, encode(s_answers), encode(t_answers), D_HAT, twins_answers))

    assert value(FROM_S, FROM_T, TWINS) == pytest.approx(0, abs=1e-6)
    assert (value(from_s, from_t, twins) > 0.1) == bool(failing)
    # Soft answers: a reporter 90% sure of the truth pays little, one 90% sure of the perturbation more.
    soft = lambda a: 0.9 * jax.nn.one_hot(jnp.array([a]), 8) + 0.1 / 8  # noqa: E731
    assert (value(FROM_S, FROM_T, TWINS, soft) < value(from_s, from_t, twins, soft)) == bool(failing)


def test_no_label_reaches_a_consistency_loss():
    """The loss sees `Unlabelled` only: no distance, no path order, no overseer answer. Corrupting every label of
    a batch (d(s,t), path order and length, per-vertex distances, and so every overseer's answers) leaves the
    loss of a model that learned an overseer bit-for-bit unchanged."""
    assert set(Unlabelled._fields) == {"edges", "edge_mask", "s", "t", "path_set", "twins"}
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
    for name in OVERSEERS:  # it changes what every overseer says
        assert not np.array_equal(overseer_st(corrupted, name, 5, 10), overseer_st(batch, name, 5, 10)), name
    model = PathModel(ModelConfig(width=16, heads=2), 10, nnx.Rngs(0), overseer=True)
    reporter = variant("frozen@all+confidence+entropy")  # every condition, the twins of relabel and monotone too
    assert reporter.twins() == ("plus_edge", "relabelled")

    # Jitted: one program each instead of hundreds of op-by-op ones (the suite's time is compiling).
    @jax.jit
    def without_labels(graphs, seed=1):
        return unlabelled(graphs, jax.random.key(seed), reporter.twins(), 10)

    loss_of = nnx.jit(lambda model, x: consistency_loss(model, reporter, x, reporter.weights(), 8, 10)[0])

    def value(x):
        return float(loss_of(model, x))

    plain = without_labels(batch)
    clean = value(plain)
    assert value(without_labels(corrupted)) == clean
    # Controls: the loss does depend on the question (another path set changes it) and on each twin (another
    # draw of it changes it), so equality can fail.
    assert value(plain._replace(path_set=jnp.roll(plain.path_set, 1, axis=0))) != clean
    redrawn = without_labels(batch, 2).twins
    for twin in reporter.twins():
        assert value(plain._replace(twins={**plain.twins, twin: redrawn[twin]})) != clean


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("frozen@nope", "unknown consistency condition 'nope'"),
        ("nope@range", "unknown variant 'nope'"),
        ("frozen@range=x", "is not a number"),
        ("frozen@range=-1", "must be positive"),
        ("frozen@range=0", "must be positive"),
        ("nope", r"\(known: frozen, trainable, trainable\+dst, oracle, trainable-oracle, probe, mlp-probe, "),
        ("frozen:nope", r"\(report heads: fresh, warm, warm-overseer, shared; the probes take none\)"),
        ("frozen@nope", r"\(known: endpoints, range, additivity, path_permutation, edge_lipschitz, bellman, relabel, "),
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
    assert [name for name, _ in variant("consistency-only").consistency] == checks()  # `all`: every check
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
    twins = {"relabelled": from_s, "plus_edge": from_s}
    encoded = {twin: jax.nn.one_hot(a, 4) for twin, a in twins.items()}
    _, scope = holds(name, BEYOND_T, jax.nn.one_hot(from_s, 4), jax.nn.one_hot(from_t, 4), d_hat, encoded)
    assert np.asarray(passes(name, BEYOND_T, from_s, from_t, d_hat, twins))[np.asarray(scope)].all()
    assert np.asarray(scope).any()


def test_a_d_hat_above_every_answer_still_counts():
    """Every answer at most 1 while the d(s,t) head says 2: the report at t disagrees with the head (endpoints)
    and d(s,s) + d(t,s) = 0 + 1 falls short of it (additivity at s), however few classes the answers need."""
    from_s, from_t = jnp.array([[0, 1, 1, 1]]), jnp.array([[1, 1, 0, 1]])
    for d_hat, coherent in ((2, False), (1, True)):  # d̂ = 1: the same answers are coherent (the control)
        assert np.asarray(passes("endpoints", BEYOND_T, from_s, from_t, jnp.array([d_hat]))).all() == coherent
        assert bool(np.asarray(passes("additivity", BEYOND_T, from_s, from_t, jnp.array([d_hat])))[0, 0]) == coherent


def test_the_self_training_losses_by_hand():
    """Vertex 3 of the hand graph split 1/2 - 1/2 between 2 and 4, every other present vertex (1, 2, 4, 5)
    sure: confidence = -log of the largest probability and entropy = the entropy, each averaged over the 5
    present vertices, so both log(2) / 5; a sure reporter pays nothing. No check: any answers pass them."""
    split = one_hot(FROM_S).at[0, 2].set(jnp.zeros(8).at[2].set(0.5).at[4].set(0.5))
    for name in ("confidence", "entropy"):
        assert float(loss(name, Q, split, one_hot(FROM_T), D_HAT)) == pytest.approx(np.log(2) / 5, rel=1e-5)
        assert float(loss(name, Q, one_hot(FROM_S), one_hot(FROM_T), D_HAT)) == pytest.approx(0, abs=1e-6)
        assert check(name, answers_with(FROM_S, v3=5), FROM_T).all()


@pytest.mark.parametrize("name", ["confidence", "entropy"])
def test_self_training_pulls_towards_the_answer_the_reporter_already_prefers(name):
    """The gradient raises the logit of the reporter's own argmax at vertex 3 (0.6 at 2, not the truth) and
    lowers the runner-up's (0.4 at 4)."""
    split = jnp.log(jnp.zeros(8).at[2].set(0.6).at[4].set(0.4) + 1e-9)
    logits = jnp.log(one_hot(FROM_S) * 0.98 + 0.0025).at[0, 2].set(split)
    grad = jax.grad(lambda x: loss(name, Q, jax.nn.softmax(x), one_hot(FROM_T), D_HAT))(logits)
    assert float(grad[0, 2, 2]) < 0 < float(grad[0, 2, 4])


def test_relabel_asks_for_the_same_answer_not_a_sure_one():
    """Equal answers, however unsure (vertex 3 split 1/2 - 1/2 on both presentations), cost nothing; a
    different split costs the Jensen-Shannon divergence (x 2) at that vertex, averaged over the 5 present."""
    split = one_hot(FROM_S).at[0, 2].set(jnp.zeros(8).at[2].set(0.5).at[4].set(0.5))
    other = one_hot(FROM_S).at[0, 2].set(jnp.zeros(8).at[2].set(1.0))
    assert float(loss("relabel", Q, split, one_hot(FROM_T), D_HAT, {"relabelled": split})) == pytest.approx(0, abs=1e-6)
    # JS((1/2, 1/2), (1, 0)) = 1/2 KL((1/2,1/2) || (3/4,1/4)) + 1/2 KL((1,0) || (3/4,1/4))
    js = 0.5 * (0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)) + 0.5 * np.log(1 / 0.75)
    got = float(loss("relabel", Q, split, one_hot(FROM_T), D_HAT, {"relabelled": other}))
    assert got == pytest.approx(2 * js / 5, rel=1e-4)


def test_a_reporter_that_ignores_ids_pays_no_relabel_loss():
    """Hand-built: the graph encoder with every id embedding zero sees only the graph and the s, t marks, so
    its answers move with the vertices when the ids are permuted (and do not care about edge order): the
    relabel loss is 0 up to rounding. The same model with its random id embeddings pays."""
    model = PathModel(ModelConfig(width=16, heads=2), 10, nnx.Rngs(0))
    # The warm head's projection of u starts at zero (every u answered alike): make the answers depend on u.
    model.u_query.kernel[...] = jax.random.normal(jax.random.key(2), model.u_query.kernel.shape)
    batch = sample_batch(jax.random.key(0), 8, families=("tree_plus",), n_min=5, n_max=8, vocab=10)
    reporter = variant("frozen@relabel")
    free = unlabelled(batch, jax.random.key(1), reporter.twins(), 10)
    index = list(CONDITIONS).index("relabel")

    def relabel_term():
        return float(consistency_loss(model, reporter, free, reporter.weights(), 8, 10)[1][index])

    assert relabel_term() > 1e-3
    model.encoder.ids.embedding[...] = jnp.zeros_like(model.encoder.ids.embedding[...])
    assert relabel_term() == pytest.approx(0, abs=1e-5)
