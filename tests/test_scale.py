"""Speed and scale: the model's computation dtype, data parallelism over a device mesh, seeds in one program."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY
from flax import nnx
from parallel_steps import CFG, TX, loss_fn, path_graphs

from experiment.fit import make_train_step
from experiment.mesh import place
from experiment.rundir import new_model
from models.model import ModelConfig, PathModel
from models.objectives import PRETRAINED

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# This checkout's modules first (the installed package may point at another one).
EIGHT_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "PYTHONPATH": ROOT}


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
