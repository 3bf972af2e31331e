"""The experiment's training phases: (1) pretrain the encoder and d(s,t) head on sizes n_min..N; (2) for every
report variant and seed, fine-tune a d(s,u) reporter with labels where the variant has them, plus any
consistency losses on unlabelled sizes n+1..N."""

import dataclasses
from functools import partial
from pathlib import Path

import jax
from flax import nnx

from configs import Config
from experiment.fit import fit, make_train_step
from experiment.optim import optimizer
from experiment.rundir import PRETRAIN, finetune_seeds, latest_step, new_model, phase_name, variant_model
from graphgen import sample_batch
from graphgen.splits import parse_split
from models.model import PathModel
from models.objectives import PRETRAINED, Variant, finetune_loss, pretrain_loss, unlabelled, variant


@partial(
    jax.tree_util.register_dataclass, data_fields=["n_min", "n_max"], meta_fields=["families", "vocab", "n_pad", "pool"]
)
@dataclasses.dataclass(frozen=True)
class BatchSampler:
    """Batches of sizes n_min..n_max, padded to n_pad, `sample_batch`'s arguments as a value. A pytree whose
    size range is its data and the rest its static part: samplers that differ only in their sizes draw with one
    compiled program (see `drawer`), whichever phase built them."""

    families: tuple[str, ...]
    n_min: int
    n_max: int
    vocab: int
    n_pad: int
    pool: int = 1

    def __call__(self, key: jax.Array, batch_size: int):
        return sample_batch(key, batch_size, **dataclasses.asdict(self))


def batch_sampler(
    cfg: Config, n_max: int, n_min: int | None = None, pool: int = 1, families: list[str] | None = None
) -> BatchSampler:
    """Batches of sizes n_min (default data.n_min)..n_max of `families` (default data.families), always padded
    to N: the looped encoder iterates n_pad times, so every phase runs it for the same number of iterations.
    pool > 1 evens out d(s,t)."""
    data = cfg.data
    families = tuple(families or data.family_list())
    return BatchSampler(families, n_min or data.n_min, n_max, data.vocab, data.n_max, pool)


def pretrain(cfg: Config, run_dir: Path) -> PathModel:
    """Phase 1: the encoder and d(s,t) head on sizes n_min..N (and the head's o(s,t), with a learned overseer)."""
    model = new_model(cfg, cfg.pretrain.seed)
    tx = optimizer(cfg.pretrain)
    data = cfg.data
    loss_fn = partial(pretrain_loss, n_pad=data.n_max, overseer=data.learned_overseer(), reach=data.n_report)
    graphdef = nnx.split(model, PRETRAINED, ...)[0]
    sample = batch_sampler(cfg, cfg.data.n_max, pool=cfg.data.pool)
    step = make_train_step(
        (graphdef,),
        tx,
        (loss_fn,),
        sample,
        cfg.pretrain.batch_size,
        shard_params=cfg.pretrain.shard_params,
        draw_ahead=cfg.pretrain.draw_ahead,
    )
    return fit([[model]], [PRETRAINED], step, tx, cfg.pretrain, run_dir, [[PRETRAIN]], [cfg.pretrain.seed])[0][0]


@partial(jax.tree_util.register_dataclass, data_fields=["sampler"], meta_fields=["labelled", "twins"])
@dataclasses.dataclass(frozen=True)
class FinetunePart:
    """One part of a fine-tuning batch, from its own share of the step's key (split in three: labelled
    examples, unlabelled questions, their twins). A pytree like BatchSampler: the labelled part of `frozen`
    and of `frozen@all` is one compiled program, and so is the unlabelled part of every consistency variant."""

    sampler: BatchSampler
    labelled: bool
    twins: tuple[str, ...] = ()  # second presentations of each unlabelled question (graphgen/twins.py)

    def __call__(self, key: jax.Array, batch_size: int):
        k_labelled, k_unlabelled, k_twins = jax.random.split(key, 3)
        if self.labelled:
            return self.sampler(k_labelled, batch_size)
        graphs = self.sampler(k_unlabelled, batch_size)
        return unlabelled(graphs, k_twins, self.twins, self.sampler.vocab)


@dataclasses.dataclass(frozen=True)
class FinetuneSampler:
    """Fine-tuning batches: {"labelled": ..., "unlabelled": the question alone, labels stripped}, each only
    where its sampler is given. The train step draws each part by its own program (`parts`)."""

    labelled: BatchSampler | None
    unlabelled: BatchSampler | None
    twins: tuple[str, ...] = ()

    def parts(self) -> dict[str, FinetunePart]:
        parts = {}
        if self.labelled is not None:
            parts["labelled"] = FinetunePart(self.labelled, labelled=True)
        if self.unlabelled is not None:
            parts["unlabelled"] = FinetunePart(self.unlabelled, labelled=False, twins=self.twins)
        return parts

    def __call__(self, key: jax.Array, batch_size: int) -> dict:
        return {name: part(key, batch_size) for name, part in self.parts().items()}


def with_split(cfg: Config, reporter: Variant) -> Variant:
    """The variant with its split resolved: its own `~SPLIT`, else the run's data.split."""
    return dataclasses.replace(reporter, split=reporter.split or parse_split(cfg.data.split))


def finetune_sampler(cfg: Config, reporter: Variant) -> FinetuneSampler:
    """Labelled batches where the variant's split (its own, else data.split) checks: sizes n_min..n of every
    family (size), every size <= N of the labelled families (family), every size <= N (distance, offpath:
    `labelled_queries` picks the queries); everywhere <= N for the baselines; their d(s,t) evened out from a
    pool of data.finetune_pool examples per one kept, as pretraining's (long labelled distances are otherwise
    rare: the oracle, labelled on every size <= N, fell to 0.38 at d = 12 with pool 1 on quick). Unlabelled
    batches where labels are withheld, for the consistency losses: sizes n+1..N (size), the held-out family
    (family), every size <= N (distance, offpath), or everything for a variant without labels."""
    data, split, families = cfg.data, with_split(cfg, reporter).split, cfg.data.family_list()
    if reporter.labels_up_to_N:
        labelled = batch_sampler(cfg, data.n_max, pool=data.finetune_pool)
    else:
        n_max = data.n_report if split.label_sizes_to_n() else data.n_max
        labelled = batch_sampler(cfg, n_max, pool=data.finetune_pool, families=split.labelled_families(families))
    if not reporter.labels:
        withheld = batch_sampler(cfg, data.n_max)
    elif split.label_sizes_to_n():
        withheld = batch_sampler(cfg, data.n_max, n_min=data.n_report + 1)
    else:
        withheld = batch_sampler(cfg, data.n_max, families=split.unlabelled_families(families))
    return FinetuneSampler(
        labelled if reporter.labels else None, withheld if reporter.consistency else None, reporter.twins()
    )


def finetune(cfg: Config, run_dir: Path, names: list[str], pretrained: nnx.State) -> None:
    """Phase 2, every variant of `names` and every seed: a d(s,u) reporter trained as the variant says.
    Variants that draw the same batches (`finetune_sampler`) on the frozen encoder, at the same step of their
    training, train together as members of one program (`make_train_step`), which encodes each batch once for
    all of them; the others train one at a time. Seeds train one after another, or all at once as one vmapped
    program with experiment.vmap_seeds (faster on an accelerator)."""
    for group in member_groups(cfg, run_dir, names):
        _finetune_members(cfg, run_dir, group, pretrained)


def member_groups(cfg: Config, run_dir: Path, names: list[str]) -> list[list[str]]:
    """`names` in groups that train together (see `finetune`), in the order of their first members: variants
    whose encoder trains alone, the others by sampler and by the step every seed's checkpoints have reached
    (so that a killed group resumes as one, and a finished variant never trains again beside a new one)."""
    groups: dict = {}
    for name in names:
        reporter = with_split(cfg, variant(name))
        step = min(latest_step(run_dir, phase_name(name, seed)) for seed in finetune_seeds(cfg))
        key = (name,) if reporter.train_encoder else (finetune_sampler(cfg, reporter), step)
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def _finetune_members(cfg: Config, run_dir: Path, names: list[str], pretrained: nnx.State) -> None:
    """The variants `names` (one, or several on the frozen encoder that draw the same batches), every seed."""
    reporters = [with_split(cfg, variant(name)) for name in names]
    trainables = [reporter.trainable() for reporter in reporters]
    tx = optimizer(cfg.finetune)
    losses = tuple(
        partial(finetune_loss, variant=reporter, n_pad=cfg.data.n_max, vocab=cfg.data.vocab) for reporter in reporters
    )
    seeds = finetune_seeds(cfg)
    groups = [seeds] if cfg.experiment.vmap_seeds and len(seeds) > 1 else [[seed] for seed in seeds]
    fixed = tuple((reporter.weights(),) for reporter in reporters)  # the same every step unless one ramps up

    def loss_args(step: int) -> tuple:
        if not any(reporter.ramps() for reporter in reporters):
            return fixed
        return tuple((reporter.weights(step / cfg.finetune.steps),) for reporter in reporters)

    step = None
    for group in groups:
        models = [[variant_model(cfg, pretrained, seed, reporter) for seed in group] for reporter in reporters]
        if step is None:  # one compiled step serves every group of seeds
            graphdefs = tuple(
                nnx.split(row[0], trainable, ...)[0] for row, trainable in zip(models, trainables, strict=True)
            )
            step = make_train_step(
                graphdefs,
                tx,
                losses,
                finetune_sampler(cfg, reporters[0]),
                cfg.finetune.batch_size,
                shard_params=cfg.finetune.shard_params,
                seeds=len(group) if len(group) > 1 else None,
                draw_ahead=cfg.finetune.draw_ahead,
            )
        phases = [[phase_name(name, seed) for seed in group] for name in names]
        fit(models, trainables, step, tx, cfg.finetune, run_dir, phases, group, loss_args, common=PRETRAINED)
