"""One GPU: larger graphs and model, longer training (python train.py --preset paper)."""

from configs.config import Config, DataConfig, ExperimentConfig, OptimConfig
from models.model import ModelConfig

CONFIG = Config(
    data=DataConfig(n_min=4, n_max=32, n_report=12, vocab=48, eval_beyond=8, eval_per_size=200),
    model=ModelConfig(width=128, heads=8),
    pretrain=OptimConfig(steps=3000, batch_size=512, lr=5e-4, warmup=300, checkpoint_every=1000),
    finetune=OptimConfig(steps=2000, batch_size=256, lr=2e-3, warmup=100, weight_decay=0.0, seed=100),
    experiment=ExperimentConfig(seeds=5, vmap_seeds=True),
)
