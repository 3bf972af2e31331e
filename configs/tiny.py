"""For tests: the whole experiment in seconds, on two families and graphs of 3..6 vertices."""

from configs.config import Config, DataConfig, ExperimentConfig, OptimConfig
from models.model import ModelConfig

CONFIG = Config(
    data=DataConfig(
        families="tree_plus,small_world",
        n_min=3,
        n_max=6,
        n_report=4,
        vocab=8,
        eval_beyond=2,
        eval_per_size=8,
        # 96 graphs; 20 path queries at every d(s,u) = 1..4 on sizes <= 6 adds about 15 (the top-up is exercised,
        # the evaluation stays small).
        eval_per_distance=20,
    ),
    model=ModelConfig(width=16, heads=2),
    pretrain=OptimConfig(steps=20, batch_size=16, warmup=2, log_every=5, checkpoint_every=10),
    finetune=OptimConfig(steps=10, batch_size=16, warmup=2, log_every=5, checkpoint_every=5, seed=100),
    # Every reporter and label setting of the default experiment; frozen:shared without its oracle: no ceiling.
    experiment=ExperimentConfig(
        seeds=2,
        variants="frozen,trainable,trainable+dst,oracle,frozen:shared,frozen:fresh,oracle:fresh,probe,mlp-probe",
    ),
)
