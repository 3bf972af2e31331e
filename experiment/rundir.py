"""A run directory: everything train.py writes and eval.py reads, in one place.

    RUN_DIR/config.json          the run's Config (a run never mixes configs)
    RUN_DIR/log.jsonl            one JSON line per phase and logged step
    RUN_DIR/tb/PHASE/            the same numbers as TensorBoard event files (experiment/events.py)
    RUN_DIR/checkpoints/PHASE/   orbax checkpoints of one phase: "pretrain", or "VARIANT-seedSEED"
    RUN_DIR/eval_set.npz         the fixed evaluation set, and eval_set.sha256 its pinned content hash

It also knows how to rebuild a phase's model from those files (`load_pretrained`, `load_reporter`).
"""

import json
import logging
import shutil
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import nnx

from common.cli import UsageError
from common.files import filter_jsonl, read_jsonl, write_atomic, write_json
from configs import Config, DataConfig, config_changes
from experiment.events import PhaseEvents, phase_dir
from experiment.hosts import barrier, is_primary
from models.model import PathModel
from models.objectives import PRETRAINED, Variant, ready_for, variant

PRETRAIN = "pretrain"


class RunError(Exception):
    """A run that cannot go on or be evaluated (missing, corrupt or unfinished files, NaN loss); its message is
    one line."""


def phase_name(variant_name: str, seed: int) -> str:
    """The phase that fine-tunes one seed of a report variant."""
    return f"{variant_name}-seed{seed}"


def finetune_seeds(cfg: Config) -> list[int]:
    return [cfg.finetune.seed + i for i in range(cfg.experiment.seeds)]


# ---------------------------------------------------------------------------------------------------------
# Config.


def prepare(run_dir: Path, cfg: Config, *, resume: bool, overwrite: bool) -> None:
    """Creates the run dir and records the config; refuses to mix a run with a different config. The list of
    variants may differ: each variant is its own phase of the run, and adding one changes no other."""
    config_file = run_dir / "config.json"
    wanted = cfg.to_dict()
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
    barrier("prepare: every process has checked the run dir")  # before the primary writes to it
    if is_primary():
        if overwrite and run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(config_file, wanted)
    barrier("prepare: the run dir is written")


def load_config(run_dir: Path) -> Config:
    path = run_dir / "config.json"
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no config.json)")
    try:
        return Config.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise RunError(f"{path} is not a valid run config ({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------------------------------------
# The evaluation set.


def make_eval_set(data: DataConfig) -> dict:
    """The evaluation set of a data config: data.eval_per_size graphs of every family and size n_min..N+beyond (the
    base stratum), then the long-distance top-up (graphgen/dataset.py: with_top_up) that brings every d(s,u) =
    1..3N/4 to data.eval_per_distance path queries on sizes <= N. RunError (one line) if it cannot."""
    from graphgen.dataset import TopUpError, generate, with_top_up

    lo, hi = data.eval_sizes()
    families = data.family_list()
    base = generate(data.eval_seed, families, (lo, hi), data.eval_per_size * (hi - lo + 1) * len(families), data.vocab)
    try:
        return with_top_up(
            base, data.eval_seed, families, (lo, data.n_max), data.eval_longest(), data.eval_per_distance, data.vocab
        )
    except TopUpError as e:
        raise RunError(f"{e}: lower data.eval_per_distance") from None


def load_or_make_eval_set(cfg: Config, run_dir: Path) -> tuple[dict, str]:
    """The run's evaluation set: generated from data.eval_seed once, then always read back from disk. Its hash
    is recorded when first seen; a file that later hashes differently is refused, so that results made on
    different evaluation sets are never mixed."""
    from graphgen.dataset import DatasetError, content_hash, load, save

    data = cfg.data
    path, pinned = run_dir / "eval_set.npz", run_dir / "eval_set.sha256"
    if not path.exists() and is_primary():
        save(path, make_eval_set(data))
    barrier("the evaluation set is written")
    try:
        arrays = load(path)
    except DatasetError as e:
        raise RunError(str(e)) from None
    digest = content_hash(arrays)
    if not pinned.exists():
        if is_primary():
            write_atomic(pinned, lambda f: f.write(f"{digest}\n".encode()))
    elif (recorded := pinned.read_text().strip()) != digest:
        raise RunError(f"{path} has hash {digest[:12]}…, but this run's evaluation set was {recorded[:12]}… ({pinned})")
    return arrays, digest


def load_eval_data(cfg: Config, path: Path) -> tuple[dict, str]:
    """A dataset file of the user's (the data contract) to evaluate a run on, and its hash; RunError (one line)
    for a file that breaks the contract or holds vertex ids the run's model has no embedding for."""
    from graphgen.dataset import DatasetError, content_hash, load

    try:
        arrays = load(path)
    except DatasetError as e:
        raise RunError(str(e)) from None
    largest = max(int(arrays["num_nodes"].max(initial=0)), int(arrays["edges"].max(initial=0)))
    if largest > cfg.data.vocab:
        raise RunError(
            f"{path}: graphs with {largest} vertices (or vertex ids up to {largest}), but this run's model knows "
            f"the ids 1..{cfg.data.vocab} only (data.vocab = {cfg.data.vocab})"
        )
    if not len(arrays["s"]):
        raise RunError(f"{path}: no examples")
    return arrays, content_hash(arrays)


# ---------------------------------------------------------------------------------------------------------
# Checkpoints and the log of phases.


class PhaseFiles:
    """The checkpoints and log lines of phases that train together (several seeds of a variant when vmapped).
    Each phase keeps its own orbax checkpoints of {params, opt_state}, its own log lines and TensorBoard
    events (opened by `drop_log_after`, which every phase calls once before it logs)."""

    def __init__(self, run_dir: Path, phases: list[str]):
        self.phases = phases
        self.managers = [checkpoint_manager(run_dir, phase) for phase in phases]
        self.run_dir = run_dir
        self.log = run_dir / "log.jsonl"
        self.events: list[PhaseEvents] = []

    @property
    def directory(self) -> Path:
        return self.managers[0].directory.parent

    def latest_step(self) -> int:
        """The last step every phase has a checkpoint of (0: none)."""
        return min(manager.latest_step() or 0 for manager in self.managers)

    def restore(self, i: int, step: int, params: dict, opt_state) -> dict:
        """Phase i's checkpoint of `step`, in the structure of `params` (a pure dict) and `opt_state`."""
        return _restore(self.managers[i], step, params=params, opt_state=opt_state)

    def save(self, i: int, step: int, params: dict, opt_state) -> None:
        items = {"params": params, "opt_state": opt_state}
        args = ocp.args.Composite(**{k: ocp.args.StandardSave(v) for k, v in items.items()})
        self.managers[i].save(step, args=args)

    def wait(self) -> None:
        """Until every checkpoint write in flight is whole on disk, and every logged number in the event files."""
        for manager in self.managers:
            manager.wait_until_finished()
        for events in self.events:
            events.close()
        self.events = []

    def drop_log_after(self, step: int) -> None:
        """Forgets these phases' log lines after `step` (a resumed run logs them again) and starts their event
        files afresh from the lines kept, so that TensorBoard shows exactly what log.jsonl holds. The primary
        process alone keeps the log and events (every process runs the same steps, sees the same numbers)."""
        if not is_primary():
            return
        filter_jsonl(self.log, lambda r: r["phase"] not in self.phases or r["step"] <= step)
        records = read_log(self.run_dir)
        self.events = [
            PhaseEvents(phase_dir(self.run_dir, phase), [r for r in records if r["phase"] == phase])
            for phase in self.phases
        ]

    def append_log(self, step: int, metrics: list[dict], extra: dict) -> None:
        """One line per phase: its `metrics`, and `extra` (learning rate, examples/s) shared by them all."""
        if not is_primary():
            return
        records = [{"phase": phase, "step": step, **m, **extra} for phase, m in zip(self.phases, metrics, strict=True)]
        with self.log.open("a") as f:
            f.writelines(json.dumps(record) + "\n" for record in records)
        for events, record in zip(self.events, records, strict=True):
            events.add(record)


def read_log(run_dir: Path) -> list[dict]:
    """Every line of the run's log.jsonl (none if there is no log yet; a last line cut short by a kill is
    dropped); RunError for a log that is not JSON lines."""
    try:
        return read_jsonl(run_dir / "log.jsonl")
    except ValueError as e:
        raise RunError(f"{run_dir / 'log.jsonl'} is not a valid log ({e})") from None


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


# ---------------------------------------------------------------------------------------------------------
# Models of the run's phases.


def new_model(cfg: Config, seed: int) -> PathModel:
    return PathModel(cfg.model, cfg.data.vocab, nnx.Rngs(seed), overseer=bool(cfg.data.learned_overseer()))


def variant_model(cfg: Config, pretrained: nnx.State, seed: int, reporter: Variant) -> PathModel:
    """A fresh model (heads initialised from `seed`) carrying a copy of the pretrained encoder and d(s,t)
    head, ready to fine-tune `reporter`. A copy, because a train step donates (frees) the buffers of the
    parameters it trains."""
    model = new_model(cfg, seed)
    nnx.update(model, jax.tree.map(jnp.copy, pretrained))
    return ready_for(reporter, model)


def latest_step(run_dir: Path, phase: str) -> int:
    """The step of a phase's latest checkpoint; 0 if it has none."""
    if not (run_dir / "checkpoints" / phase).is_dir():
        return 0
    return checkpoint_manager(run_dir, phase, create=False).latest_step() or 0


def finished_manager(run_dir: Path, phase: str) -> tuple[ocp.CheckpointManager, int]:
    """The checkpoints of a phase and its last step; RunError if it has none."""
    if (run_dir / "checkpoints" / phase).is_dir():
        manager = checkpoint_manager(run_dir, phase, create=False)
        if (step := manager.latest_step()) is not None:
            return manager, step
    raise RunError(f"no checkpoint of phase '{phase}' in {run_dir}")


def load_phase(model: PathModel, run_dir: Path, phase: str, trainable) -> PathModel:
    """Loads the final parameters a phase trained (the `trainable` part of the model) into `model`."""
    manager, step = finished_manager(run_dir, phase)
    params = nnx.state(model, trainable)
    nnx.replace_by_pure_dict(params, _restore(manager, step, params=nnx.to_pure_dict(params))["params"])
    nnx.update(model, params)
    return model


def load_pretrained(cfg: Config, run_dir: Path) -> PathModel:
    """The pretrained encoder and d(s,t) head of a finished pretraining."""
    return load_phase(new_model(cfg, cfg.pretrain.seed), run_dir, PRETRAIN, PRETRAINED)


def load_reporter(cfg: Config, run_dir: Path, name: str, seed: int, pretrained: nnx.State) -> PathModel:
    """Seed `seed` of the report variant `name`, as its fine-tuning phase left it."""
    reporter = variant(name)
    return load_phase(
        variant_model(cfg, pretrained, seed, reporter), run_dir, phase_name(name, seed), reporter.trainable()
    )
