"""The config schema: one definition per field, shared by both phases, documented in the
README and --helpfull; a new per-phase field needs no other change to be set, saved, compared
and read."""

import re

import pytest
from support import ROOT, assert_one_line_error, run_tool

from configs import digits_demo
from tf_advreg.experiments import grid
from tf_advreg.training import legacy, phases, run_config, schema


def test_both_phases_share_one_schema_and_every_field_has_help():
    config = schema.new_config()
    assert config.pretrain.to_dict().keys() == config.tune.to_dict().keys()
    assert all(field.help.strip() for field in schema.FIELDS.values())
    assert {path for path in schema.FIELDS if path.startswith("tune.")} == {
        "tune." + path.removeprefix("pretrain.")
        for path in schema.FIELDS
        if path.startswith("pretrain.")
    }


def test_every_flat_name_is_an_alias_of_one_field():
    assert all(path in schema.FIELDS for path in legacy.FLAT_NAMES.values())
    assert len(set(legacy.FLAT_NAMES.values())) == len(legacy.FLAT_NAMES)
    with pytest.raises(ValueError, match="Unknown config field 'pretrain_optimizer'"):
        legacy.path_of("pretrain_optimizer")


def _training_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Training", 1)[1].split("\n## ", 1)[0]


def test_every_readme_flag_and_field_of_tools_train_exists():
    help_text = run_tool("train", "--helpfull", timeout=120).stdout
    flags = set(re.findall(r"^\s+--(?:\[no\])?([\w.]+):", help_text, re.MULTILINE))
    listed = set(re.findall(r"^\s{4}([\w.]+): ", help_text, re.MULTILINE))
    assert set(schema.FIELDS) <= listed  # --config's help lists every field
    section = _training_section()
    for flag in re.findall(r"--(\w[\w.]*\w)", section):
        if flag.startswith("config."):
            assert flag.removeprefix("config.") in schema.FIELDS, flag
        else:
            assert flag in flags, flag
    table = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    blocks = {path.rsplit(".", 1)[0] for path in schema.FIELDS}
    for field in re.findall(r"`([\w.]+)`", "".join(table)):
        assert field in schema.FIELDS or field in blocks, field


def test_a_phase_attack_overrides_only_the_fields_it_sets():
    config = digits_demo.get_config()
    config.tune.attack.eps = 0.05
    pretrain, tune = phases.phases_from_config(config)
    assert (pretrain.attack.eps, tune.attack.eps) == (0.1, 0.05)
    assert pretrain.attack.steps == tune.attack.steps == config.attack.steps
    assert run_config.config_differences(digits_demo.get_config().to_dict(), config.to_dict()) == [
        "tune.attack.eps: None -> 0.05"
    ]


def test_a_new_per_phase_field_is_set_saved_compared_and_read(monkeypatch):
    """What adding a per-phase field takes: its entry in schema.PHASE, nothing else."""
    monkeypatch.setitem(schema.PHASE, "warmup_epochs", schema.Field(0, "Linear lr warmup."))
    monkeypatch.setattr(schema, "FIELDS", dict(schema.fields()))
    config = digits_demo.get_config()
    assert (config.pretrain.warmup_epochs, config.tune.warmup_epochs) == (0, 0)
    assert schema.FIELDS["tune.warmup_epochs"].help == "Linear lr warmup."
    saved = config.to_dict()
    config.tune.warmup_epochs = 2
    run_config.validate(config)
    assert run_config.config_differences(saved, config.to_dict()) == ["tune.warmup_epochs: 0 -> 2"]
    older = digits_demo.get_config().to_dict()  # a run made before the field: not compared
    del older["pretrain"]["warmup_epochs"], older["tune"]["warmup_epochs"]
    assert run_config.config_differences(older, config.to_dict()) == []
    pretrain, tune = phases.phases_from_config(config)
    assert (pretrain.settings.warmup_epochs, tune.settings.warmup_epochs) == (0, 2)
    swept = grid.effective_config(digits_demo.get_config(), {"pretrain.warmup_epochs": 3})
    assert swept["pretrain"]["warmup_epochs"] == 3


def test_an_unknown_nested_field_is_one_line():
    result = run_tool("train", "--config.tune.attack.epss=0.1", timeout=120)
    assert_one_line_error(result, "--config.tune.attack.epss names no config field")
