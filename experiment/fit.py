"""The training loop: a jitted train step that draws its own batches on device, and `fit`, which runs it with
checkpoints, resumption, logging and a guard against non-finite numbers."""

import dataclasses
import math
import time
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from configs import OptimConfig
from experiment.hosts import is_primary
from experiment.mesh import data_mesh, place, state_shardings
from experiment.optim import schedule
from experiment.rundir import PhaseFiles, RunError
from models.model import PathModel


def make_train_step(
    graphdef,
    tx: optax.GradientTransformation,
    loss_fn,
    sample,
    batch_size: int,
    *,
    shard_params: bool = False,
    seeds: int | None = None,
    mesh: Mesh | None = None,
    draw_ahead: int = 1,
):
    """A train step that draws its own batch on device from fold_in(data_key, step): the step number alone fixes the
    data, so a resumed run sees exactly the batches an uninterrupted one would. Two jitted programs per step, both
    asynchronous (no host sync): the draw, compiled once per static part of `sample` (see `drawer`: the generator's
    compilation is most of a fine-tuning step's), and the update, built once per phase kind and shared by its seeds
    (same program, other parameters and data key). One draw makes the batches of `draw_ahead` steps at once (the
    generator's BFS loops run level by level, so on an accelerator a larger draw costs little more than one batch);
    each step's batch is the same for any draw_ahead. loss_fn returns the loss and the accuracy, or the loss and a
    dict of named metrics (with "acc"), all logged. `loss_args` go to loss_fn traced, not baked in: steps that
    differ only in them (consistency weights) share one program.

    Members: with `graphdef` and `loss_fn` tuples of M, one program trains M models on every batch, each with
    its own parameters, optimizer state (so its own gradient clipping), loss and traced loss_args: params,
    opt_state, the loss_args (one tuple per member) and the metrics are M-tuples, and `rest` is (common,
    owns): frozen parameters every member reads, passed once, and each member's other frozen ones. Members on
    one frozen encoder encode each batch with the same computation on the same arrays, which XLA computes
    once (common-subexpression elimination): M variants cost about one encoder pass, not M
    (tests/test_members.py reads it off the compiled step).

    Data-parallel over `mesh` (default: every device) in the same code for one device or many: the batch
    is split over the `data` axis, parameters and optimizer state replicated or (shard_params) sharded, see
    `state_shardings`; pass them through `place` first. With `seeds=K`, one program trains K seeds at once:
    params, opt_state and data_key carry a leading axis of K, `rest` (the frozen part) is shared."""
    mesh = mesh or data_mesh()
    if batch_size % mesh.size:
        raise ValueError(f"batch_size {batch_size} is not divisible by the {mesh.size} devices")
    members = isinstance(graphdef, tuple)
    graphdefs, loss_fns = (graphdef, loss_fn) if members else ((graphdef,), (loss_fn,))

    def update(params, opt_state, rest, batch, loss_args):
        common, owns = rest

        def objective(params):
            results = [
                fn(nnx.merge(g, p, common, own), batch, *args)
                for g, fn, p, own, args in zip(graphdefs, loss_fns, params, owns, loss_args, strict=True)
            ]
            losses = [loss for loss, _ in results]
            # The members' parameters are disjoint: each one's gradient is its own loss's.
            return sum(losses[1:], losses[0]), [{"loss": loss, **_named(aux)} for loss, aux in results]

        (_, metrics), grads = jax.value_and_grad(objective, has_aux=True)(params)
        steps = [tx.update(g, o, p) for g, o, p in zip(grads, opt_state, params, strict=True)]
        params = tuple(optax.apply_updates(p, u) for p, (u, _) in zip(params, steps, strict=True))
        return params, tuple(o for _, o in steps), tuple(metrics)

    if seeds is not None:
        update = jax.vmap(update, in_axes=(0, 0, None, 0, None))
    draw, parts = drawer(batch_size, seeds, mesh, draw_ahead), _drawn_parts(sample)

    def constrain(tree):
        return jax.lax.with_sharding_constraint(tree, state_shardings(tree, mesh, shard_params))

    @partial(jax.jit, donate_argnums=(0, 1))
    def update_step(params, opt_state, rest, batches, index, *loss_args):
        if not members:  # one model: as one member, all frozen parameters its own
            params, opt_state, rest, loss_args = (params,), (opt_state,), (nnx.State({}), (rest,)), (loss_args,)
        if seeds is not None and jax.tree.leaves(params)[0].shape[0] != seeds:
            raise ValueError(f"train step built for {seeds} seeds, given parameters of another seed count")
        batch = jax.tree.map(lambda x: x[:, index] if seeds is not None else x[index], batches)
        params, opt_state, metrics = update(params, opt_state, rest, batch, loss_args)
        params, opt_state = constrain(params), constrain(opt_state)
        return (params, opt_state, metrics) if members else (params[0], opt_state[0], metrics[0])

    drawn = {"key": None, "first": None, "batches": None}  # the last draw, asynchronous like the update

    def train_step(params, opt_state, rest, data_key, step, *loss_args):
        first = step - step % draw_ahead
        if drawn["key"] is not data_key or drawn["first"] != first:
            drawn.update(key=data_key, first=first, batches=_draw(draw, parts, data_key, first))
        return update_step(params, opt_state, rest, drawn["batches"], step - first, *loss_args)

    train_step.update = update_step  # given batches (bench/compile.py times the two programs fused into one)
    return train_step


def _drawn_parts(sample):
    """What the draw program takes, made once per train step: a sampler with parts (a fine-tuning batch:
    labelled, unlabelled) is drawn part by part, each by its own program, so a part that several variants share
    is compiled once; a dict of its parts, else the sampler itself."""
    if hasattr(sample, "parts"):
        return {name: _traceable(part) for name, part in sample.parts().items()}
    return _traceable(sample)


def _draw(draw, parts, key: jax.Array, first: int):
    if isinstance(parts, dict):
        return {name: draw(part, key, first) for name, part in parts.items()}
    return draw(parts, key, first)


def draw_batch(sample, batch_size: int, key: jax.Array, step: int = 0):
    """The batch a one-seed train step on this host's devices draws at `step` from `key`, by the same compiled
    programs (one per part of a sampler with parts): for looking at what training sees without compiling more."""
    batches = _draw(drawer(batch_size, None, data_mesh(), 1), _drawn_parts(sample), key, step)
    return jax.tree.map(lambda x: x[0], batches)


@partial(jax.tree_util.register_dataclass, data_fields=[], meta_fields=["sample"])
@dataclasses.dataclass(frozen=True)
class _Static:
    """A sampler that is a plain function (the tests' fixed batches): all of it picks the program."""

    sample: Callable

    def __call__(self, key: jax.Array, batch_size: int):
        return self.sample(key, batch_size)


def _traceable(sample):
    """`sample` as an argument jit can take: a pytree of numbers as it is, anything else static as a whole."""
    return sample if all(isinstance(x, int | jax.Array) for x in jax.tree.leaves(sample)) else _Static(sample)


@lru_cache(maxsize=64)
def drawer(batch_size: int, seeds: int | None, mesh: Mesh, ahead: int = 1):
    """The jitted draw(sample, data_key, first): the batches of steps first..first+ahead-1 of `sample`, each
    from fold_in(data_key, step), stacked on a leading axis (after the seed axis: vmapped over K data keys with
    seeds=K), each batch split over the mesh's `data` axis. `sample` is a pytree (experiment/phases.py): its
    static part (families, padding, pool) picks the compiled program, its size ranges are traced, so samplers
    that differ only in sizes (pretraining's, the labelled ones up to n and up to N) compile once."""

    def draw(sample, key, first):
        steps = first + jnp.arange(ahead)
        return jax.vmap(lambda step: sample(jax.random.fold_in(key, step), batch_size))(steps)

    spec = P(None, "data")
    if seeds is not None:
        draw, spec = jax.vmap(draw, in_axes=(None, 0, None)), P(None, None, "data")
    return jax.jit(draw, out_shardings=NamedSharding(mesh, spec))


def fit(
    models: list[list[PathModel]],
    trainables: list,
    train_step,
    tx,
    opt: OptimConfig,
    run_dir: Path,
    phases: list[list[str]],
    seeds: list[int],
    loss_args=lambda step: ((),),
    common=nnx.Nothing,
) -> list[list[PathModel]]:
    """Trains members (a train step of make_train_step(...) with one graphdef per member) for opt.steps steps,
    checkpointing every opt.checkpoint_every steps and resuming from the latest checkpoint. models[m][i] is
    member m's model for seed i, the phase phases[m][i]; it trains its part trainables[m] and draws its data
    from key(seeds[i] + 1), the same batches for every member. Several seeds train together: the train step
    is then vmapped over them (make_train_step(..., seeds=K)), and each still gets its own checkpoints and log
    lines, so a vmapped run and a one-at-a-time run leave the same files (as do members trained together and
    one at a time). A finished phase is loaded, not retrained. The frozen parameters that `common` selects are
    the first member's for every member (members on one frozen encoder: filter it, and it is passed once).
    Each logged line holds the step's metrics, the learning rate of `opt`'s schedule and the examples/s.
    `loss_args(step)`: each member's traced extra arguments at each step (consistency weights), one tuple each."""
    stacked = len(seeds) > 1
    splits = [
        [nnx.split(model, trainable, common, ...) for model in row]
        for row, trainable in zip(models, trainables, strict=True)
    ]
    params = tuple(_join([p for _, p, _, _ in row], stacked) for row in splits)
    if any(_paths(own) & _paths(splits[0][0][2]) for own in params):
        raise ValueError("a member trains parameters that `common` shares with the others")
    # Frozen: the same for every seed (seed 0's), `common` the same for every member too (the first one's).
    rest = (splits[0][0][2], tuple(row[0][3] for row in splits))
    params, rest = place(params, opt.shard_params), place(rest, opt.shard_params)
    # Placed like the step's outputs: else the second step sees other input shardings and compiles again.
    opt_state = place(tuple((jax.vmap(tx.init) if stacked else tx.init)(p) for p in params), opt.shard_params)
    names = [phase for row in phases for phase in row]
    files = PhaseFiles(run_dir, names)
    start = files.latest_step()
    if start:
        params, opt_state = _restored(files, start, params, opt_state, stacked, opt.shard_params)
    data_key = jax.vmap(jax.random.key)(jnp.array(seeds) + 1) if stacked else jax.random.key(seeds[0] + 1)
    files.drop_log_after(start)

    variants = ", ".join(row[0].rsplit("-seed", 1)[0] for row in phases)
    desc = (
        names[0]
        if len(names) == 1
        else f"{variants} ({len(seeds)} seeds vmapped)"
        if stacked
        else f"{variants} (seed {seeds[0]})"
    )
    bar = tqdm(
        total=opt.steps,
        initial=start,
        desc=desc,
        unit="step",
        dynamic_ncols=True,
        leave=False,
        disable=not is_primary(),
    )
    last_log, clock, learning_rate = start, time.perf_counter(), schedule(opt)
    for step in range(start, opt.steps):
        params, opt_state, metrics = train_step(params, opt_state, rest, data_key, step, *loss_args(step))
        bar.update()
        done = step + 1
        save = done % opt.checkpoint_every == 0 or done == opt.steps
        if not (save or done % opt.log_every == 0):
            continue  # the host syncs below happen only at logging and checkpoint steps
        metrics = [
            {k: float(v) for k, v in _part(part, i, stacked).items()} for part in metrics for i in range(len(seeds))
        ]
        _guard_finite(files, bar, done, metrics, params if save else None)
        if done % opt.log_every == 0 or done == opt.steps:
            rate = opt.batch_size * len(seeds) * (done - last_log) / (time.perf_counter() - clock)
            last_log, clock = done, time.perf_counter()
            bar.set_postfix(loss=f"{metrics[0]['loss']:.3f}", acc=f"{metrics[0]['acc']:.3f}", ex_s=f"{rate:.0f}")
            # the rate that updated the parameters logged at `done` (optax counts updates from 0)
            files.append_log(done, metrics, {"lr": float(learning_rate(done - 1)), "examples_per_s": rate})
        if save:
            for j, (m, i) in enumerate(_members_by_seed(len(models), len(seeds))):
                own, own_opt = _part(params[m], i, stacked), _part(opt_state[m], i, stacked)
                files.save(j, done, nnx.to_pure_dict(own), own_opt)
    bar.close()
    files.wait()
    for m, row in enumerate(models):
        for i, model in enumerate(row):
            nnx.update(model, _part(params[m], i, stacked))
    return models


def _members_by_seed(members: int, seeds: int) -> list[tuple[int, int]]:
    """(member, seed index) of each phase, in the order of fit's flat list of phases."""
    return [(m, i) for m in range(members) for i in range(seeds)]


def _restored(files: PhaseFiles, step: int, params: tuple, opt_state: tuple, stacked: bool, shard_params: bool):
    """params and opt_state (one tree per member) as every phase's checkpoint of `step` holds them, placed for
    the train step."""
    seeds = len(files.phases) // len(params)
    parts = [[] for _ in params]
    for j, (m, i) in enumerate(_members_by_seed(len(params), seeds)):
        own, own_opt = _part(params[m], i, stacked), _part(opt_state[m], i, stacked)
        restored = files.restore(j, step, nnx.to_pure_dict(own), own_opt)
        nnx.replace_by_pure_dict(own, restored["params"])
        parts[m].append((own, restored["opt_state"]))
    joined = [[_join(list(trees), stacked) for trees in zip(*rows, strict=True)] for rows in parts]
    params, opt_state = tuple(p for p, _ in joined), tuple(o for _, o in joined)
    return place(params, shard_params), place(opt_state, shard_params)


def _guard_finite(files: PhaseFiles, bar, step: int, metrics: list[dict], params=None) -> None:
    """Stops the run (RunError) on a non-finite metric, or non-finite `params` about to be checkpointed, and
    keeps the last good checkpoint whole on disk."""
    if all(math.isfinite(v) for m in metrics for v in m.values()) and (params is None or _all_finite(params)):
        return
    files.wait()
    bar.close()  # before the error, so that the error is the last line
    raise RunError(
        f"{', '.join(files.phases)}: non-finite loss or parameters at step {step} ({metrics}); "
        f"last good checkpoint kept in {files.directory}"
    )


def _named(aux) -> dict:
    """A loss function's auxiliary output as named metrics: a dict as it is, a single number as the accuracy."""
    return aux if isinstance(aux, dict) else {"acc": aux}


def _join(trees: list, stacked: bool):
    """K trees as one with a leading axis of K (vmapped training), or the single tree as it is."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees) if stacked else trees[0]


def _part(tree, i: int, stacked: bool):
    """Tree i of a stacked tree (see `_join`)."""
    return jax.tree.map(lambda x: x[i], tree) if stacked else tree


def _paths(state) -> set:
    return {path for path, _ in jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(state))}


def _all_finite(tree) -> bool:
    return all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(tree))
