"""graphgen.from_networkx: user graphs into the data contract, checked against networkx."""

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphgen import dataset
from graphgen.from_networkx import from_networkx

VOCAB = 40


def rebuilt(data: dict, i: int) -> nx.Graph:
    """Row i's graph over vertex ids, from its edge list."""
    graph = nx.Graph()
    graph.add_edges_from(map(tuple, data["edges"][i][data["edge_mask"][i]].tolist()))
    return graph


def with_roles(graph: nx.Graph, s, t) -> nx.Graph:
    """A copy whose vertices s and t are marked, so that an isomorphism must map s to s and t to t."""
    marked = nx.Graph(graph)
    nx.set_node_attributes(marked, {v: "s" if v == s else "t" if v == t else "" for v in marked}, "role")
    return marked


def check_row(data: dict, i: int, original: nx.Graph, vocab: int) -> None:
    """Every promise of the contract for row i, against the original networkx graph (connected)."""
    graph = rebuilt(data, i)
    mask = data["edge_mask"][i]
    assert (data["edges"][i][~mask] == 0).all()
    ids = np.array(sorted(graph.nodes))
    assert ids.min() >= 1 and ids.max() <= vocab and len(np.unique(ids)) == original.number_of_nodes()
    assert int(data["num_nodes"][i]) == graph.number_of_nodes() == original.number_of_nodes()
    assert int(mask.sum()) == graph.number_of_edges() == original.number_of_edges()

    s, t, d = int(data["s"][i]), int(data["t"][i]), int(data["d_st"][i])
    assert s != t and nx.shortest_path_length(graph, s, t) == d
    assert int(data["path_len"][i]) == d + 1
    path = data["path"][i]
    assert (path[d + 1 :] == 0).all()
    assert list(nx.all_shortest_paths(graph, s, t)) == [path[: d + 1].tolist()]
    assert nx.is_isomorphic(graph, original)


def test_round_trip_through_save_and_load(tmp_path):
    tree = nx.from_prufer_sequence([3, 3, 0, 5, 5, 1])
    gnp = nx.gnp_random_graph(14, 0.3, seed=3)
    assert nx.is_connected(gnp)
    originals = [nx.path_graph(9), nx.cycle_graph(7), tree, nx.grid_2d_graph(3, 4), gnp]

    data = from_networkx(originals, vocab=VOCAB, seed=1)
    dataset.save(tmp_path / "user.npz", data)
    loaded = dataset.load(tmp_path / "user.npz")

    assert sorted(loaded) == sorted(dataset.CONTRACT)
    for key in data:
        assert np.array_equal(loaded[key], data[key]), key
    assert loaded["edges"].shape == (5, gnp.number_of_edges(), 2)  # padded to the largest edge count
    assert loaded["family_names"].tolist() == ["networkx"] and loaded["family"].tolist() == [0] * 5
    for i, original in enumerate(originals):
        check_row(loaded, i, original, VOCAB)


def test_given_pairs_are_used_verbatim():
    grid = nx.grid_2d_graph(3, 5)
    originals = [nx.path_graph(8), grid, nx.cycle_graph(9)]
    pairs = [(2, 6), ((0, 0), (0, 4)), (0, 4)]
    data = from_networkx(originals, vocab=VOCAB, pairs=pairs, seed=2)

    for i, (original, (s, t)) in enumerate(zip(originals, pairs, strict=True)):
        check_row(data, i, original, VOCAB)
        assert int(data["d_st"][i]) == nx.shortest_path_length(original, s, t)
        # Some isomorphism maps the ids of s and t onto the given labels.
        assert nx.is_isomorphic(
            with_roles(rebuilt(data, i), int(data["s"][i]), int(data["t"][i])),
            with_roles(original, s, t),
            node_match=lambda a, b: a["role"] == b["role"],
        )
    assert data["d_st"].tolist() == [4, 4, 4]


@pytest.mark.parametrize(
    "pair, problem",
    [
        ((0, 2), "more than one shortest path"),  # opposite corners of the 4-cycle
        ((0, 5), "not reachable"),  # the other component
        ((0, 9), "not a vertex"),
        ((1, 1), "same vertex"),
    ],
)
def test_bad_pairs_raise_naming_the_graph(pair, problem):
    square_and_edge = nx.cycle_graph(4)
    square_and_edge.add_edge(4, 5)
    graphs = [nx.path_graph(3), square_and_edge]
    with pytest.raises(ValueError, match=f"^graph 1: .*{problem}") as info:
        from_networkx(graphs, vocab=VOCAB, pairs=[(0, 2), pair])
    assert "\n" not in str(info.value)


def test_a_graph_larger_than_the_vocabulary_raises():
    from_networkx([nx.path_graph(10)], vocab=10)  # exactly vocab vertices fit
    with pytest.raises(ValueError, match=r"^graph 1: 11 vertices .*vocab = 10$"):
        from_networkx([nx.path_graph(3), nx.path_graph(11)], vocab=10)


@pytest.mark.parametrize(
    "graphs, message",
    [
        ([], "no graphs"),
        ([nx.path_graph(3), nx.DiGraph([(0, 1)])], "graph 1: .*undirected graphs only"),
        ([nx.path_graph(3), [(0, 1)]], "graph 1: expected a networkx graph"),
        (nx.path_graph(3), "not a single graph"),
        ([nx.path_graph(3), nx.empty_graph(1)], "graph 1: no pair"),
        ([nx.empty_graph(4)], "graph 0: no pair"),
    ],
)
def test_bad_input_raises(graphs, message):
    with pytest.raises(ValueError, match=message):
        from_networkx(graphs, vocab=VOCAB)


def test_same_seed_same_arrays_other_seed_other_ids():
    graphs = [nx.cycle_graph(11), nx.grid_2d_graph(4, 4), nx.path_graph(6)]
    a, b = from_networkx(graphs, vocab=VOCAB, seed=5), from_networkx(graphs, vocab=VOCAB, seed=5)
    assert sorted(a) == sorted(b) == sorted(dataset.CONTRACT)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
        assert a[key].dtype == b[key].dtype
    c = from_networkx(graphs, vocab=VOCAB, seed=6)
    assert not np.array_equal(a["edges"], c["edges"])
    assert sorted(np.unique(a["edges"][0]).tolist()) != sorted(np.unique(c["edges"][0]).tolist())


def test_dtypes_match_the_contract():
    data = from_networkx([nx.path_graph(4)], vocab=VOCAB)
    for name, (dtype, ndim) in dataset.CONTRACT.items():
        assert np.issubdtype(data[name].dtype, dtype) and data[name].ndim == ndim, name
    assert data["edges"].dtype == np.int32 and data["edge_mask"].dtype == np.bool_


def test_self_loops_dropped_and_other_components_kept():
    graph = nx.Graph([(0, 1), (1, 1)])
    graph.add_nodes_from(["x", "y"])  # isolated: never s or t, still counted
    data = from_networkx([graph] * 20, vocab=VOCAB, seed=0)
    assert data["num_nodes"].tolist() == [4] * 20
    assert data["edge_mask"].sum(1).tolist() == [1] * 20
    assert data["d_st"].tolist() == [1] * 20
    for i in range(20):
        assert {int(data["s"][i]), int(data["t"][i])} == set(data["edges"][i, 0].tolist())


def test_half_the_targets_are_the_farthest():
    # On a path of 10 vertices every vertex has 9 unique-path targets and one farthest: expect 1/2 + 1/18.
    count = 400
    data = from_networkx([nx.path_graph(10)] * count, vocab=VOCAB, seed=0)
    farthest = 0
    for i in range(count):
        graph = rebuilt(data, i)
        farthest += int(data["d_st"][i]) == nx.eccentricity(graph, int(data["s"][i]))
    assert 0.45 < farthest / count < 0.67
    assert len(set(data["d_st"].tolist())) == 9  # every distance 1..9 occurs


def test_family_list():
    data = from_networkx([nx.path_graph(3)] * 3, vocab=VOCAB, family=["a", "b", "a"])
    assert data["family_names"].tolist() == ["a", "b"]
    assert data["family"].tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="family"):
        from_networkx([nx.path_graph(3)] * 3, vocab=VOCAB, family=["a", "b"])


@st.composite
def connected_graphs(draw) -> nx.Graph:
    """A random tree (Prufer sequence) on 2..10 vertices plus a few extra edges."""
    n = draw(st.integers(2, 10))
    graph = nx.from_prufer_sequence(draw(st.lists(st.integers(0, n - 1), min_size=n - 2, max_size=n - 2)))
    vertex = st.integers(0, n - 1)
    graph.add_edges_from((u, v) for u, v in draw(st.lists(st.tuples(vertex, vertex), max_size=4)) if u != v)
    return graph


@settings(max_examples=30, deadline=None)
@given(graph=connected_graphs(), seed=st.integers(0, 2**16))
def test_property_distance_and_unique_path(graph, seed):
    data = from_networkx([graph], vocab=12, seed=seed)
    check_row(data, 0, graph, 12)
