"""Graph families: each is one small function `(key, n, n_pad) -> adjacency`.

A family draws a single undirected graph on the active vertices `0..n-1` of an `(n_pad, n_pad)` boolean
adjacency matrix (`n` is traced, `n_pad` static), so one compiled program serves every size in a bucket.
Families need not return clean matrices: `sample.py` symmetrises, masks inactive vertices, drops
self-loops and links components afterwards. Register a new family with `@family("name")`; nothing else changes.
All families are sparse (average degree about 2-4), so shortest-path lengths grow with n.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from common.registry import registrar

Family = Callable[[jax.Array, jax.Array, int], jax.Array]
FAMILIES: dict[str, Family] = {}
family = registrar(FAMILIES)


def _from_edges(a: jax.Array, b: jax.Array, valid: jax.Array, n_pad: int) -> jax.Array:
    adj = jnp.zeros((n_pad, n_pad), bool)
    return adj.at[a, b].max(valid).at[b, a].max(valid)


@family("erdos_renyi")
def erdos_renyi(key: jax.Array, n: jax.Array, n_pad: int) -> jax.Array:
    """G(n, c/n) with mean degree c in [1.2, 2.5]: near the connectivity threshold, long tree-like paths."""
    k_c, k_adj = jax.random.split(key)
    c = jax.random.uniform(k_c, minval=1.2, maxval=2.5)
    return jnp.triu(jax.random.uniform(k_adj, (n_pad, n_pad)) < c / n, k=1)  # symmetrised by the caller


@family("tree_plus")
def tree_plus(key: jax.Array, n: jax.Array, n_pad: int) -> jax.Array:
    """Random tree, each vertex attached to one of the w previous ones (w in 1..4), plus about n/8 chords."""
    k_w, k_par, k_a, k_b, k_m = jax.random.split(key, 5)
    v = jnp.arange(n_pad)
    w = jax.random.randint(k_w, (), 1, 5)
    parent = jnp.maximum(v - 1 - jax.random.randint(k_par, (n_pad,), 0, w), 0)
    tree = _from_edges(v, parent, (v > 0) & (v < n), n_pad)
    slots = n_pad // 8 + 1
    a = jax.random.randint(k_a, (slots,), 0, n)
    b = jax.random.randint(k_b, (slots,), 0, n)
    n_extra = jax.random.randint(k_m, (), 0, n // 8 + 2)
    return tree | _from_edges(a, b, jnp.arange(slots) < n_extra, n_pad)


@family("grid_holes")
def grid_holes(key: jax.Array, n: jax.Array, n_pad: int) -> jax.Array:
    """n cells drawn from a w x w grid with a 10-25% share of holes; 4-neighbour edges between kept cells."""
    k_h, k_cells = jax.random.split(key)
    max_holes = 0.25
    side_pad = int((n_pad / (1 - max_holes)) ** 0.5) + 1
    holes = jax.random.uniform(k_h, minval=0.10, maxval=max_holes)
    side = jnp.ceil(jnp.sqrt(n / (1 - holes))).astype(jnp.int32)
    cell_ids = jnp.arange(side_pad * side_pad)
    # Random keys with out-of-grid cells pushed last: the first n_pad of the order are distinct grid cells.
    keys = jnp.where(cell_ids < side * side, jax.random.uniform(k_cells, cell_ids.shape), 2.0)
    cell = jnp.argsort(keys)[:n_pad]
    row, col = cell // side, cell % side
    manhattan = jnp.abs(row[:, None] - row[None, :]) + jnp.abs(col[:, None] - col[None, :])
    return manhattan == 1


@family("geometric")
def geometric(key: jax.Array, n: jax.Array, n_pad: int) -> jax.Array:
    """Random geometric graph in the unit square, radius set for mean degree about 2-3.5."""
    k_c, k_xy = jax.random.split(key)
    c = jax.random.uniform(k_c, minval=2.0, maxval=3.5)
    radius = jnp.sqrt(c / (jnp.pi * n))
    xy = jax.random.uniform(k_xy, (n_pad, 2))
    dist2 = jnp.sum((xy[:, None, :] - xy[None, :, :]) ** 2, axis=-1)
    return dist2 < radius**2


@family("small_world")
def small_world(key: jax.Array, n: jax.Array, n_pad: int) -> jax.Array:
    """Watts-Strogatz: ring where each vertex links its 2 successors, each link rewired with p in [0.02, 0.15]."""
    k_p, k_rewire, k_target = jax.random.split(key, 3)
    p = jax.random.uniform(k_p, minval=0.02, maxval=0.15)
    v = jnp.repeat(jnp.arange(n_pad), 2)
    ring = (v + jnp.tile(jnp.array([1, 2]), n_pad)) % n
    rewired = jax.random.uniform(k_rewire, v.shape) < p
    target = jnp.where(rewired, jax.random.randint(k_target, v.shape, 0, n), ring)
    return _from_edges(v, target, v < n, n_pad)
