import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from graph_checks import check_example, rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphgen import family_names, sample_batch, sample_examples
from graphgen.bfs import bfs, component_roots

N_PAD, BATCH, VOCAB = 64, 512, 80  # one compiled program per family serves every test below


def examples(family: str, seed: int, lo: int = 2, hi: int = N_PAD) -> dict:
    sizes = lo + np.arange(BATCH) % (hi - lo + 1)
    keys = jax.random.split(jax.random.key(seed), BATCH)
    batch = sample_examples(keys, jnp.asarray(sizes), family=family, n_pad=N_PAD, vocab=VOCAB)
    return {k: np.asarray(v) for k, v in batch._asdict().items()}


@pytest.fixture(scope="module", params=family_names())
def family_batch(request):
    return request.param, examples(request.param, seed=0)


def test_labels_match_networkx_on_every_size(family_batch):
    """512 examples per family, sizes 2..64 each about 8 times: every label checked against networkx."""
    _, batch = family_batch
    assert set(batch["num_nodes"]) == set(range(2, N_PAD + 1))
    for ex in rows(batch):
        check_example(ex, VOCAB)


def test_distances_are_stratified(family_batch):
    """No distance dominates and long distances are common (a uniform random pair gives neither)."""
    name, batch = family_batch
    large = batch["num_nodes"] >= 32
    d = batch["d_st"][large]
    counts = np.bincount(d)
    assert counts.max() / len(d) <= 0.25, (name, counts)
    assert (d >= np.percentile(d, 95) / 2).mean() >= 0.3, (name, counts)


def test_distances_grow_with_size(family_batch):
    name, batch = family_batch
    small = batch["d_st"][batch["num_nodes"] <= 16].mean()
    large = batch["d_st"][batch["num_nodes"] >= 48].mean()
    assert large > 1.3 * small, (name, small, large)


def test_ids_are_a_random_injection(family_batch):
    """Ids cover 1..vocab across examples (not 1..n): size and id range are not confounded."""
    _, batch = family_batch
    small = batch["node_ids"][batch["num_nodes"] <= 16]
    assert set(small[small > 0]) == set(range(1, VOCAB + 1))
    assert (batch["node_ids"] >= 0).all() and (batch["node_ids"] <= VOCAB).all()


def test_same_keys_same_examples_other_keys_differ():
    a, b, c = examples("tree_plus", 3), examples("tree_plus", 3), examples("tree_plus", 4)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["edges"], c["edges"])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(family_names()), seed=st.integers(0, 2**31 - 1), lo=st.integers(2, N_PAD))
def test_property_any_seed_and_size_range(family, seed, lo):
    batch = examples(family, seed, lo=lo, hi=min(N_PAD, lo + 3))
    for ex in list(rows(batch))[:64]:
        check_example(ex, VOCAB)


E_PAD = 12 * 11 // 2
_bfs = jax.jit(lambda e, m, src: bfs(e, m, 12, src))
_roots = jax.jit(lambda e, m: component_roots(e, m, 12))


@st.composite
def any_graph(draw):
    """Any simple graph on up to 12 vertices, connected or not, as a padded edge list."""
    n = draw(st.integers(1, 12))
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True) if pairs else st.just([]))
    edges = np.tile(np.int32([0, n - 1]), (E_PAD, 1))  # padding that would be an edge if the mask were ignored
    if chosen:
        edges[: len(chosen)] = draw(st.permutations(chosen))
    mask = np.arange(E_PAD) < len(chosen)
    graph = nx.Graph(chosen)
    graph.add_nodes_from(range(n))
    return graph, edges, mask, draw(st.integers(0, n - 1))


@settings(max_examples=300, deadline=None)
@given(any_graph())
def test_bfs_matches_networkx_on_any_graph(case):
    graph, edges, mask, source = case
    dist, unique = map(np.asarray, _bfs(edges, mask, source))
    lengths = nx.single_source_shortest_path_length(graph, source)
    for v in range(12):
        assert dist[v] == lengths.get(v, -1)
        if v in lengths:
            assert unique[v] == (len(list(nx.all_shortest_paths(graph, source, v))) == 1)
        else:
            assert not unique[v]


@settings(max_examples=200, deadline=None)
@given(any_graph())
def test_component_roots_match_networkx(case):
    graph, edges, mask, _ = case
    roots = np.asarray(_roots(edges, mask))
    for component in nx.connected_components(graph):
        assert {int(roots[v]) for v in component} == {min(component)}


def test_training_batch_mixes_families_and_sizes():
    batch = jax.jit(lambda k: sample_batch(k, 40, families=("tree_plus", "geometric"), n_min=4, n_max=12, vocab=16))(
        jax.random.key(0)
    )
    batch = {k: np.asarray(v) for k, v in batch._asdict().items()}
    assert batch["edges"].shape[0] == 40 and batch["node_ids"].shape == (40, 12)
    assert set(batch["family"]) == {family_names().index("tree_plus"), family_names().index("geometric")}
    assert batch["num_nodes"].min() >= 4 and batch["num_nodes"].max() <= 12
    for ex in rows(batch):
        check_example(ex, 16)


@pytest.mark.slow
def test_pool_evens_out_distances_and_keeps_exact_distinct_examples():
    """pool=8 draws 8x the batch and keeps a distance-flattened sample: long distances become common, and
    what is kept are distinct, exactly labelled draws."""
    kwargs = {"families": ("tree_plus", "erdos_renyi"), "n_min": 4, "n_max": 12, "vocab": 16}
    plain = sample_batch(jax.random.key(0), 128, **kwargs)
    pooled = sample_batch(jax.random.key(0), 128, pool=8, **kwargs)
    long = lambda batch: float((np.asarray(batch.d_st) >= 7).mean())  # noqa: E731
    assert long(pooled) > 2 * long(plain) > 0
    arrays = {k: np.asarray(v) for k, v in pooled._asdict().items()}
    assert len({row.tobytes() for row in arrays["edges"]}) == 128
    for ex in rows(arrays):
        check_example(ex, vocab=16)
