"""The experiment's configuration: frozen dataclasses, one section per concern, each field with its help text
(train.py turns every field into an option --SECTION.FIELD). Presets are small declarations in this package."""

import dataclasses
import math

import jax

from common.cli import UsageError
from graphgen.memory import (
    TooLarge,
    generator_bytes,
    gigabytes,
    largest_pad,
    largest_square,
    memory_budget,
    refuse_unless_fits,
    square_bytes,
)
from graphgen.overseers import OVERSEERS
from graphgen.splits import Split, parse_split
from models.consistency import CONDITIONS, SELF_TRAINING
from models.model import ModelConfig
from models.objectives import DEFAULT_HEAD, REPORT_HEADS, VARIANTS, variant


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
    eval_per_distance: int = _field(
        100,
        "path queries wanted at every d(s,u) = 1..3N/4 on sizes <= N: graphs with a long d(s,t) are added to the "
        "evaluation set (its top-up stratum, counted by distance only) until there are; 0 = none",
    )
    pool: int = _field(8, "pretraining examples drawn per one kept, to even out distances d(s,t); 1 = off")
    finetune_pool: int = _field(
        8, "fine-tuning's labelled examples drawn per one kept, to even out distances d(s,t) (as data.pool); 1 = off"
    )
    split: str = _field(
        "size",
        "which queries the reporter is checked on (labelled), which held out: size (labels on sizes <= n), "
        "family:X[:A+B] (labels on every family but X, or on A and B only), distance:K (labels on d(s,u) <= K), "
        "offpath (labels on the s-t path, held out: every other vertex); a variant's ~SPLIT overrides it",
    )
    overseer: str = _field(
        "",
        "a simulated human's answers o(s,x) (graphgen/overseers.py: "
        f"{', '.join(OVERSEERS)}), equal to d on sizes <= n: pretraining learns them beside d(s,t) and the "
        "evaluation asks which of the two a reporter says where they differ; '' = none",
    )
    learn_overseer: bool = _field(
        True, "with data.overseer: pretraining learns o(s,t) too (false: the control, o only labels the evaluation)"
    )

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
        for name in ("pool", "finetune_pool"):
            if getattr(self, name) < 1:
                raise UsageError(f"data.{name} must be positive, got {getattr(self, name)}")
        if self.eval_beyond < 0 or self.eval_per_size < 1 or self.eval_per_distance < 0:
            raise UsageError("data.eval_beyond and data.eval_per_distance must be >= 0 and data.eval_per_size >= 1")
        self.parsed_split()
        if self.overseer and self.overseer not in OVERSEERS:
            raise UsageError(f"unknown overseer '{self.overseer}' in data.overseer (known: {', '.join(OVERSEERS)})")
        if self.overseer and self.parsed_split().kind != "size":
            raise UsageError(
                f"data.overseer needs data.split 'size' (it equals d on the checked sizes), got '{self.split}'"
            )

    def learned_overseer(self) -> str:
        """The overseer whose o(s,t) pretraining learns beside d(s,t): data.overseer if learn_overseer, else ''."""
        return self.overseer if self.learn_overseer else ""

    def parsed_split(self, text: str | None = None) -> Split:
        """data.split (or the split `text`), checked against data.families; UsageError (one line) if invalid."""
        try:
            return parse_split(text or self.split, self.family_list())
        except ValueError as e:
            raise UsageError(f"data.split: {e}" if text is None else str(e)) from None

    def eval_sizes(self) -> tuple[int, int]:
        return self.n_min, self.n_max + self.eval_beyond

    def eval_longest(self) -> int:
        """The longest d(s,u) at which the evaluation set holds data.eval_per_distance path queries: 3N/4."""
        return 3 * self.n_max // 4


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
    draw_ahead: int = _field(
        1,
        "batches drawn per generator call: on an accelerator a larger draw costs little more than one (its BFS "
        "loops run level by level), so the generator keeps up; every step's batch is the same for any value",
    )

    def validate(self, section: str) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "draw_ahead"):
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
        "frozen,trainable,trainable+dst,oracle,trainable-oracle,"
        "frozen:shared,oracle:shared,frozen:fresh,oracle:fresh,probe,mlp-probe",
        f"comma-separated report variants: {', '.join(VARIANTS)}; the decoder-query ones optionally with a head "
        f"design as BASE:HEAD ({', '.join(REPORT_HEADS)}; default {DEFAULT_HEAD}) and with consistency losses on "
        f"unlabelled sizes n+1..N as BASE@COND[=WEIGHT]+COND... (e.g. frozen:shared@range+bellman=0.5; "
        f"conditions: {', '.join(CONDITIONS)}; 'all' = every check, i.e. all but the self-training "
        f"{', '.join(sorted(SELF_TRAINING))}, whose weight ramps up over the first fifth of fine-tuning)",
    )
    seeds: int = _field(3, "fine-tuning seeds per variant (pretraining is shared)")
    vmap_seeds: bool = _field(
        False, "train a variant's seeds as one vmapped program: faster on an accelerator, slower on a CPU"
    )

    def variant_list(self) -> list[str]:
        return self.variants.split(",")

    def validate(self, data: DataConfig) -> None:
        for spec in self.variant_list():
            try:
                variant(spec)
            except ValueError as e:
                raise UsageError(f"experiment.variants: {e}") from None
            if "~" in spec:  # its families must be the run's
                data.parsed_split(spec.partition("~")[2])
                if data.overseer:
                    raise UsageError(
                        f"experiment.variants: '{spec}' has a split of its own; data.overseer needs 'size'"
                    )
            if variant(spec).head == "warm-overseer" and not data.learned_overseer():
                raise UsageError(
                    f"experiment.variants: '{spec}' starts from the overseer's question: needs data.overseer"
                )
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
        self.experiment.validate(self.data)
        self.check_memory()
        try:
            self.model.validate()
        except ValueError as e:
            raise UsageError(str(e)) from None

    def check_memory(self) -> None:
        """UsageError (one line, naming the limit) if a train step's generator arrays, one graph of the largest
        evaluated size, or a batch's dense adjacency over the ids would not fit on a device: refused up front,
        not as an out-of-memory traceback minutes into the run."""
        budget, data = memory_budget(), self.data
        n_max, vocab = data.n_max, data.vocab
        seeds = self.experiment.seeds if self.experiment.vmap_seeds else 1
        steps = {
            "pretraining": (
                self.pretrain.batch_size * data.pool * self.pretrain.draw_ahead,
                "pretrain.batch_size, data.pool or pretrain.draw_ahead",
            ),
            "fine-tuning": (  # labelled (drawn from a pool) + unlabelled
                (data.finetune_pool + 1) * self.finetune.batch_size * seeds * self.finetune.draw_ahead,
                "finetune.batch_size or finetune.draw_ahead or data.finetune_pool",
            ),
        }
        for phase, (count, knobs) in steps.items():
            per_device = -(-count // jax.device_count())
            if (need := generator_bytes(per_device, n_max, vocab)) > budget:
                raise UsageError(
                    f"data.n_max = {n_max}: a {phase} step draws {count} graphs padded to {n_max} vertices, about "
                    f"{gigabytes(need)} of generator arrays per device, and this device has {gigabytes(budget)}: "
                    f"{_largest_n(per_device, budget, vocab)} (or lower {knobs})"
                )
        # The evaluation set is drawn a graph at a time if need be, up to N + eval_beyond vertices.
        try:
            refuse_unless_fits(1, data.eval_sizes()[1], vocab, budget)
        except TooLarge as e:
            raise UsageError(f"data.n_max + data.eval_beyond = {data.eval_sizes()[1]}: {e}") from None
        # Every step holds at least one dense (vocab + 1)^2 adjacency per graph of its batch on a device.
        batch = -(-max(self.pretrain.batch_size, self.finetune.batch_size) // jax.device_count())
        if (need := square_bytes(batch, vocab)) > budget:
            raise UsageError(
                f"data.vocab = {vocab}: a batch of {batch} graphs holds at least {gigabytes(need)} of dense "
                f"(vocab + 1)^2 adjacency per device, and this device has {gigabytes(budget)}: the largest vocab "
                f"that fits is {largest_square(batch, budget)}"
            )

    def replace(self, **sections: dict) -> "Config":
        """This config with some fields changed: replace(data={"n_max": 20}) changes data.n_max only."""
        return dataclasses.replace(
            self, **{name: dataclasses.replace(getattr(self, name), **fields) for name, fields in sections.items()}
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "Config":
        """The inverse of to_dict (raises KeyError or TypeError on a missing section or unknown field); a field the
        dict lacks is what a run did before the field existed (`BEFORE_FIELD`, else the field's default)."""
        raw = {s: {**BEFORE_FIELD.get(s, {}), **fields} for s, fields in raw.items()}
        return cls(**{section.name: section.type(**raw[section.name]) for section in sections()})


# Fields whose default is not what runs made before them did, and the value such a run's config stands for: the
# fine-tuning pool and the long-distance top-up of the evaluation set (issue #32) came later and default on.
BEFORE_FIELD = {"data": {"finetune_pool": 1, "eval_per_distance": 0}}


def _largest_n(count: int, budget: int, vocab: int) -> str:
    largest = largest_pad(count, budget, vocab)
    return f"the largest N that fits is {largest}" if largest >= 2 else f"no N fits with data.vocab = {vocab}"


def sections() -> tuple[dataclasses.Field, ...]:
    """The config's sections (data, model, ...), each a dataclass of fields."""
    return dataclasses.fields(Config)


def comparable(config: dict) -> dict:
    """A config dict without experiment.variants: each variant is a phase of its own, and a run that trains
    more variants (a sweep) on the same pretraining is still the same experiment."""
    return {
        section: {k: v for k, v in fields.items() if (section, k) != ("experiment", "variants")}
        for section, fields in config.items()
    }


def config_changes(old: dict, new: dict) -> list[str]:
    """Dotted names (section.field) of the config fields whose values differ between two config dicts, but
    for experiment.variants (see `comparable`). A field one of them lacks (written before the field existed)
    counts as what that run did: its default, or its `BEFORE_FIELD` value."""
    defaults = Config().to_dict()
    old, new = (
        comparable({s: {**defaults.get(s, {}), **BEFORE_FIELD.get(s, {}), **fields} for s, fields in c.items()})
        for c in (old, new)
    )
    names = {(s, k) for cfg in (old, new) for s, fields in cfg.items() for k in fields}
    return sorted(f"{s}.{k}" for s, k in names if old.get(s, {}).get(k) != new.get(s, {}).get(k))
