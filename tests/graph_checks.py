"""Independent checks of generated examples against networkx (shared by the graphgen tests)."""

import networkx as nx
import numpy as np


def to_networkx(edges: np.ndarray, edge_mask: np.ndarray) -> nx.Graph:
    graph = nx.Graph()
    graph.add_edges_from(map(tuple, edges[edge_mask].tolist()))
    return graph


def check_example(ex: dict, vocab: int) -> None:
    """Asserts every promise of the data contract for one example (a dict of its arrays)."""
    edges, mask = ex["edges"], ex["edge_mask"]
    real = edges[mask]
    assert (edges[~mask] == 0).all(), "padding edges must be 0"
    assert ((real >= 1) & (real <= vocab)).all(), "ids must be in 1..vocab"
    assert (real[:, 0] != real[:, 1]).all(), "self-loop"
    undirected = {tuple(sorted(e)) for e in real.tolist()}
    assert len(undirected) == len(real), "duplicate edge"

    graph = to_networkx(edges, mask)
    n = int(ex["num_nodes"])
    assert graph.number_of_nodes() == n and nx.is_connected(graph)
    s, t, d = int(ex["s"]), int(ex["t"]), int(ex["d_st"])
    assert s != t and s in graph and t in graph
    assert nx.shortest_path_length(graph, s, t) == d
    path = ex["path"]
    assert int(ex["path_len"]) == d + 1 and (path[d + 1 :] == 0).all()
    assert list(nx.all_shortest_paths(graph, s, t)) == [path[: d + 1].tolist()], "path must be the unique one"

    from_s = nx.single_source_shortest_path_length(graph, s)
    from_t = nx.single_source_shortest_path_length(graph, t)
    assert sum(from_s[u] + from_t[u] == d for u in graph) == d + 1
    if "node_ids" in ex:  # batch-only label arrays: per local vertex, d(s, .) and d(t, .)
        active = ex["node_ids"] > 0
        ids = ex["node_ids"][active]
        assert sorted(ids.tolist()) == sorted(graph.nodes)
        assert ex["dist_s"][active].tolist() == [from_s[u] for u in ids.tolist()]
        assert ex["dist_t"][active].tolist() == [from_t[u] for u in ids.tolist()]
        assert (ex["dist_s"][~active] == -1).all() and (ex["node_ids"][~active] == 0).all()


def rows(arrays: dict):
    """Yields one dict per example from batch-shaped arrays."""
    count = len(arrays["s"])
    for i in range(count):
        yield {k: v[i] for k, v in arrays.items() if k != "family_names"}
