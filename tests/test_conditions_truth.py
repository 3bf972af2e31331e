"""Consistency conditions against the truth: exact BFS answers on generated graphs of every family and many
sizes pass every condition, and answers perturbed the way a condition exists to catch fail it. Plus the
structural half of the label-leakage proof: an unlabelled batch carries nothing derived from a label."""

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

from configs import PRESETS
from experiment.phases import finetune_sampler
from graphgen import GraphBatch, family_names, sample_batch
from graphgen.dataset import generate
from graphgen.twins import TWINS, read_back, twin_arrays, twin_batch
from models.consistency import CONDITIONS, checks, holds, passes, question
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
    question_arrays = (batch.edges, batch.edge_mask, batch.s, batch.t, batch.path)
    q = question(*(jnp.asarray(x) for x in question_arrays), VOCAB)
    twins = {name: twin_batch(name, jax.random.key(3), *question_arrays, VOCAB) for name in TWINS}
    return request.param, batch, q, from_s[:, 1:], from_t[:, 1:], twins


def nx_distances(edges, edge_mask, source) -> dict[int, int]:
    """d(source, v) for every vertex id v of an edge list, by networkx."""
    return nx.single_source_shortest_path_length(nx.Graph([tuple(e) for e in np.asarray(edges)[edge_mask]]), source)


def twin_truth(twins) -> dict:
    """The exact answers d(s,v) on each twin, by networkx, read back to the original ids."""
    out = {}
    for name, twin in twins.items():
        exact = np.zeros((len(twin.s), VOCAB), int)
        for i in range(len(twin.s)):
            for v, d in nx_distances(twin.edges[i], np.asarray(twin.edge_mask[i]), int(twin.s[i])).items():
                exact[i, v - 1] = d
        out[name] = np.take_along_axis(exact, np.asarray(twin.back) - 1, axis=1)
    return out


def scope(name, q, from_s, from_t, d_hat, twins):
    one_hot = lambda a: jax.nn.one_hot(jnp.asarray(a), VOCAB)  # noqa: E731
    encoded = {twin: one_hot(a) for twin, a in twins.items()}
    return np.asarray(holds(name, q, one_hot(from_s), one_hot(from_t), jnp.asarray(d_hat), encoded)[1])


def check(name, q, from_s, from_t, d_hat, twins):
    twins = {twin: jnp.asarray(a) for twin, a in twins.items()}
    return np.asarray(passes(name, q, jnp.asarray(from_s), jnp.asarray(from_t), jnp.asarray(d_hat), twins))


def test_the_twins_are_the_same_question(truth):
    """relabelled: every distance is kept under the new ids (networkx), the path is the same path renamed, the
    edges the same edges. plus_edge: at most one edge more, between two vertices of the graph that were not
    adjacent; the s-t path stays the unique shortest one; no distance grows, and some shrink."""
    _, batch, _, from_s, _, twins = truth
    relabelled, plus = (jax.tree.map(np.asarray, twins[name]) for name in ("relabelled", "plus_edge"))
    exact = twin_truth(twins)
    present = from_s > 0
    present[np.arange(len(batch.s)), batch.s - 1] = True
    assert np.array_equal(np.where(present, exact["relabelled"], 0), from_s)
    assert (np.where(present, exact["plus_edge"], 0) <= from_s).all()
    assert (np.where(present, exact["plus_edge"], 0) < from_s).any()
    assert 0.5 < plus.edge_mask[:, -1].mean() <= 1  # most graphs get their extra edge
    for i in range(len(batch.s)):
        old = {frozenset(e) for e in batch.edges[i][batch.edge_mask[i]].tolist()}
        renamed = {frozenset(relabelled.back[i][np.array(list(e)) - 1].tolist()) for e in old}
        assert renamed == {frozenset(e) for e in relabelled.edges[i][relabelled.edge_mask[i]].tolist()}
        path = batch.path[i][batch.path[i] > 0]
        assert relabelled.path[i][relabelled.path[i] > 0].tolist() == relabelled.back[i][path - 1].tolist()
        graph = nx.Graph([tuple(e) for e in plus.edges[i][plus.edge_mask[i]].tolist()])
        assert {frozenset(e) for e in graph.edges} - old <= {frozenset(plus.edges[i][-1].tolist())}
        assert len(graph.edges) == len(old) + plus.edge_mask[i, -1]
        assert [list(p) for p in nx.all_shortest_paths(graph, int(batch.s[i]), int(batch.t[i]))] == [path.tolist()]


def test_the_batches_cover_many_sizes_and_distances(truth):
    _, batch, *_ = truth
    assert len(np.unique(batch.num_nodes)) >= 8 and batch.d_st.max() >= 3


@pytest.mark.parametrize("name", CONDITIONS)
def test_exact_bfs_answers_pass_every_condition_on_every_family(name, truth):
    family, batch, q, from_s, from_t, twins = truth
    exact_twins = twin_truth(twins)
    in_scope = scope(name, q, from_s, from_t, batch.d_st, exact_twins)
    assert in_scope.sum() >= PER_FAMILY * 2  # at least s and t of every example
    passed = check(name, q, from_s, from_t, batch.d_st, exact_twins)
    failing = np.argwhere(in_scope & ~passed)
    assert not len(failing), f"{name} rejects exact answers on {family}: (example, vertex id) {failing[:5] + [0, 1]}"


def _path_vertex(batch, rows, position):
    """Index (0-based, id - 1) of the vertex at `position` (B,) on each example's path."""
    return batch.path[rows, position] - 1


def perturbations(batch, from_s, from_t, twins, rng):
    """(condition, from_s, from_t, d_hat, twins, vertices (B, V) where the check must fail) for each check: the
    error each one exists to catch, made on every example of the batch (`twins`: the exact answers on them)."""
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
    cases = [(name, pert_s, pert_t, d_hat, twins, fail) for name, pert_s, pert_t, d_hat, fail in cases]
    # relabel: a vertex answered otherwise once the ids change.
    changed = {**twins, "relabelled": at(from_s[rows, other] + 1, twins["relabelled"], other)}
    cases.append(("relabel", from_s, from_t, d, changed, only(other)))
    # monotone: a vertex answered more on the graph with one more edge than on the graph.
    longer = {**twins, "plus_edge": at(from_s[rows, other] + 1, twins["plus_edge"], other)}
    cases.append(("monotone", from_s, from_t, d, longer, only(other)))
    return cases


def test_every_condition_rejects_the_error_it_exists_to_catch(truth):
    family, batch, q, from_s, from_t, twins = truth
    cases = perturbations(batch, from_s, from_t, twin_truth(twins), np.random.default_rng(0))
    assert {case[0] for case in cases} == set(checks())
    for name, pert_s, pert_t, d_hat, pert_twins, must_fail in cases:
        passed = check(name, q, pert_s, pert_t, d_hat, pert_twins)
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
    assert Unlabelled._fields == ("edges", "edge_mask", "s", "t", "path_set", "twins")
    batch = jax.tree.map(jnp.asarray, batch)
    twins = tuple(TWINS)
    clean = unlabelled(batch, jax.random.key(5), twins, VOCAB)
    corrupted = unlabelled(corrupt_labels(batch), jax.random.key(5), twins, VOCAB)
    assert not np.array_equal(corrupt_labels(batch).path, batch.path)
    for field, a, b in zip(Unlabelled._fields, clean, corrupted, strict=True):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            assert np.array_equal(x, y), field
    for twin in clean.twins.values():  # each twin's path is a set too
        assert (np.diff(np.asarray(twin.path), axis=1) >= 0).all()
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


def test_twins_of_a_dataset_read_back_to_the_original_ids():
    """What the evaluation asks: the twins of a data-contract dataset, and answers about the twin's ids read
    back to the original ids with `read_back`: exact distances on the relabelled twin read back are the
    original ones; on the twin with one more edge, never larger. Deterministic in the seed."""
    vocab = 12
    arrays = generate(0, ["tree_plus", "grid_holes"], (5, 10), 24, vocab)

    def exact(edges, edge_mask, s):
        out = np.zeros((len(s), vocab), int)
        for i in range(len(s)):
            for v, d in nx_distances(edges[i], edge_mask[i], int(s[i])).items():
                out[i, v - 1] = d
        return out

    original = exact(arrays["edges"], arrays["edge_mask"], arrays["s"])
    for name in TWINS:
        twin = twin_arrays(arrays, name, vocab, seed=3)
        assert all(np.array_equal(twin[k], v) for k, v in twin_arrays(arrays, name, vocab, seed=3).items())
        back = read_back(twin, exact(twin["edges"], twin["edge_mask"], twin["s"]))
        present = original > 0
        present[np.arange(len(arrays["s"])), arrays["s"] - 1] = True
        if name == "relabelled":
            assert np.array_equal(np.where(present, back, 0), original)
            assert not np.array_equal(twin["edges"], arrays["edges"])
        else:
            assert (np.where(present, back, 0) <= original).all() and (back < original).any()
