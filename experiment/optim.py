"""The optimizer of every training phase and its learning-rate schedule (logged beside the loss)."""

import optax

from configs import OptimConfig


def schedule(opt: OptimConfig) -> optax.Schedule:
    """Linear warmup from 0 to opt.lr, then cosine decay to 0 at opt.steps."""
    return optax.warmup_cosine_decay_schedule(0.0, opt.lr, opt.warmup, max(opt.steps, opt.warmup + 1))


def optimizer(opt: OptimConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(opt.clip), optax.adamw(schedule(opt), weight_decay=opt.weight_decay))
