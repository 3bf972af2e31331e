"""Speed and scale: the model's computation dtype, data parallelism over a device mesh, seeds in one program."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY, command_env
from flax import nnx
from parallel_steps import CFG, TX, loss_fn, path_graphs

from experiment.fit import make_train_step
from experiment.mesh import place
from experiment.rundir import new_model
from models.model import Embed, ModelConfig, PathModel
from models.objectives import PRETRAINED

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# This checkout's modules first (the installed package may point at another one).
EIGHT_DEVICES = {**command_env(None, "--xla_force_host_platform_device_count=8"), "PYTHONPATH": ROOT}


@pytest.mark.parametrize("encoder", ["graph", "edges"])
def test_bfloat16_computes_in_bfloat16_keeps_float32_parameters_and_logits(encoder):
    batch = path_graphs(jax.random.key(0), 10)
    inputs = (batch.edges, batch.edge_mask, batch.s, batch.t, CFG.data.n_max)
    models = {
        dtype: PathModel(ModelConfig(encoder=encoder, width=16, heads=2, layers=2, dtype=dtype), 8, nnx.Rngs(0))
        for dtype in ("float32", "bfloat16")
    }

    @nnx.jit
    def outputs(model):  # tokens, then d(s,t), report and probe logits
        encoded = model.encode(*inputs)
        return (
            encoded[0],
            model(*inputs),
            model.report("fresh", encoded, *inputs[:2], batch.path),
            model.report("probe", encoded, *inputs[:2], batch.path),
        )

    half, full = outputs(models["bfloat16"]), outputs(models["float32"])
    assert {x.dtype for x in jax.tree.leaves(nnx.state(models["bfloat16"], nnx.Param))} == {jnp.dtype(jnp.float32)}
    assert half[0].dtype == jnp.bfloat16 and full[0].dtype == jnp.float32
    assert all(x.dtype == jnp.float32 for x in half[1:])
    # Same parameters, so the answers agree to bfloat16 precision (8 bits of mantissa, through several layers),
    # and not exactly (bfloat16 was used).
    for a, b in zip(half[1:], full[1:], strict=True):
        difference, scale = np.abs(np.asarray(a) - np.asarray(b)).max(), np.abs(np.asarray(b)).max()
        assert 0 < difference < 0.05 * scale, (difference, scale)


def test_bad_dtype_is_a_value_error_naming_the_field():
    with pytest.raises(ValueError, match="model.dtype"):
        ModelConfig(dtype="float16").validate()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--model.dtype", "float16"], None, "model.dtype must be one of float32, bfloat16, got 'float16'"),
        (["--pretrain.batch_size", "12"], EIGHT_DEVICES, "pretrain.batch_size 12 is not divisible by the 8 devices"),
    ],
)
def test_bad_dtype_or_batch_is_a_one_line_usage_error(args, env, message, tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", *TINY, *args, "--run-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [f"train.py: error: {message}"]
    assert not (tmp_path / "run").exists()


def test_eight_devices_train_like_one_replicated_or_sharded():
    result = subprocess.run(
        [sys.executable, "tests/parallel_steps.py"], capture_output=True, text=True, env=EIGHT_DEVICES, timeout=300
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["update"] > 1e-2  # the steps moved the parameters, so equal parameters mean something
    for layout, expected_sharded in (("replicated", 0), ("sharded", 1)):
        run = report[layout]
        assert run["devices"] == 8
        assert (run["sharded_arrays"] > 0) == expected_sharded, run
        assert run["param_diff"] < 1e-6 and run["loss_diff"] < 1e-5, run


def test_train_step_over_seeds_equals_one_step_per_seed():
    seeds = (0, 1)
    graphdef, _, rest = nnx.split(new_model(CFG, 0), PRETRAINED, ...)
    params = [place(nnx.split(new_model(CFG, seed), PRETRAINED, ...)[1], False) for seed in seeds]
    keys = [jax.random.key(seed + 10) for seed in seeds]
    single = make_train_step(graphdef, TX, loss_fn, path_graphs, 16)
    vmapped = make_train_step(graphdef, TX, loss_fn, path_graphs, 16, seeds=len(seeds))

    stack = lambda trees: jax.tree.map(lambda *xs: jnp.stack(xs), *trees)  # noqa: E731
    many, many_opt = stack(params), stack([TX.init(p) for p in params])
    ones = [(p, TX.init(p)) for p in params]
    for step in range(2):
        many, many_opt, many_metrics = vmapped(many, many_opt, rest, jnp.stack(keys), step)
        ones = [single(p, o, rest, k, step)[:2] for (p, o), k in zip(ones, keys, strict=True)]
    assert many_metrics["loss"].shape == (2,)
    for i, (p, _) in enumerate(ones):
        for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(many), strict=True):
            np.testing.assert_allclose(b[i], a, rtol=1e-5, atol=1e-6)
    # Control: the seeds ended up different, so comparing each with its own slice can fail.
    assert max(np.abs(x[0] - x[1]).max() for x in jax.tree.leaves(many)) > 1e-2


def fingerprinted_loss(model, batch):
    """loss_fn, logging the batch it trained on as a number: a position-weighted sum of every integer in it
    (wrapping in int32), so that two steps log the same number when they trained on the same batch."""
    loss, acc = loss_fn(model, batch)
    leaves = [jnp.ravel(x).astype(jnp.int32) for x in jax.tree.leaves(batch)]
    flat = jnp.concatenate(leaves)
    return loss, {"acc": acc, "batch": jnp.sum(flat * (jnp.arange(flat.size, dtype=jnp.int32) + 1))}


def _batches(step, params, keys_and_steps, rest) -> list:
    """The fingerprint of the batch each step of `keys_and_steps` trained on."""
    params = jax.tree.map(jnp.copy, params)  # the step donates its inputs
    opt_state, batches = TX.init(params), []
    for key, i in keys_and_steps:
        params, opt_state, metrics = step(params, opt_state, rest, key, i)
        batches.append(np.asarray(metrics["batch"]).tolist())
    return batches


def test_draw_ahead_gives_every_step_the_batch_it_would_draw_alone():
    graphdef, params, rest = nnx.split(new_model(CFG, 0), PRETRAINED, ...)
    params, rest = place(params, False), place(rest, False)
    one, ahead = (make_train_step(graphdef, TX, fingerprinted_loss, path_graphs, 16, draw_ahead=k) for k in (1, 3))
    a, b = jax.random.key(10), jax.random.key(11)
    # 5 steps (not a multiple of 3), then the same step function on another data key (fit trains one seed after
    # another with one step function) at steps of the last draw: that draw, of key `a`, must not serve key `b`.
    schedule = [(a, i) for i in range(5)] + [(b, 3), (b, 4), (b, 0)]
    expected = _batches(one, params, schedule, rest)
    assert _batches(ahead, params, schedule, rest) == expected
    assert len(set(expected)) == len(schedule)  # every step its own batch: equality above is about each one
    # Control: another order of the same steps trains on the same batches in that order.
    shuffled = [(a, i) for i in (0, 1, 2, 4, 3)] + [(b, 3), (b, 0), (b, 4)]
    assert _batches(ahead, params, shuffled, rest) == [expected[schedule.index(s)] for s in shuffled]


def test_draw_ahead_over_vmapped_seeds_gives_each_seed_its_own_batches():
    seeds = (0, 1)
    graphdef, _, rest = nnx.split(new_model(CFG, 0), PRETRAINED, ...)
    params = [place(nnx.split(new_model(CFG, seed), PRETRAINED, ...)[1], False) for seed in seeds]
    stack = lambda trees: jax.tree.map(lambda *xs: jnp.stack(xs), *trees)  # noqa: E731
    keys = jnp.stack([jax.random.key(seed + 10) for seed in seeds])
    results = []
    for draw_ahead in (1, 2):
        step = make_train_step(
            graphdef, TX, fingerprinted_loss, path_graphs, 16, seeds=len(seeds), draw_ahead=draw_ahead
        )
        results.append(_batches(step, stack(params), [(keys, i) for i in range(3)], rest))
    assert results[0] == results[1]
    assert all(len(set(step)) == len(seeds) for step in results[0])  # each seed its own batch at every step


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_embed_looks_up_exact_rows_and_its_gradient_scatters_nothing(dtype):
    embed = Embed(5, 4, dtype=dtype, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
    ids = jnp.array([[0, 4, 4], [2, 2, 2]])
    table = embed.embedding[...]
    rows = embed(ids)
    assert rows.dtype == dtype
    np.testing.assert_array_equal(rows, table.astype(dtype)[ids])  # each row exactly, ids repeated too
    # The gradient of the rows' sum: how often each row was looked up (row 2 three times, row 4 twice).
    graphdef, state = nnx.split(embed)
    grad = jax.grad(lambda state: nnx.merge(graphdef, state)(ids).astype(jnp.float32).sum())
    np.testing.assert_array_equal(grad(state)["embedding"][...][:, 0], [1, 0, 3, 0, 2])
    assert "scatter" not in str(jax.make_jaxpr(grad)(state))
