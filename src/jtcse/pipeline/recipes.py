"""The paper recipes of ``jtcse reproduce``: which packaged configs (``jtcse.configs``) train which stage,
and the row of the paper each one should reproduce.

A recipe is a list of stage specs (a config file, the overrides that tie it to the earlier stages, whether
the stage is the recipe's result) and the paper's 7-task row. The configs hold the hyperparameters; a recipe
adds only what links stages (tower paths, the teacher), the backbone and the seed. Paper rows: the official
checkpoints' results (method spec §6.1) and, for SimCSE, the SimCSE paper's unsupervised BERT-base row.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from jtcse.benchmark import TASKS
from jtcse.configs import packaged_dir
from jtcse.errors import JtcseError
from jtcse.pipeline.runner import TOWER_B_SEED_OFFSET

TOWER_KEYS = ("tower_a", "tower_b")  # stage 1: what ``--towers`` replaces
TWIN_KEY = "twin"  # stage 2: the stage ``--corpus`` trains on
OFFICIAL_CORPUS = "Wiki_for_JTCSE.txt"  # the official stage-2 text (wiki1m plus the SICK sentences)


@dataclass(frozen=True)
class StageSpec:
    key: str  # the stage's folder under <output>/seed-<s>/, and its name in the report
    config: str  # a file of the packaged configs (src/jtcse/configs/), or of --configs DIR
    what: str
    # Overrides on top of the config; "{backbone}" and "{<key>}" (an earlier stage's folder) are filled in.
    overrides: tuple[str, ...] = ()
    seed_offset: int = 0  # the stage trains with seed s + offset
    scored: bool = False  # the recipe's result: evaluated on the 7 test tasks


@dataclass(frozen=True)
class Deviation:
    text: str
    # the option that removes it: "towers" (the released stage-1 towers) or "corpus" (the official stage-2
    # text); "" = it stays whatever the options
    lifted_by: str = ""


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    backbone: str  # the hub id the paper starts from
    paper: dict[str, float]  # task -> Spearman x100, plus "avg"
    source: str
    stages: tuple[StageSpec, ...]
    deviations: tuple[Deviation, ...]

    @property
    def has_towers(self) -> bool:
        """Whether the recipe trains stage-1 towers (which ``--towers`` can replace)."""
        return any(spec.key in TOWER_KEYS for spec in self.stages)

    def remaining_deviations(self, *, towers: bool, corpus: bool) -> list[str]:
        """The deviations left when the released towers (``towers``) and/or the official stage-2 text
        (``corpus``) are used."""
        lifted = {"towers": towers, "corpus": corpus}
        return [d.text for d in self.deviations if not lifted.get(d.lifted_by, False)]


def _row(*scores: float) -> dict[str, float]:
    return dict(zip((*TASKS, "avg"), scores, strict=True))


# Stage 1 of the twin-tower recipes (method spec §3.1): two unsupervised SimCSE encoders, the published SimCSE
# config with the towers' learning rates from TNCSE's Table I-1, STS-B dev every 100 steps.
def _towers(lr_a: str, lr_b: str) -> tuple[StageSpec, ...]:
    common = ("model.base={backbone}", "eval.every=100")
    return (
        StageSpec(
            "tower_a", "simcse_bert_base.toml", "stage 1: SimCSE tower A", (*common, f"train.lr={lr_a}")
        ),
        StageSpec(
            "tower_b",
            "simcse_bert_base.toml",
            "stage 1: SimCSE tower B (seed + 1000)",
            (*common, f"train.lr={lr_b}"),
            seed_offset=TOWER_B_SEED_OFFSET,
        ),
    )


_TWIN_LINKS = ("model.tower_a={tower_a}", "model.tower_b={tower_b}")


def _stage1_deviation(pivots: str) -> Deviation:
    return Deviation(
        "stage-1 towers: the papers train each tower on wiki1m plus its own round-trip translation "
        f"({pivots}); without machine translation the two towers differ by seed (s and s + 1000) and "
        "learning rate only (--towers DIR_A DIR_B starts from the released towers instead)",
        lifted_by="towers",
    )


_SICK_DEVIATION = Deviation(
    "corpus: the official stage-2 corpus is wiki1m plus the unlabelled SICK-R sentences (which overlap the "
    f"SICK-R test set); this recipe trains on wiki1m alone (--corpus {OFFICIAL_CORPUS} trains on it)",
    lifted_by="corpus",
)

RECIPES: dict[str, Recipe] = {
    "simcse-bert": Recipe(
        name="simcse-bert",
        title="unsupervised SimCSE-BERT-base",
        backbone="bert-base-uncased",
        paper=_row(68.40, 82.41, 74.38, 80.91, 78.56, 76.85, 72.23, 76.25),
        source="SimCSE paper (Gao et al., 2021), unsupervised SimCSE-BERT-base row",
        stages=(
            StageSpec("simcse", "simcse_bert_base.toml", "SimCSE", ("model.base={backbone}",), scored=True),
        ),
        deviations=(),
    ),
    "jtcse-bert": Recipe(
        name="jtcse-bert",
        title="JTCSE-BERT (twin tower)",
        backbone="bert-base-uncased",
        paper=_row(74.96, 84.20, 77.79, 84.75, 80.43, 81.87, 73.88, 79.70),
        source="official JTCSE-BERT checkpoint (JTCSE README; method spec §6.1)",
        stages=(
            *_towers("1.5e-5", "2e-5"),
            StageSpec(
                TWIN_KEY, "jtcse_bert_base.toml", "stage 2: JTCSE twin tower", _TWIN_LINKS, scored=True
            ),
        ),
        deviations=(_stage1_deviation("en-fr-en, en-ru-en"), _SICK_DEVIATION),
    ),
    "jtcse-roberta": Recipe(
        name="jtcse-roberta",
        title="JTCSE-RoBERTa (twin tower)",
        backbone="roberta-base",
        paper=_row(74.92, 84.79, 76.99, 84.91, 81.58, 82.71, 73.74, 79.95),
        source="official JTCSE-RoBERTa checkpoint (JTCSE README; method spec §6.1)",
        stages=(
            *_towers("1.5e-5", "1.25e-5"),
            StageSpec(
                TWIN_KEY, "jtcse_roberta_base.toml", "stage 2: JTCSE twin tower", _TWIN_LINKS, scored=True
            ),
        ),
        deviations=(_stage1_deviation("en-nl-en, en-zh-en"), _SICK_DEVIATION),
    ),
    "jtcse-bert-d": Recipe(
        name="jtcse-bert-d",
        title="JTCSE-BERT-D (one student distilled from the twin)",
        backbone="bert-base-uncased",
        paper=_row(75.01, 84.86, 77.76, 84.62, 80.38, 82.05, 74.53, 79.89),
        source="official JTCSE-BERT-D checkpoint (JTCSE README; method spec §6.1)",
        stages=(
            *_towers("1.5e-5", "2e-5"),
            StageSpec(
                TWIN_KEY, "jtcse_bert_base.toml", "stage 2: JTCSE twin tower (the teacher)", _TWIN_LINKS
            ),
            StageSpec(
                "student",
                "distill_bert_base.toml",
                "distillation: one student from the backbone",
                ("model.base={backbone}", "distill.teacher={twin}"),
                scored=True,
            ),
        ),
        deviations=(
            _stage1_deviation("en-fr-en, en-ru-en"),
            _SICK_DEVIATION,
            Deviation(
                "distillation: the official repositories ship no distillation script; the config follows "
                "the sibling CACSE recipe (method spec §4.2)"
            ),
        ),
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name is a one-line error listing the recipes."""
    recipe = RECIPES.get(name.strip().lower())
    if recipe is None:
        close = difflib.get_close_matches(name.lower(), RECIPES, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise JtcseError(f"unknown recipe '{name}': {hint}choose from {', '.join(RECIPES)}")
    return recipe


def find_configs_dir(given: str | Path | None = None) -> Path:
    """The folder with the recipes' config files: ``given`` (``--configs DIR``), else the packaged configs."""
    if given is None:
        return packaged_dir()
    path = Path(given)
    if not path.is_dir():
        raise JtcseError(f"--configs {path}: no such directory")
    return path
