"""The experiment as a library: the run directory, training, prediction, metrics, results and plots.
train.py and eval.py are its command lines. Imports run one way: rundir <- mesh <- fit <- phases (training);
rundir, predict, metrics, results, plots <- evaluate (evaluation)."""
