"""Datasets from networkx graphs a user already has, in the data contract of `graphgen/dataset.py`.

Plain Python per graph (an import path for user data, not a hot path):
`dataset.save(path, from_networkx(graphs, vocab=64))` writes a file that `dataset.load` accepts.
"""

from collections.abc import Hashable, Sequence

import networkx as nx
import numpy as np


def from_networkx(
    graphs: Sequence[nx.Graph],
    vocab: int,
    pairs: Sequence[tuple[Hashable, Hashable]] | None = None,
    seed: int = 0,
    family: str | list[str] = "networkx",
) -> dict:
    """Data-contract arrays (see `graphgen.dataset.CONTRACT`) for undirected networkx graphs, one row each.

    Each graph's vertices get distinct random ids in 1..vocab (0 is padding); self loops are dropped, and
    vertices outside the s-t component are kept. `pairs` gives (s, t) node labels per graph, each checked to
    have a unique shortest path; without it a pair is drawn like the generator does: s uniform among vertices
    with a unique-path target, then half the time the farthest such target, else a uniform one. `family` names
    every graph (one string) or each graph (a list); `family_names` holds the distinct names in order of first
    appearance. Deterministic for a given seed. Raises ValueError (one line, naming the graph) on bad input.
    """
    if isinstance(graphs, nx.Graph):
        raise ValueError("pass a list of networkx graphs, not a single graph")
    graphs = list(graphs)
    if not graphs:
        raise ValueError("no graphs given")
    if pairs is not None and len(pairs) != len(graphs):
        raise ValueError(f"{len(pairs)} pairs given for {len(graphs)} graphs")
    names = [family] * len(graphs) if isinstance(family, str) else list(family)
    if len(names) != len(graphs) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"family must be a string or a list of {len(graphs)} strings")

    rng = np.random.default_rng(seed)
    rows = [_row(i, g, vocab, None if pairs is None else pairs[i], rng) for i, g in enumerate(graphs)]

    count = len(rows)
    max_edges = max(len(r["edges"]) for r in rows)
    max_path = max(len(r["path"]) for r in rows)
    out = {
        "edges": np.zeros((count, max_edges, 2), np.int32),
        "edge_mask": np.zeros((count, max_edges), bool),
        "path": np.zeros((count, max_path), np.int32),
    }
    for i, r in enumerate(rows):
        out["edges"][i, : len(r["edges"])] = r["edges"]
        out["edge_mask"][i, : len(r["edges"])] = True
        out["path"][i, : len(r["path"])] = r["path"]
    for key in ("num_nodes", "s", "t", "d_st"):
        out[key] = np.array([r[key] for r in rows], np.int32)
    out["path_len"] = out["d_st"] + 1
    distinct = list(dict.fromkeys(names))
    out["family"] = np.array([distinct.index(name) for name in names], np.int32)
    out["family_names"] = np.asarray(distinct, dtype=np.str_)
    return out


def _row(i: int, graph: nx.Graph, vocab: int, pair: tuple | None, rng: np.random.Generator) -> dict:
    """One example: ids, (s, t), its path and the shuffled id edge list of graph number i."""
    if not isinstance(graph, nx.Graph):
        raise ValueError(f"graph {i}: expected a networkx graph, got {type(graph).__name__}")
    if graph.is_directed():
        raise ValueError(f"graph {i}: directed graphs are not supported, undirected graphs only")
    n = graph.number_of_nodes()
    if n > vocab:
        raise ValueError(f"graph {i}: {n} vertices do not fit the vocabulary, limit vocab = {vocab}")
    g = nx.Graph(graph)  # a copy (a MultiGraph's parallel edges collapse into one)
    g.remove_edges_from(list(nx.selfloop_edges(g)))

    ids = dict(zip(g.nodes, rng.permutation(vocab)[:n] + 1, strict=False))
    s, t = _pair(i, g, rng) if pair is None else _checked(i, g, pair)
    path = nx.shortest_path(g, s, t)

    edges = np.array([(ids[u], ids[v]) for u, v in g.edges], np.int32).reshape(-1, 2)
    edges = edges[rng.permutation(len(edges))]
    flip = rng.random(len(edges)) < 0.5
    edges[flip] = edges[flip, ::-1]
    return {
        "edges": edges,
        "num_nodes": n,
        "s": ids[s],
        "t": ids[t],
        "d_st": len(path) - 1,
        "path": [ids[v] for v in path],
    }


def _shortest_paths(g: nx.Graph, s: Hashable) -> dict[Hashable, tuple[int, int]]:
    """BFS from s: vertex -> (distance, number of shortest paths capped at 2), for the vertices reachable."""
    found = {s: (0, 1)}
    queue = [s]
    for u in queue:  # the list grows while it is read: a BFS queue
        d, paths = found[u]
        for v in g[u]:
            if v not in found:
                found[v] = (d + 1, paths)
                queue.append(v)
            elif found[v][0] == d + 1:
                found[v] = (d + 1, min(2, found[v][1] + paths))
    return found


def _unique_targets(g: nx.Graph, s: Hashable) -> dict[Hashable, int]:
    """Targets t != s with a unique shortest s-t path -> distance."""
    return {v: d for v, (d, paths) in _shortest_paths(g, s).items() if paths == 1 and v != s}


def _pair(i: int, g: nx.Graph, rng: np.random.Generator) -> tuple[Hashable, Hashable]:
    """s uniform among vertices with a unique-path target (every non-isolated vertex: its neighbours are),
    then with probability 1/2 the farthest such target (ties uniform), else a uniform one."""
    sources = [v for v in g if g.degree(v) > 0]
    if not sources:
        raise ValueError(f"graph {i}: no pair of vertices with a unique shortest path (the graph has no edges)")
    s = sources[rng.integers(len(sources))]
    targets = _unique_targets(g, s)
    if rng.random() < 0.5:
        farthest = max(targets.values())
        targets = {v: d for v, d in targets.items() if d == farthest}
    choices = list(targets)
    return s, choices[rng.integers(len(choices))]


def _checked(i: int, g: nx.Graph, pair: tuple) -> tuple[Hashable, Hashable]:
    """The given (s, t), or ValueError naming what is wrong with it."""
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        raise ValueError(f"graph {i}: pair {pair!r} is not an (s, t) pair")
    s, t = pair
    for name, v in (("s", s), ("t", t)):
        if v not in g:
            raise ValueError(f"graph {i}: {name} = {v!r} is not a vertex of the graph")
    if s == t:
        raise ValueError(f"graph {i}: s and t are the same vertex {s!r}")
    found = _shortest_paths(g, s)
    if t not in found:
        raise ValueError(f"graph {i}: t = {t!r} is not reachable from s = {s!r}")
    if found[t][1] != 1:
        raise ValueError(f"graph {i}: more than one shortest path from s = {s!r} to t = {t!r}")
    return s, t
