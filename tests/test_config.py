"""The training config: files, --set overrides, method defaults, validation, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from jtcse.configs import packaged_dir
from jtcse.errors import JtcseError
from jtcse.training.config import (
    METHOD_DEFAULTS,
    Config,
    apply_override,
    config_from_dict,
    dump_yaml,
    load_config,
    override_text,
    valid_keys,
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_sections_and_method_defaults(tmp_path):
    path = _write(
        tmp_path, "c.toml", 'method = "jtcse"\nseed = 3\n[train]\nbatch_size = 16\n[model]\ntower_a = "x"\n'
    )
    config = load_config(path)
    assert config.method == "jtcse" and config.seed == 3
    assert config.train.batch_size == 16 and config.model.tower_a == "x"
    # official JTCSE defaults for the keys not set
    assert config.train.lr == 1.3e-6
    assert config.train.weight_decay == 0.01
    assert config.train.schedule == "constant"
    assert config.train.grad_clip == 0.0
    assert config.data.max_len == 64
    assert config.eval.every == 100
    assert config.model.dropout == 0.1
    assert config.model.ca_mode == "side_all" and config.model.num_ca_layers == 6
    assert config.model.ca_placement == "end"
    assert config.loss.direction == "random" and config.loss.small_cos_floor == 1e-4
    assert config.output_dir == "runs/jtcse"


def test_simcse_defaults_and_explicit_values_win(tmp_path):
    path = _write(tmp_path, "c.toml", "[train]\nlr = 1e-5\n")
    config = load_config(path)
    assert config.method == "simcse"
    assert config.train.lr == 1e-5  # explicit beats the method default
    assert config.train.schedule == "linear" and config.data.max_len == 32 and config.model.pooler == "cls"
    assert config.loss.temperature == 0.05 and config.train.grad_clip == 1.0


def test_tncse_preset():
    config = load_config(None, ["method=tncse"])
    assert config.model.cross_attention is False
    assert config.loss.icnce_ca == 0.0 and config.loss.direction == "a_to_b"
    assert config.train.lr == 1e-6
    assert "model.dropout" not in config.explicit  # filled from the backbone family by the trainer


def test_yaml_config(tmp_path):
    path = _write(
        tmp_path, "c.yaml", "method: simcse\ntrain:\n  lr: 2.0e-5\n  epochs: 2\nmodel:\n  dropout: null\n"
    )
    config = load_config(path)
    assert config.train.lr == 2e-5 and config.train.epochs == 2 and config.model.dropout is None


def test_set_overrides_are_typed(tmp_path):
    config = load_config(
        None,
        [
            "train.lr=2e-5",
            "train.batch_size=32",
            "train.progress=false",
            "model.dropout=none",
            "data.corpus=my.txt",
            "loss.small_cos_floor=null",
            "seed=11",
        ],
    )
    assert config.train.lr == 2e-5 and isinstance(config.train.lr, float)
    assert config.train.batch_size == 32 and isinstance(config.train.batch_size, int)
    assert config.train.progress is False
    assert config.model.dropout is None and config.loss.small_cos_floor is None
    assert config.data.corpus == "my.txt" and config.seed == 11


def test_unknown_key_lists_valid_keys(tmp_path):
    path = _write(tmp_path, "c.toml", "[train]\nlrr = 1e-5\n")
    with pytest.raises(JtcseError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert "train.lrr" in message and str(path) in message
    assert "did you mean 'train.lr'" in message
    assert "valid keys:" in message and "train.lr" in message and "eval.dev_max_len" in message


def test_unknown_key_from_set():
    with pytest.raises(JtcseError, match=r"--set: unknown config key 'bogus'.*valid keys: method, seed"):
        load_config(None, ["bogus=1"])


@pytest.mark.parametrize(
    ("item", "pattern"),
    [
        ("train.lr=fast", r"train\.lr must be a float"),
        ("train.batch_size=2.5", r"train\.batch_size must be an int"),
        ("train.progress=maybe", r"train\.progress must be a bool"),
        ("train.lr", r"expected key=value"),
    ],
)
def test_bad_override_values_name_the_key(item, pattern):
    with pytest.raises(JtcseError, match=pattern):
        load_config(None, [item])


def test_bad_file_types_name_the_key(tmp_path):
    with pytest.raises(JtcseError, match=r"train\.batch_size must be an int.*got '64'"):
        load_config(_write(tmp_path, "a.toml", '[train]\nbatch_size = "64"\n'))
    with pytest.raises(JtcseError, match=r"'train' must be a section"):
        load_config(_write(tmp_path, "b.toml", "train = 3\n"))
    # an int is fine where a float is expected
    assert load_config(_write(tmp_path, "c.toml", "[train]\nlr = 1\n")).train.lr == 1.0


@pytest.mark.parametrize(
    ("item", "pattern"),
    [
        ("method=bert", r"method: unknown method 'bert'"),
        (
            "model.ca_mode=sideways",
            r"model\.ca_mode: 'sideways' is not one of side_all, side_last, in_stream",
        ),
        ("train.batch_size=0", r"train\.batch_size: must be >= 1"),
        ("model.dropout=1.5", r"model\.dropout"),
        ("train.lr=0", r"train\.lr: must be > 0"),
        ("loss.nce=0", r"every loss term has weight 0"),
        ("data.on_bad_utf8=ignore", r"data\.on_bad_utf8"),
    ],
)
def test_validation(item, pattern):
    with pytest.raises(JtcseError, match=pattern):
        load_config(None, [item])


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(JtcseError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(JtcseError, match=r"c\.toml: cannot parse"):
        load_config(_write(tmp_path, "c.toml", "[train\nlr = \n"))
    with pytest.raises(JtcseError, match="unknown config format"):
        load_config(_write(tmp_path, "c.ini", "x"))


def test_resolved_yaml_round_trips(tmp_path):
    config = load_config(None, ["method=jtcse", "train.lr=2e-6", "model.tower_b=b"])
    path = _write(tmp_path, "resolved.yaml", dump_yaml(config))
    again = load_config(path)
    assert again.to_dict() == config.to_dict()
    # every key is explicit in a resolved file, so method defaults no longer apply
    assert again.explicit == set(valid_keys())


def test_flat_keys_cover_every_section():
    keys = valid_keys()
    assert keys[:3] == ["method", "seed", "output_dir"]
    for section in ("model", "data", "train", "loss", "eval"):
        assert any(k.startswith(section + ".") for k in keys)
    for method, defaults in METHOD_DEFAULTS.items():
        assert set(defaults) <= set(keys), method


def test_apply_override_marks_key_explicit():
    config = config_from_dict({})
    apply_override(config, "train.lr=4e-5")
    assert "train.lr" in config.explicit
    assert isinstance(config, Config)


def test_the_official_recipes_by_default():
    """Issue 10: random batches, SimCSE as published, the official eval cadence, decay as each code does."""
    for method in ("simcse", "jtcse", "tncse"):
        config = load_config(None, [f"method={method}"])
        assert config.data.batching == "random" and config.eval.at_final_step is False
        assert config.train.length_sorted_sub_batch is None  # 8 on a CPU, 32 on a GPU
        assert config.train.weight_decay_all is (method != "simcse")  # HF Trainer exempts bias/LayerNorm
    assert load_config(None).loss.simcse_form == "one_sided"
    distill = load_config(None, ["method=distill", "distill.teacher=t"])
    assert distill.train.weight_decay_all is True and distill.train.weight_decay == 0.01  # CACSE
    keep = load_config(None, ["data.batching=length_bucketed", "loss.simcse_form=interleaved"])
    assert keep.data.batching == "length_bucketed" and keep.loss.simcse_form == "interleaved"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("data.batching=sorted", "data.batching: 'sorted' is not one of random, length_bucketed"),
        ("loss.simcse_form=both", "loss.simcse_form: 'both' is not one of one_sided, interleaved"),
        ("train.length_sorted_sub_batch=-1", "train.length_sorted_sub_batch: must be >= 0"),
    ],
)
def test_issue_10_keys_are_validated(item, message):
    with pytest.raises(JtcseError, match=message):
        load_config(None, [item])


def test_every_config_file_uses_random_batches_or_says_why():
    for path in sorted(packaged_dir().glob("*.toml")):
        config = load_config(path, ["distill.teacher=t"] if "distill" in path.name else [])
        text = path.read_text(encoding="utf-8")
        if config.data.batching != "random":
            assert "length_bucketed" in text and "# why length_bucketed:" in text, path.name
        else:
            assert 'batching = "random"' in text, path.name


@pytest.mark.parametrize(
    ("key", "value"),
    [("train.lr", 1.0000000000000002e-05), ("train.batch_size", 32), ("data.dedup", True),
     ("model.ca_placement", "start"), ("data.pad_to_multiple_of", None)],
)  # fmt: skip
def test_override_text_reads_back_to_the_same_value(key: str, value: object) -> None:
    """What ablate's grid points and the sweep's trials write as ``--set`` text is the value itself."""
    config = Config()
    apply_override(config, "data.pad_to_multiple_of=8")  # every value below differs from the config's
    apply_override(config, f"{key}={override_text(value)}")
    assert config.get(key) == value and type(config.get(key)) is type(value)
