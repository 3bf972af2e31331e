"""Consistency conditions against the truth: exact BFS answers on generated graphs of every family and many
sizes pass every condition, and answers perturbed the way a condition exists to catch fail it. Plus the
structural half of the label-leakage proof: an unlabelled batch carries nothing derived from a label."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import PRESETS
from experiment.phases import finetune_sampler
from graphgen import GraphBatch, family_names, sample_batch
from models.consistency import CONDITIONS, passes, question
from models.objectives import VARIANTS, Unlabelled, unlabelled, variant

N_MIN, N_MAX, VOCAB, PER_FAMILY = 4, 14, 16, 48


@pytest.fixture(scope="module", params=family_names())
def truth(request):
    """One batch of a family (sizes 4..14) with the exact answers of a truthful reporter: d(s,v) and d(t,v) for
    every vertex id v (from the generator's BFS distances), and d(s,t)."""
    batch = sample_batch(
        jax.random.key(7), PER_FAMILY, families=(request.param,), n_min=N_MIN, n_max=N_MAX, vocab=VOCAB
    )
    batch = jax.tree.map(np.asarray, batch)
    rows = np.arange(PER_FAMILY)[:, None]
    from_s = np.zeros((PER_FAMILY, VOCAB + 1), int)
    from_t = np.zeros((PER_FAMILY, VOCAB + 1), int)
    active = batch.node_ids > 0
    from_s[np.broadcast_to(rows, active.shape)[active], batch.node_ids[active]] = batch.dist_s[active]
    from_t[np.broadcast_to(rows, active.shape)[active], batch.node_ids[active]] = batch.dist_t[active]
    q = question(*(jnp.asarray(x) for x in (batch.edges, batch.edge_mask, batch.s, batch.t, batch.path)), VOCAB)
    return request.param, batch, q, from_s[:, 1:], from_t[:, 1:]


def scope(name, q, from_s, from_t, d_hat):
    one_hot = lambda a: jax.nn.one_hot(jnp.asarray(a), VOCAB)  # noqa: E731
    return np.asarray(CONDITIONS[name](q, one_hot(from_s), one_hot(from_t), jnp.asarray(d_hat))[1])


def check(name, q, from_s, from_t, d_hat):
    return np.asarray(passes(name, q, jnp.asarray(from_s), jnp.asarray(from_t), jnp.asarray(d_hat)))


def test_the_batches_cover_many_sizes_and_distances(truth):
    _, batch, *_ = truth
    assert len(np.unique(batch.num_nodes)) >= 8 and batch.d_st.max() >= 3


@pytest.mark.parametrize("name", CONDITIONS)
def test_exact_bfs_answers_pass_every_condition_on_every_family(name, truth):
    family, batch, q, from_s, from_t = truth
    in_scope = scope(name, q, from_s, from_t, batch.d_st)
    assert in_scope.sum() >= PER_FAMILY * 2  # at least s and t of every example
    passed = check(name, q, from_s, from_t, batch.d_st)
    failing = np.argwhere(in_scope & ~passed)
    assert not len(failing), f"{name} rejects exact answers on {family}: (example, vertex id) {failing[:5] + [0, 1]}"


def _path_vertex(batch, rows, position):
    """Index (0-based, id - 1) of the vertex at `position` (B,) on each example's path."""
    return batch.path[rows, position] - 1


def perturbations(batch, from_s, from_t, rng):
    """(condition, from_s, from_t, d_hat, vertices (B, V) where the check must fail) for each condition: the
    error each one exists to catch, made on every example of the batch."""
    rows = np.arange(len(batch.s))
    d = batch.d_st
    s_idx, t_idx = batch.s - 1, batch.t - 1
    on_path = np.zeros(from_s.shape, bool)
    on_path[np.broadcast_to(rows[:, None], batch.path.shape)[batch.path > 0], batch.path[batch.path > 0] - 1] = True
    inner = _path_vertex(batch, rows, rng.integers(1, np.maximum(d, 2)))  # a path vertex strictly inside (d >= 2)
    any_on_path = _path_vertex(batch, rows, rng.integers(0, d + 1))
    present = np.zeros(from_s.shape, bool)
    present[
        np.broadcast_to(rows[:, None], batch.node_ids.shape)[batch.node_ids > 0], batch.node_ids[batch.node_ids > 0] - 1
    ] = True
    not_s = np.where(present, rng.random(from_s.shape), -1)
    not_s[rows, s_idx] = -1
    other = not_s.argmax(1)  # a random vertex of the graph other than s

    def at(index, values, where):
        out = values.copy()
        out[rows, where] = index
        return out

    def only(where):
        mask = np.zeros(from_s.shape, bool)
        mask[rows, where] = True
        return mask

    cases = []
    # endpoints: the report at t disagrees with the d(s,t) head; or d(s,s) is not 0. Fails the whole example.
    cases.append(("endpoints", at(d + 1, from_s, t_idx), from_t, d, on_path))
    cases.append(("endpoints", at(1, from_s, s_idx), from_t, d, on_path))
    # range: a path vertex answered beyond d(s,t).
    cases.append(("range", at(d + 1, from_s, any_on_path), from_t, d, only(any_on_path)))
    # additivity: d(u,t) one off at a path vertex.
    cases.append(("additivity", from_s, at(from_t[rows, any_on_path] + 1, from_t, any_on_path), d, only(any_on_path)))
    # path_permutation: an inner path vertex answered like its predecessor (a distance used twice, one unused).
    before = from_s[rows, inner] - 1
    cases.append(("path_permutation", at(before, from_s, inner), from_t, d, on_path))
    # edge_lipschitz: a vertex answered 2 more than the truth: the edge to its BFS parent breaks.
    cases.append(("edge_lipschitz", at(from_s[rows, other] + 2, from_s, other), from_t, d, only(other)))
    # bellman: a vertex answered 1 more than the truth is still within 1 of its parent, yet not 1 + min.
    cases.append(("bellman", at(from_s[rows, other] + 1, from_s, other), from_t, d, only(other)))
    return cases


def test_every_condition_rejects_the_error_it_exists_to_catch(truth):
    family, batch, q, from_s, from_t = truth
    cases = perturbations(batch, from_s, from_t, np.random.default_rng(0))
    assert {case[0] for case in cases} == set(CONDITIONS)
    for name, pert_s, pert_t, d_hat, must_fail in cases:
        passed = check(name, q, pert_s, pert_t, d_hat)
        missed = np.argwhere(must_fail & passed)
        assert not len(missed), f"{name} misses its error on {family} at (example, vertex index) {missed[:5]}"


def corrupt_labels(batch: GraphBatch) -> GraphBatch:
    """Every label of the batch changed, the question (graph, s, t, path as a set) kept."""
    reversed_path = jax.vmap(lambda p, n: jnp.where(jnp.arange(p.shape[0]) < n, jnp.roll(p[::-1], n), 0))(
        batch.path, batch.path_len
    )
    return batch._replace(
        d_st=batch.d_st + 3,
        path=reversed_path,
        path_len=batch.path_len * 0,
        dist_s=batch.dist_t,
        dist_t=batch.dist_s,
        num_nodes=batch.num_nodes * 0,
        family=batch.family + 1,
    )


def test_an_unlabelled_batch_carries_nothing_derived_from_labels(truth):
    """Structural, whatever a condition does with it: `Unlabelled` has only the question's fields, none of
    them changes when every label changes, and the path is an ascending set (its order, the labels, is gone)."""
    _, batch, *_ = truth
    assert Unlabelled._fields == ("edges", "edge_mask", "s", "t", "path_set")
    batch = jax.tree.map(jnp.asarray, batch)
    clean, corrupted = unlabelled(batch), unlabelled(corrupt_labels(batch))
    assert not np.array_equal(corrupt_labels(batch).path, batch.path)
    for field, a, b in zip(Unlabelled._fields, clean, corrupted, strict=True):
        assert np.array_equal(a, b), field
    path_set = np.asarray(clean.path_set)
    assert (np.diff(path_set, axis=1) >= 0).all()
    for row, path in zip(path_set, np.asarray(batch.path), strict=True):
        assert row[row > 0].tolist() == sorted(path[path > 0].tolist())
    # The question's other fields are the batch's own (nothing computed from distances slipped in).
    for field in ("edges", "edge_mask", "s", "t"):
        assert np.array_equal(getattr(clean, field), getattr(batch, field)), field


@pytest.mark.parametrize("name", VARIANTS)
def test_fine_tuning_unlabelled_batches_are_unlabelled(name):
    """What the training loop hands to a consistency loss is an `Unlabelled`, not a GraphBatch."""
    sample = finetune_sampler(PRESETS["tiny"], variant(f"{name}@all"))
    shapes = jax.eval_shape(lambda key: sample(key, 4), jax.random.key(0))
    assert type(shapes["unlabelled"]) is Unlabelled
