"""The experiment as a library; train.py and eval.py are its command lines.

Training: rundir (the run directory) <- fit (train step and loop, with mesh, optim and events) <- phases.
Evaluation: predict and metrics (every reported number) <- evaluate, which writes through results (summary,
CSV, plots); summary reads a summary.json back for results, compare and index."""
