"""N/n = 4 on a 2-core CPU (python train.py --preset scale): pretraining on sizes 4..24, report-head labels on
sizes <= 6, the reporter on the frozen encoder and with the encoder trained, each beside its ceiling, and every
consistency check. The issue asked for N = 32 with labels on sizes <= 8 in 90 minutes; the graph encoder's step
grows as loops x vocab^2 ~ n^3 on this CPU (bench/README.md), which puts N = 32's pretraining alone past that
budget, so this is the fallback it named: N = 24, n = 6."""

from configs.config import Config

CONFIG = Config().replace(
    data={"n_max": 24, "n_report": 6, "vocab": 28, "eval_per_size": 24},
    pretrain={"steps": 1600, "warmup": 150},
    finetune={"steps": 1000},
    experiment={"variants": "frozen,oracle,trainable,trainable-oracle,frozen@all"},
)
