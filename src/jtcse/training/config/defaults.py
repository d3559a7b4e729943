"""Method defaults: the values of the keys a user did not set, by method (method.md §4.2)."""

from __future__ import annotations

from typing import Any

# TNCSE's twin-tower dropout (attention and hidden), by backbone family [TN-code model_dual.py].
TNCSE_DROPOUT = {"bert": 0.00025, "roberta": 0.0175}

# Method defaults for the keys the user did not set. simcse: SimCSE's unsup run_unsup_example.sh with the
# HF Trainer defaults; jtcse: the official train_jtcse_bert.py; tncse: TNCSE's train_dual.py.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "simcse": {
        "data.max_len": 32,
        "train.lr": 3e-5,
        "train.weight_decay": 0.0,
        "train.schedule": "linear",
        "train.grad_clip": 1.0,
        "eval.every": 125,
    },
    "jtcse": {
        "model.dropout": 0.1,
        "data.max_len": 64,
        "train.lr": 1.3e-6,
        "train.weight_decay": 0.01,
        "train.schedule": "constant",
        "train.weight_decay_all": True,
        "train.grad_clip": 0.0,
        "eval.every": 100,
        "loss.direction": "random",
    },
    "tncse": {
        "model.cross_attention": False,
        "data.max_len": 64,
        "train.lr": 1e-6,
        "train.weight_decay": 0.01,
        "train.schedule": "constant",
        "train.weight_decay_all": True,
        "train.grad_clip": 0.0,
        "eval.every": 100,
        "loss.icnce_ca": 0.0,
        "loss.direction": "a_to_b",
        # model.dropout: TNCSE_DROPOUT by backbone family, filled in by resolve_for_model.
    },
    # CACSE's distillation recipe (method.md §4.2) for JTCSE-D; UC-D sets dropout 0.015, k 0.1, lr 8.5e-6 in
    # its config. CACSE's distillation script: AdamW(model.parameters(), lr) (torch's weight decay 0.01 on
    # every parameter), no clipping, no schedule.
    "distill": {
        "model.pooler": "cls_before_pooler",
        "model.dropout": 0.1,
        "data.max_len": 64,
        "train.lr": 1e-5,
        "train.batch_size": 128,
        "train.epochs": 1,
        "train.weight_decay": 0.01,
        "train.weight_decay_all": True,
        "train.schedule": "constant",
        "train.grad_clip": 0.0,
        "eval.every": 100,
        "distill.k": 0.01,
    },
}
