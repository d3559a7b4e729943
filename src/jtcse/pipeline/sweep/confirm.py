"""``--confirm-seeds S1,S2,S3``: the best trial's config and the base config, each retrained with every seed,
and the mean and standard deviation of each: whether the sweep's gain outlives the seed it was found with.
Runs go to ``OUT/confirm/{best,base}-seed{S}`` through the pipeline runner (finished ones are skipped,
interrupted ones resumed)."""

from __future__ import annotations

import json
from typing import Any

from jtcse.benchmark import fmt_mean_std, md_table, mean_std
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text
from jtcse.pipeline.ablate import parse_seeds as parse_seed_list
from jtcse.pipeline.runner import Say, stderr_say, train_and_evaluate
from jtcse.pipeline.sweep.objective import SweepSetup
from jtcse.pipeline.sweep.space import Scalar

CONFIRM_DIR = "confirm"
CONFIRM_MD = "confirm.md"


def parse_seeds(text: str) -> list[int]:
    """``--confirm-seeds``: the seed-list rule of ``jtcse ablate --seeds``, and at least two (a spread)."""
    seeds = parse_seed_list(text, option="--confirm-seeds")
    if len(seeds) < 2:
        raise JtcseError(f"--confirm-seeds {text}: give at least two different seeds")
    return seeds


def confirm(
    setup: SweepSetup, best: dict[str, Scalar], seeds: list[int], say: Say = stderr_say
) -> dict[str, Any]:
    """Train best and base with each seed; write OUT/confirm.md and confirm.json; returns the JSON payload."""
    scores: dict[str, list[float | None]] = {"best": [], "base": []}
    for seed in seeds:
        for name, values in (("best", best), ("base", {})):
            folder = setup.out / CONFIRM_DIR / f"{name}-seed{seed}"
            config = setup.config(values, output_dir=folder, seed=seed)
            config.train.progress = False
            if setup.threads and not config.train.threads:  # the config's own count wins
                config.train.threads = setup.threads
            dev_only = setup.objective == "stsb-dev"
            result = train_and_evaluate(config, name=folder.name, dev_only=dev_only, say=say)
            if result is None:
                raise JtcseError(f"{folder}: interrupted; run the same command to continue")
            value = result.dev_stsb if dev_only else result.test.get("avg")
            scores[name].append(value)
            say(f"confirm {name} seed {seed}: {setup.objective} {value if value is None else f'{value:.2f}'}")
    payload = {
        "seeds": seeds,
        "objective": setup.objective,
        "params": best,
        **{name: {"scores": v, "mean": mean_std(v)[0], "std": mean_std(v)[1]} for name, v in scores.items()},
    }
    rows = [
        [name, *[f"{s:.2f}" if s is not None else "-" for s in v], fmt_mean_std(v)]
        for name, v in scores.items()
    ]
    md = [f"# Best vs base config over seeds ({setup.objective})", ""]
    md += [*md_table(["config", *[f"seed {s}" for s in seeds], "mean ± std"], rows), ""]
    atomic_write_text(setup.out / CONFIRM_MD, "\n".join(md))
    atomic_write_text(setup.out / "confirm.json", json.dumps(payload, indent=2) + "\n")
    return payload
