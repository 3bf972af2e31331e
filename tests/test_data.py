"""Fresh data: every training step trains on its own batch, drawn from fold_in(data_key, step), and the
samplers' sizes cover n_min..n_max inclusive."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from configs import PRESETS
from experiment.fit import draw_batch, drawer, make_train_step
from experiment.mesh import data_mesh
from experiment.phases import batch_sampler, finetune_sampler
from models.objectives import variant

CFG = PRESETS["tiny"]  # sizes n_min = 3, n = 4, N = 6


def fingerprint_step(sample, batch_size: int = 4):
    """A real train step whose loss is a fingerprint of the batch it drew (the parameters do not matter)."""
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss_fn(model, batch):
        leaves = jax.tree.leaves(batch)
        code = sum(jnp.sum(x.astype(jnp.float32) * (1 + jnp.arange(x.size).reshape(x.shape))) for x in leaves)
        return code + 0 * model.kernel[...].sum(), jnp.float32(0)

    tx = optax.sgd(0.0)
    step = make_train_step(graphdef, tx, loss_fn, sample, batch_size)
    opt_state = tx.init(params)

    def run(data_key, steps):
        nonlocal params, opt_state
        out = []
        for i in steps:
            params, opt_state, metrics = step(params, opt_state, rest, data_key, i)
            out.append(float(metrics["loss"]))
        return out

    return run


def test_consecutive_steps_train_on_different_batches():
    run = fingerprint_step(lambda key, size: jax.random.uniform(key, (size,)))
    first = run(jax.random.key(1), range(6))
    assert len(set(first)) == 6  # a new batch every step
    assert run(jax.random.key(1), [3]) == [first[3]]  # the step number alone fixes it (resume depends on this)
    assert run(jax.random.key(2), [3]) != [first[3]]  # and the data key: seeds see different data


def draws_differ(sample, keys) -> bool:
    """Whether every key gives `sample` another batch, drawn as the train step draws it (part by part): the
    programs of the test below, compiled once."""
    batches = [jax.tree.map(np.asarray, draw_batch(sample, 64, key)) for key in keys]
    return all(
        not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True))
        for i, x in enumerate(batches)
        for y in batches[i + 1 :]
    )


def test_samplers_depend_on_their_key():
    keys = [jax.random.fold_in(jax.random.key(1), step) for step in range(3)]
    assert draws_differ(batch_sampler(CFG, CFG.data.n_max), keys)
    assert draws_differ(finetune_sampler(CFG, variant("frozen@all")), keys)


def test_drawn_sizes_cover_n_min_to_n_max_inclusive_with_one_program_for_every_range():
    """The train step's draw (experiment/fit.py: drawer) of each size range a run uses: pretraining's n_min..N,
    the labelled n_min..n, the unlabelled n+1..N. The range is traced, not compiled in: one program draws all
    three, and each batch holds exactly its own sizes."""
    data = CFG.data
    draw = drawer.__wrapped__(64, None, data_mesh(), 1)  # a new jit, not the one other tests fill
    for n_min, n_max in ((data.n_min, data.n_max), (data.n_min, data.n_report), (data.n_report + 1, data.n_max)):
        batch = draw(batch_sampler(CFG, n_max, n_min=n_min), jax.random.key(0), 0)
        assert set(np.asarray(batch.num_nodes).ravel().tolist()) == set(range(n_min, n_max + 1)), (n_min, n_max)
    assert draw._cache_size() == 1


def test_labelled_fine_tuning_batches_even_out_d_st_with_the_pool():
    """The oracle's labelled batches (every size <= N = 6) with data.finetune_pool 8 against 1: the commonest
    d(s,t) is rarer and the rarest (of 1..4; 5 needs a path through all six vertices) commoner. Unlabelled batches
    are not pooled."""

    def histogram(pool: int) -> np.ndarray:
        sampler = finetune_sampler(CFG.replace(data={"finetune_pool": pool}), variant("oracle@range"))
        assert sampler.labelled.pool == pool and sampler.unlabelled.pool == 1
        batch = draw_batch(sampler.parts()["labelled"], 64, jax.random.key(0))
        return np.bincount(np.asarray(batch.d_st), minlength=CFG.data.n_max)[1:5]

    plain, pooled = histogram(1), histogram(8)
    assert pooled.max() < plain.max() and pooled.min() > plain.min(), (plain, pooled)
    assert CFG.data.finetune_pool == 8  # the default, what every preset fine-tunes with
