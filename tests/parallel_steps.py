"""Run by test_parallel.py in a fresh process with 8 fake CPU devices (XLA_FLAGS must precede importing jax):
a few pretraining steps of the tiny model on a 1-device mesh and on the 8-device mesh, parameters replicated
and sharded. Prints JSON: the largest differences to the 1-device run and how the parameters were laid out.
To stay fast (each mesh compiles its own program) the model is a one-block 'edges' encoder and the batches are
path graphs drawn inside the step: graphgen's generator alone takes ~15 s to compile, and is not under test."""

import dataclasses
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from configs import PRESETS
from experiment.fit import make_train_step
from experiment.mesh import data_mesh, place
from experiment.rundir import new_model
from graphgen import GraphBatch
from models.model import ModelConfig
from models.objectives import PRETRAINED, d_st_loss

STEPS = 3
CFG = dataclasses.replace(PRESETS["tiny"], model=ModelConfig(encoder="edges", width=16, heads=2, layers=1))


def path_graphs(key: jax.Array, batch_size: int) -> GraphBatch:
    """Paths through n_max random ids, s at one end, t at a random distance."""
    n, vocab = CFG.data.n_max, CFG.data.vocab
    k_ids, k_d = jax.random.split(key)
    ids = jax.vmap(lambda k: jax.random.permutation(k, vocab)[:n] + 1)(jax.random.split(k_ids, batch_size))
    d = jax.random.randint(k_d, (batch_size,), 1, n)
    local = jnp.arange(n)
    return GraphBatch(
        edges=jnp.stack([ids[:, :-1], ids[:, 1:]], axis=-1),
        edge_mask=jnp.ones((batch_size, n - 1), bool),
        num_nodes=jnp.full(batch_size, n),
        s=ids[:, 0],
        t=jnp.take_along_axis(ids, d[:, None], axis=1)[:, 0],
        d_st=d,
        path=jnp.where(local <= d[:, None], ids, 0),
        path_len=d + 1,
        family=jnp.zeros(batch_size, jnp.int32),
        node_ids=ids,
        dist_s=jnp.broadcast_to(local, ids.shape),
        dist_t=jnp.abs(local - d[:, None]),
    )


# Momentum SGD, not Adam: Adam turns the rounding noise of near-zero gradients into whole steps.
TX = optax.sgd(0.1, momentum=0.9)


def loss_fn(model, batch):
    return d_st_loss(model, batch, CFG.data.n_max)


def train(mesh: Mesh, shard_params: bool) -> tuple[list, list[float]]:
    graphdef, params, rest = nnx.split(new_model(CFG, 0), PRETRAINED, ...)
    tx, batch_size = TX, CFG.pretrain.batch_size
    step = make_train_step(graphdef, tx, loss_fn, path_graphs, batch_size, shard_params=shard_params, mesh=mesh)
    params, rest = place(params, shard_params, mesh), place(rest, shard_params, mesh)
    opt_state = place(tx.init(params), shard_params, mesh)
    losses = []
    for i in range(STEPS):
        params, opt_state, metrics = step(params, opt_state, rest, jax.random.key(1), i)
        losses.append(float(metrics["loss"]))
    return jax.tree.leaves(params), losses


def largest_difference(xs: list, ys: list) -> float:
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(xs, ys, strict=True))


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    one = data_mesh(jax.devices()[:1])
    ref_params, ref_losses = train(one, shard_params=False)
    init = jax.tree.leaves(nnx.split(new_model(CFG, 0), PRETRAINED, ...)[1])
    report = {"update": largest_difference(ref_params, init)}
    for name, shard in (("replicated", False), ("sharded", True)):
        params, losses = train(data_mesh(), shard)
        report[name] = {
            "param_diff": largest_difference(params, ref_params),
            "loss_diff": largest_difference(losses, ref_losses),
            "devices": len(params[0].sharding.device_set),
            "sharded_arrays": sum(p.addressable_shards[0].data.shape != p.shape for p in params),
        }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
