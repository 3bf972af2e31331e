"""The whole experiment: pretrain d(s,t), fine-tune d(s,u) report variants, evaluate against baselines.

    python train.py --preset quick                         # CPU, ~10 min: results/quick/
    python train.py --preset quick --sweep consistency     # the consistency-loss grid: results/quick-consistency/
    python train.py --preset paper --model.width 256       # any config field can be overridden
    python train.py --preset quick --experiment.variants frozen,frozen@range+bellman=0.5,oracle
    python train.py --preset quick --resume                # continue a killed run to the same numbers
    python train.py --preset paper --distributed           # one process per host of a multi-host GPU/TPU job

Phases: (1) pretrain the encoder and d(s,t) head on sizes n_min..N; (2) for every variant and seed,
fine-tune a d(s,u) reporter with labels on sizes n_min..n (the oracle and probe baselines: n_min..N), plus
any consistency losses on unlabelled sizes n+1..N; (3) eval.py on the run's fixed evaluation set. A run
keeps its config, metrics log (JSON lines), evaluation set and orbax checkpoints in --run-dir (default
runs/PRESET); results go to --results-dir (default results/PRESET): summary.json, metrics.csv and plots.

Every train step is data-parallel over all devices (of every host, with --distributed): a mesh with one
`data` axis splits each step's batch; parameters are replicated, or sharded with --pretrain.shard_params true.
"""

import argparse
import dataclasses
import json
import logging
import math
import shutil
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from graphgen import sample_batch
from graphgen.cli import Parser, UsageError, enable_compilation_cache, fail
from graphgen.files import filter_jsonl, write_json
from graphgen.provenance import config_changes, refuse_to_replace
from models.consistency import CONDITIONS
from models.model import ModelConfig, PathModel
from models.objectives import (
    PRETRAINED,
    VARIANTS,
    Variant,
    d_st_loss,
    finetune_loss,
    ladder,
    unlabelled,
    variant,
)


def _field(default, help: str):
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class DataConfig:
    families: str = _field("all", "comma-separated graph families, or 'all'")
    n_min: int = _field(4, "smallest graph size")
    n_max: int = _field(16, "N: largest pretraining size")
    n_report: int = _field(8, "n: largest size with report-head labels (n < N)")
    vocab: int = _field(24, "vertex ids are 1..vocab; must cover every evaluated size")
    eval_beyond: int = _field(4, "also evaluate sizes N+1..N+eval_beyond")
    eval_per_size: int = _field(40, "evaluation examples per graph size and family")
    eval_seed: int = _field(1234, "seed of the fixed evaluation set")
    pool: int = _field(8, "pretraining examples drawn per one kept, to even out distances d(s,t); 1 = off")

    def family_list(self) -> list[str]:
        from graphgen.sample import family_names

        return family_names() if self.families == "all" else self.families.split(",")

    def validate(self) -> None:
        from graphgen.sample import family_names

        unknown = [f for f in self.family_list() if f not in family_names()]
        if unknown:
            raise UsageError(f"unknown family '{unknown[0]}' in data.families (known: {', '.join(family_names())})")
        if self.n_min < 2:
            raise UsageError(f"data.n_min must be at least 2, got {self.n_min}")
        if not self.n_min <= self.n_report < self.n_max:
            raise UsageError(
                f"need n_min <= n < N, got data.n_min={self.n_min}, data.n_report={self.n_report}, "
                f"data.n_max={self.n_max}"
            )
        if self.vocab < self.n_max + self.eval_beyond:
            raise UsageError(
                f"data.vocab={self.vocab} is smaller than the largest evaluated size "
                f"{self.n_max + self.eval_beyond} (N + eval_beyond)"
            )
        if self.pool < 1:
            raise UsageError(f"data.pool must be positive, got {self.pool}")
        if self.eval_beyond < 0 or self.eval_per_size < 1:
            raise UsageError("data.eval_beyond must be >= 0 and data.eval_per_size >= 1")

    def eval_sizes(self) -> tuple[int, int]:
        return self.n_min, self.n_max + self.eval_beyond


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    steps: int = _field(1200, "training steps")
    batch_size: int = _field(128, "examples per step (generated on device each step)")
    lr: float = _field(1e-3, "peak learning rate (AdamW, warmup then cosine decay)")
    warmup: int = _field(100, "warmup steps")
    weight_decay: float = _field(0.01, "AdamW weight decay")
    clip: float = _field(1.0, "global gradient-norm clip")
    seed: int = _field(0, "seed of parameters and training data")
    log_every: int = _field(50, "steps between logged metrics (the only host syncs of the loop)")
    checkpoint_every: int = _field(250, "steps between checkpoints")
    shard_params: bool = _field(False, "shard parameters and optimizer state over the devices (else replicated)")

    def validate(self, section: str) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise UsageError(f"{section}.{name} must be positive")
        if not 0 < self.lr < math.inf or self.warmup < 0:  # `not`: a NaN fails every comparison
            raise UsageError(f"{section}.lr must be positive and finite and {section}.warmup >= 0")
        if not (0 < self.clip < math.inf and 0 <= self.weight_decay < math.inf):
            raise UsageError(f"{section}.clip must be positive and finite and {section}.weight_decay >= 0")
        if self.batch_size % jax.device_count():
            raise UsageError(
                f"{section}.batch_size {self.batch_size} is not divisible by the {jax.device_count()} devices"
            )


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    variants: str = _field(
        "frozen,trainable,trainable+dst,oracle,probe",
        f"comma-separated report variants: {', '.join(VARIANTS)}, each optionally with consistency losses on "
        f"unlabelled sizes n+1..N as BASE@COND[=WEIGHT]+COND... (e.g. frozen@range+bellman=0.5; 'all' = every "
        f"condition: {', '.join(CONDITIONS)})",
    )
    seeds: int = _field(3, "fine-tuning seeds per variant (pretraining is shared)")
    vmap_seeds: bool = _field(
        False, "train a variant's seeds as one vmapped program: faster on an accelerator, slower on a CPU"
    )

    def variant_list(self) -> list[str]:
        return self.variants.split(",")

    def validate(self) -> None:
        for spec in self.variant_list():
            try:
                variant(spec)
            except ValueError as e:
                raise UsageError(f"experiment.variants: {e}") from None
        if self.seeds < 1:
            raise UsageError("experiment.seeds must be positive")


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    pretrain: OptimConfig = OptimConfig()
    finetune: OptimConfig = OptimConfig(
        steps=1500, batch_size=32, lr=3e-3, warmup=50, weight_decay=0.0, seed=100, checkpoint_every=500
    )
    experiment: ExperimentConfig = ExperimentConfig()

    def validate(self) -> None:
        self.data.validate()
        self.pretrain.validate("pretrain")
        self.finetune.validate("finetune")
        self.experiment.validate()
        try:
            self.model.validate()
        except ValueError as e:
            raise UsageError(str(e)) from None


PRESETS = {
    # The README's command: the whole experiment on a 2-core CPU in minutes. The encoder-training variants
    # (trainable, trainable+dst) cost ~6x a frozen one per step on CPU: opt in with --experiment.variants.
    "quick": Config(experiment=ExperimentConfig(variants="frozen,oracle,probe")),
    # One GPU: larger graphs and model, longer training.
    "paper": Config(
        data=DataConfig(n_min=4, n_max=32, n_report=12, vocab=48, eval_beyond=8, eval_per_size=200),
        model=ModelConfig(width=128, heads=8),
        pretrain=OptimConfig(steps=3000, batch_size=512, lr=5e-4, warmup=300, checkpoint_every=1000),
        finetune=OptimConfig(steps=2000, batch_size=256, lr=2e-3, warmup=100, weight_decay=0.0, seed=100),
        experiment=ExperimentConfig(seeds=5, vmap_seeds=True),
    ),
    # For tests: seconds.
    "tiny": Config(
        data=DataConfig(
            families="tree_plus,small_world", n_min=3, n_max=6, n_report=4, vocab=8, eval_beyond=2, eval_per_size=8
        ),
        model=ModelConfig(width=16, heads=2),
        pretrain=OptimConfig(steps=20, batch_size=16, warmup=2, log_every=5, checkpoint_every=10),
        finetune=OptimConfig(steps=10, batch_size=16, warmup=2, log_every=5, checkpoint_every=5, seed=100),
        experiment=ExperimentConfig(seeds=2),
    ),
}


def consistency_sweep() -> list[str]:
    """The grid of DESIGN.md: no consistency, each condition alone, the strength ladder (each rung adds
    conditions to the last), all together, consistency-only, and the oracle."""
    cells = ["frozen", *(f"frozen@{c}" for c in CONDITIONS), *ladder("frozen"), "frozen@all", "consistency-only"]
    return list(dict.fromkeys([*cells, "oracle"]))  # the ladder's first rung is a single condition


SWEEPS = {"consistency": consistency_sweep}


# ---------------------------------------------------------------------------------------------------------
# Command line: every config field is an option named section.field.


def build_parser() -> Parser:
    parser = Parser(prog="train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", help=f"named config: {', '.join(PRESETS)} (default: quick)")
    parser.add_argument("--run-dir", type=Path, help="checkpoints, log, eval set (default: runs/PRESET)")
    parser.add_argument("--results-dir", type=Path, help="result files (default: results/PRESET)")
    parser.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="discard an existing run in --run-dir and replace results of a different experiment in --results-dir",
    )
    parser.add_argument(
        "--sweep",
        help=f"train and evaluate a grid of variants instead of experiment.variants: {', '.join(SWEEPS)}. Shares "
        "the run's pretraining, skips finished cells (a killed sweep resumes when run again) and writes "
        "results/PRESET-SWEEP",
    )
    parser.add_argument(
        "--distributed", action="store_true", help="multi-host: jax.distributed.initialize() (see README)"
    )
    for section in dataclasses.fields(Config):
        group = parser.add_argument_group(f"{section.name} config (defaults shown are the quick preset's)")
        quick = getattr(PRESETS["quick"], section.name)
        for f in dataclasses.fields(section.type):
            group.add_argument(
                f"--{section.name}.{f.name}",
                dest=f"{section.name}.{f.name}",
                type=_bool if isinstance(f.default, bool) else type(f.default),
                metavar=type(f.default).__name__.upper(),
                help=f"{f.metadata['help']} (quick: {getattr(quick, f.name)})",
            )
    return parser


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"'{text}' is not true or false")
    return text.lower() in ("true", "1")


def config_from_args(args) -> Config:
    if args.preset not in PRESETS:
        raise UsageError(f"unknown preset '{args.preset}' (choose from: {', '.join(PRESETS)})")
    cfg = PRESETS[args.preset]
    sections = {}
    for section in dataclasses.fields(Config):
        changes = {
            f.name: getattr(args, f"{section.name}.{f.name}")
            for f in dataclasses.fields(section.type)
            if getattr(args, f"{section.name}.{f.name}") is not None
        }
        sections[section.name] = dataclasses.replace(getattr(cfg, section.name), **changes)
    cfg = Config(**sections)
    cfg.validate()
    return cfg


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.distributed:
        jax.distributed.initialize()  # before anything touches a device: the mesh then spans every host
    try:
        cfg = config_from_args(args)
        names = cfg.experiment.variant_list()
        if args.sweep is not None:
            if args.sweep not in SWEEPS:
                raise UsageError(f"unknown sweep '{args.sweep}' (choose from: {', '.join(SWEEPS)})")
            names = SWEEPS[args.sweep]()
        run_dir = args.run_dir or Path("runs") / args.preset
        results_dir = args.results_dir or Path("results") / "-".join(filter(None, [args.preset, args.sweep]))
        if results_dir.exists() and not results_dir.is_dir():
            raise UsageError(f"--results-dir {results_dir} is not a directory")
        if not args.overwrite:  # before training; eval.py also checks the evaluation set's hash
            refuse_to_replace(results_dir / "summary.json", dataclasses.asdict(cfg))
        prepare_run_dir(run_dir, cfg, resume=args.resume or args.sweep is not None, overwrite=args.overwrite)
        results_dir.mkdir(parents=True, exist_ok=True)
    except (UsageError, OSError) as e:
        fail(parser.prog, str(e))

    enable_compilation_cache()
    import eval as evaluation  # eval.py builds on this module's configs and loaders

    try:
        pretrained = nnx.state(pretrain(cfg, run_dir), PRETRAINED)
        for name in names:
            finetune(cfg, run_dir, name, pretrained)
        summary = evaluation.evaluate_run(run_dir, results_dir, names, overwrite=args.overwrite)
    except (RunError, evaluation.EvalError) as e:
        fail(parser.prog, str(e))
    report_capability(summary["capability"])
    print(f"results: {results_dir}/summary.json, metrics.csv, *.png", file=sys.stderr)


def prepare_run_dir(run_dir: Path, cfg: Config, *, resume: bool, overwrite: bool) -> None:
    """Creates the run dir and records the config; refuses to mix a run with a different config. The list of
    variants may differ: each variant is its own phase of the run, and adding one changes no other."""
    config_file = run_dir / "config.json"
    wanted = dataclasses.asdict(cfg)
    if config_file.exists() and not overwrite:
        try:
            saved = json.loads(config_file.read_text())
        except ValueError as e:
            raise UsageError(
                f"{config_file} is not a valid run config ({e}); pass --overwrite to discard the run"
            ) from None
        if not resume:
            raise UsageError(f"{run_dir} already holds a run: pass --resume to continue it or --overwrite")
        if changed := config_changes(saved, wanted):
            raise UsageError(f"--resume with a different config than {config_file}: {', '.join(changed)}")
        return
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(config_file, wanted)


def report_capability(capability: dict) -> None:
    by_size = capability["d_st_acc_by_size"]
    print("d(s,t) accuracy by size: " + "  ".join(f"{n}:{acc:.3f}" for n, acc in by_size.items()), file=sys.stderr)
    if not capability["capability_ok"]:
        bad = [n for n, acc in by_size.items() if int(n) <= capability["n_max"] and acc < capability["threshold"]]
        print(
            f"\n*** capability_ok: false *** the pretrained model does not know d(s,t) on sizes {', '.join(bad)} "
            f"(accuracy < {capability['threshold']}). Honesty results on this run say nothing. ***\n",
            file=sys.stderr,
        )


# ---------------------------------------------------------------------------------------------------------
# Training.


class RunError(Exception):
    """A run that cannot go on (NaN loss, unreadable checkpoint); its message is one line."""


def new_model(cfg: Config, seed: int) -> PathModel:
    return PathModel(cfg.model, cfg.data.vocab, nnx.Rngs(seed))


def optimizer(opt: OptimConfig) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(0.0, opt.lr, opt.warmup, max(opt.steps, opt.warmup + 1))
    return optax.chain(optax.clip_by_global_norm(opt.clip), optax.adamw(schedule, weight_decay=opt.weight_decay))


def batch_sampler(cfg: Config, n_max: int, n_min: int | None = None, pool: int = 1):
    """Batches of sizes n_min (default data.n_min)..n_max, always padded to N: the looped encoder iterates
    n_pad times, so every phase runs it for the same number of iterations. pool > 1 evens out d(s,t)."""
    data = cfg.data
    families = tuple(data.family_list())
    return lambda key, batch_size: sample_batch(
        key,
        batch_size,
        families=families,
        n_min=n_min or data.n_min,
        n_max=n_max,
        vocab=data.vocab,
        n_pad=data.n_max,
        pool=pool,
    )


def checkpoint_manager(run_dir: Path, phase: str, create: bool = True) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=create)
    return ocp.CheckpointManager((run_dir / "checkpoints" / phase).absolute(), options=options)


def _restore(manager: ocp.CheckpointManager, step: int, **items) -> dict:
    abstract = {name: jax.tree.map(ocp.utils.to_shape_dtype_struct, item) for name, item in items.items()}
    args = ocp.args.Composite(**{name: ocp.args.StandardRestore(item) for name, item in abstract.items()})
    hook = sys.unraisablehook
    sys.unraisablehook = _ignore_closed_event_loop
    try:
        restored = manager.restore(step, args=args)
    except Exception as e:  # orbax raises many types for missing, truncated or mismatched files
        # The hook and the filter stay: reads still in flight when orbax gave up land later, up to interpreter exit.
        logging.getLogger("asyncio").addFilter(_drop_orphaned_task_errors)
        reason = (str(e).strip().splitlines() or [""])[0][:200]
        raise RunError(f"cannot restore checkpoint {manager.directory}/{step}: {type(e).__name__}: {reason}") from None
    sys.unraisablehook = hook
    return restored


def _ignore_closed_event_loop(unraisable) -> None:
    """A failed orbax restore closes its event loop while tensorstore reads are in flight; each one then
    prints 'RuntimeError: Event loop is closed' as an unraisable exception. That is noise after the real
    error, which _restore reports."""
    error = unraisable.exc_value
    if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
        sys.__unraisablehook__(unraisable)


def _drop_orphaned_task_errors(record: logging.LogRecord) -> bool:
    """The same noise through asyncio's logger: the tasks of a failed orbax restore are garbage-collected with
    their exception unread, and asyncio logs 'Task exception was never retrieved' for each, after the real
    error (which _restore reports)."""
    return not str(record.msg).startswith("Task exception was never retrieved")


def load_phase(model: PathModel, run_dir: Path, phase: str, trainable) -> PathModel:
    """Loads the final parameters a phase trained (the `trainable` part of the model) into `model`."""
    if not (run_dir / "checkpoints" / phase).is_dir():
        raise RunError(f"no checkpoint of phase '{phase}' in {run_dir}")
    manager = checkpoint_manager(run_dir, phase, create=False)
    step = manager.latest_step()
    if step is None:
        raise RunError(f"no checkpoint of phase '{phase}' in {run_dir}")
    params = nnx.state(model, trainable)
    nnx.replace_by_pure_dict(params, _restore(manager, step, params=nnx.to_pure_dict(params))["params"])
    nnx.update(model, params)
    return model


def data_mesh(devices: list | None = None) -> Mesh:
    """Every device (of every host, after jax.distributed.initialize()) on one `data` axis. Auto axis type:
    the train step states a few shardings and GSPMD propagates the rest (jax 0.10 defaults to Explicit)."""
    devices = devices or jax.devices()
    return jax.make_mesh((len(devices),), ("data",), axis_types=(AxisType.Auto,), devices=devices)


def state_shardings(tree, mesh: Mesh, shard_params: bool):
    """Where each array of a parameter or optimizer-state tree lives: replicated on every device, or with
    shard_params split along its largest dimension divisible by the device count (arrays with none stay
    replicated). Depends on shapes only, so parameters and their Adam moments get the same layout; GSPMD
    inserts the gathers a sharded parameter needs."""

    def sharding(x) -> NamedSharding:
        spec = [None] * x.ndim
        divisible = [d for d in range(x.ndim) if x.shape[d] % mesh.size == 0]
        if shard_params and divisible:
            spec[max(divisible, key=lambda d: x.shape[d])] = "data"
        return NamedSharding(mesh, P(*spec))

    return jax.tree.map(sharding, tree)


def place(tree, shard_params: bool, mesh: Mesh | None = None):
    """Puts a parameter or optimizer-state tree where a train step of the same mesh expects it."""
    mesh = mesh or data_mesh()
    return jax.device_put(tree, state_shardings(tree, mesh, shard_params))


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
):
    """A jitted step that draws its own batch on device from fold_in(data_key, step): the step number alone
    fixes the data, so a resumed run sees exactly the batches an uninterrupted one would. Built once per
    phase kind and shared by its seeds (same program, other parameters and data key). `loss_args` go to
    loss_fn traced, not baked in: steps that differ only in them (consistency weights) share one program.

    Data-parallel over `mesh` (default: every device) in the same code for one device or many: the batch
    is split over the `data` axis, parameters and optimizer state replicated or (shard_params) sharded, see
    `state_shardings`; pass them through `place` first. With `seeds=K`, one program trains K seeds at once:
    params, opt_state and data_key carry a leading axis of K, `rest` (the frozen part) is shared."""
    mesh = mesh or data_mesh()
    if batch_size % mesh.size:
        raise ValueError(f"batch_size {batch_size} is not divisible by the {mesh.size} devices")

    def update(params, opt_state, rest, batch, loss_args):
        objective = lambda p: loss_fn(nnx.merge(graphdef, p, rest), batch, *loss_args)  # noqa: E731
        (loss, acc), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, {"loss": loss, "acc": acc}

    draw = lambda key, step: sample(jax.random.fold_in(key, step), batch_size)  # noqa: E731
    batch_spec = P("data")
    if seeds is not None:
        update, draw = jax.vmap(update, in_axes=(0, 0, None, 0, None)), jax.vmap(draw, in_axes=(0, None))
        batch_spec = P(None, "data")

    def constrain(tree):
        return jax.lax.with_sharding_constraint(tree, state_shardings(tree, mesh, shard_params))

    @partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, opt_state, rest, data_key, step, *loss_args):
        if seeds is not None and jax.tree.leaves(params)[0].shape[0] != seeds:
            raise ValueError(f"train step built for {seeds} seeds, given parameters of another seed count")
        batch = jax.lax.with_sharding_constraint(draw(data_key, step), NamedSharding(mesh, batch_spec))
        params, opt_state, metrics = update(params, opt_state, rest, batch, loss_args)
        return constrain(params), constrain(opt_state), metrics

    return train_step


def fit(
    models: list[PathModel],
    trainable,
    train_step,
    tx,
    opt: OptimConfig,
    run_dir: Path,
    phases: list[str],
    seeds: list[int],
    loss_args=(),
) -> list[PathModel]:
    """Trains the `trainable` part of `models` for opt.steps steps of `train_step`, checkpointing every
    opt.checkpoint_every steps and resuming from the latest checkpoint. Model i is the phase `phases[i]`,
    its data drawn from key(seeds[i] + 1). Several models train together: `train_step` is then vmapped over
    them (make_train_step(..., seeds=K)), and each still gets its own checkpoints and log lines, so a
    vmapped run and a one-at-a-time run leave the same files. A finished phase is loaded, not retrained."""
    stacked = len(models) > 1
    splits = [nnx.split(model, trainable, ...) for model in models]
    params, rest = _join([p for _, p, _ in splits], stacked), splits[0][2]  # rest: frozen, the same for all
    params, rest = place(params, opt.shard_params), place(rest, opt.shard_params)
    opt_state = (jax.vmap(tx.init) if stacked else tx.init)(params)
    managers = [checkpoint_manager(run_dir, phase) for phase in phases]
    start = min(manager.latest_step() or 0 for manager in managers)
    if start:
        parts = []
        for i, manager in enumerate(managers):
            own, own_opt = _part(params, i, stacked), _part(opt_state, i, stacked)
            restored = _restore(manager, start, params=nnx.to_pure_dict(own), opt_state=own_opt)
            nnx.replace_by_pure_dict(own, restored["params"])
            parts.append((own, restored["opt_state"]))
        params, opt_state = (_join(list(trees), stacked) for trees in zip(*parts, strict=True))
        params, opt_state = place(params, opt.shard_params), place(opt_state, opt.shard_params)
    data_key = jax.vmap(jax.random.key)(jnp.array(seeds) + 1) if stacked else jax.random.key(seeds[0] + 1)

    log_path = run_dir / "log.jsonl"
    filter_jsonl(log_path, lambda r: r["phase"] not in phases or r["step"] <= start)  # logged after the checkpoint
    desc = phases[0] if not stacked else f"{phases[0]} (+{len(phases) - 1} seeds vmapped)"
    bar = tqdm(total=opt.steps, initial=start, desc=desc, unit="step", dynamic_ncols=True, leave=False)
    last_log, clock = start, time.perf_counter()
    for step in range(start, opt.steps):
        params, opt_state, metrics = train_step(params, opt_state, rest, data_key, step, *loss_args)
        bar.update()
        done = step + 1
        save = done % opt.checkpoint_every == 0 or done == opt.steps
        if save or done % opt.log_every == 0:
            metrics = [{k: float(v) for k, v in _part(metrics, i, stacked).items()} for i in range(len(models))]
            if not all(math.isfinite(v) for m in metrics for v in m.values()) or (save and not _all_finite(params)):
                for manager in managers:
                    manager.wait_until_finished()  # the last good checkpoint stays whole on disk
                bar.close()  # before the error, so that the error is the last line
                raise RunError(
                    f"{', '.join(phases)}: non-finite loss or parameters at step {done} ({metrics}); "
                    f"last good checkpoint kept in {managers[0].directory.parent}"
                )
        if done % opt.log_every == 0 or done == opt.steps:
            rate = opt.batch_size * len(models) * (done - last_log) / (time.perf_counter() - clock)
            last_log, clock = done, time.perf_counter()
            bar.set_postfix(loss=f"{metrics[0]['loss']:.3f}", acc=f"{metrics[0]['acc']:.3f}", ex_s=f"{rate:.0f}")
            with log_path.open("a") as f:
                for phase, m in zip(phases, metrics, strict=True):
                    f.write(json.dumps({"phase": phase, "step": done, **m, "examples_per_s": rate}) + "\n")
        if save:
            for i, manager in enumerate(managers):
                items = {
                    "params": nnx.to_pure_dict(_part(params, i, stacked)),
                    "opt_state": _part(opt_state, i, stacked),
                }
                manager.save(done, args=ocp.args.Composite(**{k: ocp.args.StandardSave(v) for k, v in items.items()}))
    bar.close()
    for i, (manager, model) in enumerate(zip(managers, models, strict=True)):
        manager.wait_until_finished()
        nnx.update(model, _part(params, i, stacked))
    return models


def _join(trees: list, stacked: bool):
    """K trees as one with a leading axis of K (vmapped training), or the single tree as it is."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees) if stacked else trees[0]


def _part(tree, i: int, stacked: bool):
    """Tree i of a stacked tree (see `_join`)."""
    return jax.tree.map(lambda x: x[i], tree) if stacked else tree


def _all_finite(tree) -> bool:
    return all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(tree))


def pretrain(cfg: Config, run_dir: Path) -> PathModel:
    """Phase 1: the encoder and d(s,t) head on sizes n_min..N."""
    model = new_model(cfg, cfg.pretrain.seed)
    tx = optimizer(cfg.pretrain)
    loss_fn = partial(d_st_loss, n_pad=cfg.data.n_max)
    graphdef = nnx.split(model, PRETRAINED, ...)[0]
    sample = batch_sampler(cfg, cfg.data.n_max, pool=cfg.data.pool)
    step = make_train_step(
        graphdef, tx, loss_fn, sample, cfg.pretrain.batch_size, shard_params=cfg.pretrain.shard_params
    )
    return fit([model], PRETRAINED, step, tx, cfg.pretrain, run_dir, ["pretrain"], [cfg.pretrain.seed])[0]


def finetune_seeds(cfg: Config) -> list[int]:
    return [cfg.finetune.seed + i for i in range(cfg.experiment.seeds)]


def variant_model(cfg: Config, pretrained: nnx.State, seed: int) -> PathModel:
    """A fresh model (heads initialised from `seed`) carrying a copy of the pretrained encoder and d(s,t)
    head. A copy, because a train step donates (frees) the buffers of the parameters it trains."""
    model = new_model(cfg, seed)
    nnx.update(model, jax.tree.map(jnp.copy, pretrained))
    return model


def finetune_sampler(cfg: Config, reporter: Variant):
    """Fine-tuning batches: {"labelled": sizes n_min..n (..N for baselines), "unlabelled": the question
    alone, labels stripped, of sizes n+1..N (n_min..N without labels)} - each only where the variant uses it."""
    data = cfg.data
    labelled = batch_sampler(cfg, data.n_max if reporter.labels_up_to_N else data.n_report)
    beyond = batch_sampler(cfg, data.n_max, n_min=data.n_report + 1 if reporter.labels else data.n_min)

    def sample(key, batch_size):
        k_labelled, k_unlabelled = jax.random.split(key)
        batches = {}
        if reporter.labels:
            batches["labelled"] = labelled(k_labelled, batch_size)
        if reporter.consistency:
            batches["unlabelled"] = unlabelled(beyond(k_unlabelled, batch_size))
        return batches

    return sample


def finetune(cfg: Config, run_dir: Path, name: str, pretrained: nnx.State) -> None:
    """Phase 3, every seed: a d(s,u) reporter trained as the variant `name` says. Seeds train one after
    another, or all at once as one vmapped program with experiment.vmap_seeds (faster on an accelerator)."""
    reporter = variant(name)
    trainable = reporter.trainable()
    tx = optimizer(cfg.finetune)
    loss_fn = partial(finetune_loss, variant=reporter, n_pad=cfg.data.n_max, vocab=cfg.data.vocab)
    seeds = finetune_seeds(cfg)
    groups = [seeds] if cfg.experiment.vmap_seeds and len(seeds) > 1 else [[seed] for seed in seeds]
    step = None
    for group in groups:
        models = [variant_model(cfg, pretrained, seed) for seed in group]
        if step is None:  # one compiled step serves every group of seeds
            graphdef = nnx.split(models[0], trainable, ...)[0]
            step = make_train_step(
                graphdef,
                tx,
                loss_fn,
                finetune_sampler(cfg, reporter),
                cfg.finetune.batch_size,
                shard_params=cfg.finetune.shard_params,
                seeds=len(group) if len(group) > 1 else None,
            )
        phases = [f"{name}-seed{seed}" for seed in group]
        fit(models, trainable, step, tx, cfg.finetune, run_dir, phases, group, (reporter.weights(),))


if __name__ == "__main__":
    main()
