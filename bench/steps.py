"""What the benchmarks share: the experiment's train steps at a config's shapes, their model FLOPs counted
analytically, a timer and a description of the machine.

FLOPs are counted by hand (matmul FLOPs only, 2 per multiply-add, backward = 2x forward) because XLA's
cost_analysis() counts the body of a while loop once, and the graph encoder is a fori_loop of `loops`
iterations: its figure would be ~loops x too low.
"""

import dataclasses
import os
import platform
import time
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from configs import Config
from experiment.fit import make_train_step
from experiment.mesh import place
from experiment.optim import optimizer
from experiment.phases import batch_sampler
from experiment.rundir import new_model
from graphgen import edge_capacity
from models.objectives import PRETRAINED, VARIANTS, d_st_loss, report_loss


@dataclasses.dataclass
class Step:
    """A train step ready to call as `run(i)`, with `batch_size` examples and `flops` model FLOPs per step."""

    run: Callable[[int], object]
    batch_size: int
    flops: float


def machine() -> str:
    device = jax.devices()[0]
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "")
    cpu = cpu or platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} CPUs; jax {jax.__version__}, {jax.device_count()} x {device.device_kind}"


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read().splitlines()
    except OSError:
        return []


def rate(run: Callable[[int], object], seconds: float) -> float:
    """Calls per second of run(i), i = 1, 2, ..., after one warm-up call (compilation) with i = 0; at least
    two timed calls. Blocks on every result, so asynchronous dispatch does not hide any work."""
    jax.block_until_ready(run(0))
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        calls += 1
        jax.block_until_ready(run(calls))
    return calls / (time.perf_counter() - start)


def _block_flops(tokens: int, width: int, mlp: int, pairs: int | None = None) -> float:
    """Forward FLOPs of one transformer block over `tokens` tokens: q, k, v, out projections, MLP, attention over
    `pairs` (query, key) pairs (default: all, tokens^2)."""
    return 2 * tokens * (4 + 2 * mlp) * width**2 + 4 * (tokens**2 if pairs is None else pairs) * width


def _head_flops(queries: int, tokens: int, width: int, mlp: int, classes: int) -> float:
    """Forward FLOPs of a QueryHead: q, out and MLP per query, k and v per token, cross-attention, classifier."""
    per_query = (2 + 2 * mlp) * width**2 + width * classes
    return 2 * (queries * per_query + 2 * tokens * width**2) + 4 * queries * tokens * width


def _encoder_flops(cfg: Config) -> float:
    m, n_pad = cfg.model, cfg.data.n_max
    if m.encoder.startswith("graph"):
        pairs = 2 * edge_capacity(n_pad) + cfg.data.vocab if m.encoder == "graph-sparse" else None  # edges, self
        return (m.loops or n_pad) * _block_flops(cfg.data.vocab, m.width, m.mlp_ratio, pairs)
    return m.layers * _block_flops(edge_capacity(n_pad) + 2, m.width, m.mlp_ratio)


def _encoder_tokens(cfg: Config) -> int:
    return cfg.data.vocab if cfg.model.encoder.startswith("graph") else edge_capacity(cfg.data.n_max) + 2


def pretrain_flops(cfg: Config) -> float:
    """Per example: encoder and d(s,t) head forward and backward."""
    head = _head_flops(1, _encoder_tokens(cfg), cfg.model.width, cfg.model.mlp_ratio, cfg.data.vocab)
    return 3 * (_encoder_flops(cfg) + head)


def finetune_flops(cfg: Config) -> float:
    """Per example, frozen-encoder variant: encoder forward, report head forward and backward over the n_pad
    path slots."""
    m = cfg.model
    head = _head_flops(cfg.data.n_max, _encoder_tokens(cfg), m.width, m.mlp_ratio, cfg.data.vocab)
    return _encoder_flops(cfg) + 3 * head


def _step(cfg, model, trainable, loss_fn, sample, opt, seeds: int | None) -> Step:
    tx = optimizer(opt)
    graphdef, params, rest = nnx.split(model, trainable, ...)
    train_step = make_train_step(graphdef, tx, loss_fn, sample, opt.batch_size, seeds=seeds, draw_ahead=opt.draw_ahead)
    keys = jax.random.key(opt.seed + 1)
    if seeds is not None:  # K copies of the parameters, K data streams: what a vmapped seed sweep trains
        params = jax.tree.map(lambda x: jnp.stack([x] * seeds), params)
        keys = jax.random.split(keys, seeds)
    params, rest = place(params, opt.shard_params), place(rest, opt.shard_params)
    state = [params, place(tx.init(params) if seeds is None else jax.vmap(tx.init)(params), opt.shard_params)]

    def run(i: int):
        state[0], state[1], metrics = train_step(state[0], state[1], rest, keys, i)
        return metrics

    return Step(run, opt.batch_size * (seeds or 1), 0.0)


def pretrain_step(cfg: Config, sample=None, seeds: int | None = None) -> Step:
    """The pretraining step (encoder + d(s,t) head); `sample` replaces the generator (e.g. a fixed batch)."""
    sample = sample or batch_sampler(cfg, cfg.data.n_max, pool=cfg.data.pool)
    loss_fn = partial(d_st_loss, n_pad=cfg.data.n_max)
    step = _step(cfg, new_model(cfg, cfg.pretrain.seed), PRETRAINED, loss_fn, sample, cfg.pretrain, seeds)
    return dataclasses.replace(step, flops=step.batch_size * pretrain_flops(cfg))


def finetune_step(cfg: Config, sample=None, seeds: int | None = None) -> Step:
    """The fine-tuning step of the `frozen` variant (report head only, labels on sizes n_min..n); `sample`
    replaces the generator (e.g. a fixed batch)."""
    variant = VARIANTS["frozen"]
    loss_fn = partial(report_loss, variant=variant, n_pad=cfg.data.n_max)
    sample = sample or batch_sampler(cfg, cfg.data.n_report, pool=cfg.data.finetune_pool)
    step = _step(cfg, new_model(cfg, cfg.finetune.seed), variant.trainable(), loss_fn, sample, cfg.finetune, seeds)
    return dataclasses.replace(step, flops=step.batch_size * finetune_flops(cfg))


def bench_config(cfg: Config, dtype: str, draw_ahead: int | None = None) -> Config:
    """`cfg` computing in `dtype`, and drawing `draw_ahead` batches per generator call in both phases if given."""
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dtype=dtype))
    if draw_ahead is None:
        return cfg
    return cfg.replace(pretrain={"draw_ahead": draw_ahead}, finetune={"draw_ahead": draw_ahead})
