"""``jtcse sweep``: a hyperparameter search over config keys with Optuna (docs/sweep.md).

space (the TOML search space, checked against the config schema), objective (one trial = one training run,
dev scores to the pruner), strategy (sampler, pruner), storage (RDB storage with heartbeats, the output
folder), workers (the claim/train/tell loop, local worker processes), progress (one line per trial),
report + figures (sweep.md/json, best.toml, PNGs), confirm (best vs base over seeds), run (the command).
"""
