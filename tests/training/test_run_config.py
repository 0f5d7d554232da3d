"""Config validation and the workdir guard, without training anything."""

import json

import ml_collections
import pytest

from configs import default, digits_demo
from tf_advreg.errors import FieldError
from tf_advreg.training import legacy, phases, run_config, schema


def test_thesis_and_demo_configs_are_valid():
    run_config.validate(default.get_config())
    run_config.validate(digits_demo.get_config())


def test_thesis_defaults_are_the_thesis_settings():
    config = default.get_config()
    attack = config.attack
    assert (attack.eps, attack.steps, attack.step_size) == (0.03, 10, 0.007)
    assert (attack.eval_steps, attack.eval_step_size) == (20, 0.003)
    assert (config.pretrain.epochs, config.tune.epochs, config.batch_size) == (100, 100, 100)
    assert (config.pretrain.lr, config.tune.lr) == (0.1, 0.001)
    assert (config.pretrain.dataset, config.pretrain.split) == ("cinic10", "train+validation")
    assert config.tune.dataset == "cifar10" and config.model.width == 64


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("pretrain.dataset", "imagenet", "Unknown pretrain.dataset 'imagenet'"),
        ("tune.objective", "pgd", "Unknown objective 'pgd'"),
        ("attack.eps", 1.5, "attack.eps must be in [0, 1]"),
        ("tune.attack.eps", 1.5, "tune.attack.eps must be in [0, 1]"),
        ("pretrain.beta", -0.5, "pretrain.beta must be >= 0"),
        ("attack.step_size", 0.0, "attack.step_size must be > 0"),
        ("tune.attack.eval_step_size", 0.0, "tune.attack.eval_step_size must be > 0"),
        ("lr_schedule", "linear", "Unknown lr_schedule 'linear'"),
        ("strategy", "tpu", "Unknown strategy 'tpu'"),
        ("augment", "mixup", "Unknown augmentation policy 'mixup'"),
        ("batch_size", 0, "batch_size must be >= 1"),
        ("eval.test_subset", -1, "eval.test_subset must be >= 0"),
        ("jit_compile", "maybe", "jit_compile must be one of auto, true, false, got 'maybe'"),
        ("model.width", 0, "width must be an integer in [1, 512], got 0"),
        ("model.width", 100_000, "width must be an integer in [1, 512], got 100000"),
        ("model.name", "vgg", "Unknown model name 'vgg'; choose one of resnet18"),
        ("attack.eps", float("nan"), "attack.eps must be a finite number, got nan"),
        ("pretrain.lr", float("inf"), "pretrain.lr must be a finite number, got inf"),
        ("tune.beta", float("inf"), "tune.beta must be a finite number, got inf"),
        ("pretrain.split", "bogus", "pretrain.split: Unknown split 'bogus' for 'digits'"),
        ("eval.test_split", "validation", "eval.test_split: Unknown split 'validation' for"),
        ("pretrain.subset", 5000, "pretrain.subset 5000 exceeds the 997 examples"),
        ("tune.subset", 400, "tune.subset 400 exceeds the 300 examples"),
        ("batch_size", 400, "batch_size 400 exceeds the 300 training examples of digits:tune"),
        ("tune.regularizer", "hellinger", "Unknown tune.regularizer 'hellinger'; choose one of kl"),
        ("eval.sets", "test,valid", "eval.sets names an unknown set 'valid'; choose from test,"),
        ("eval.sets", "train", "eval.sets must include test"),
    ],
)
def test_bad_fields_are_named(field, value, message):
    config = digits_demo.get_config()
    legacy.override(config, {field: value})
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        run_config.validate(config)


def test_workdir_guard_refuses_a_different_run_and_allows_more_epochs(tmp_path):
    config = digits_demo.get_config()
    run_config.prepare_workdir(tmp_path / "run", config, overwrite=False)
    config.pretrain.epochs += 5  # resumable: continue the same run
    run_config.prepare_workdir(tmp_path / "run", config, overwrite=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["pretrain"]["epochs"] == 13
    config.attack.eps = 0.2
    with pytest.raises(ValueError, match="attack.eps: 0.1 -> 0.2"):
        run_config.prepare_workdir(tmp_path / "run", config, overwrite=False)
    (tmp_path / "run" / "marker").write_text("old run")
    run_config.prepare_workdir(tmp_path / "run", config, overwrite=True)
    assert not (tmp_path / "run" / "marker").exists()


def test_fields_a_saved_run_predates_are_not_compared():
    saved = {"attack": {"eps": 0.1}, "pretrain": {"epochs": 8}}
    current = {"attack": {"eps": 0.1}, "pretrain": {"epochs": 9}, "new": 1}
    assert run_config.config_differences(saved, current) == []
    assert run_config.config_differences(saved, {"attack": {"eps": 0.2}}) == [
        "attack.eps: 0.1 -> 0.2"
    ]


def _flat(config) -> dict:
    """`config` as a config.json of the first releases wrote it."""
    flat = {name: schema.get(config, path) for name, path in legacy.FLAT_NAMES.items()}
    assert legacy.is_flat(flat)
    return flat


def test_a_flat_config_json_is_the_same_run_as_its_nested_config():
    config = digits_demo.get_config()
    newer = set(schema.FIELDS) - set(legacy.FLAT_NAMES.values())  # e.g. model.name
    assert {"model.name", "tune.subset", "tune.attack.eps"} <= newer
    nested = schema.flatten(config.to_dict())
    assert schema.flatten(legacy.migrate(_flat(config))) == {
        path: value for path, value in nested.items() if path not in newer
    }
    assert run_config.config_differences(_flat(config), config.to_dict()) == []
    config.tune.beta = 6.0
    assert run_config.config_differences(_flat(digits_demo.get_config()), config.to_dict()) == [
        "tune.beta: 5.0 -> 6.0"
    ]


@pytest.mark.parametrize(
    "missing", ["test_eval_subset", "pretrain_regularizer", "tune_regularizer"]
)
def test_a_flat_run_made_before_a_field_existed_resumes(tmp_path, missing):
    config = default.get_config()
    saved = _flat(config)
    del saved[missing]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    run_config.prepare_workdir(tmp_path, config, overwrite=False)  # no "different config"


def test_a_regularizer_for_an_objective_without_one_is_named():
    config = digits_demo.get_config()
    config.pretrain.objective, config.pretrain.regularizer = "mart", "total_variation"
    with pytest.raises(
        ValueError, match="pretrain.regularizer 'total_variation' applies to trades and ar only"
    ):
        run_config.validate(config)


def test_each_phase_has_its_own_regularizer():
    config = digits_demo.get_config()
    config.pretrain.objective, config.pretrain.regularizer = "trades", "jensen_shannon"
    config.tune.objective, config.tune.regularizer = "ar", "symmetric_kl"
    run_config.validate(config)
    pretrain, tune = phases.phases_from_config(config)
    assert (pretrain.settings.regularizer, tune.settings.regularizer) == (
        "jensen_shannon",
        "symmetric_kl",
    )


FOREIGN_DIRECTORIES = {
    "notes": {"notes.txt": "precious"},
    "a thesis with a config sharing a key": {
        "thesis.tex": "\\chapter{Results}",
        "config.json": json.dumps({"seed": 1, "chapter": 5}),
    },
    "a config sharing no key": {"config.json": json.dumps({"theme": "dark"})},
}


@pytest.mark.parametrize("contents", FOREIGN_DIRECTORIES.values(), ids=FOREIGN_DIRECTORIES)
@pytest.mark.parametrize("overwrite", [False, True])
def test_workdir_guard_never_touches_a_directory_that_is_not_a_run(tmp_path, contents, overwrite):
    for name, text in contents.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match="holds no tf_advreg run"):
        run_config.prepare_workdir(tmp_path, digits_demo.get_config(), overwrite=overwrite)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == contents


def test_a_run_is_recognised_by_its_marker(tmp_path):
    assert not run_config.is_run_dir(tmp_path)
    run_config.prepare_workdir(tmp_path / "run", digits_demo.get_config(), overwrite=False)
    assert run_config.is_run_dir(tmp_path / "run")


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2]", "config.json holds a JSON array, not a JSON object"),
        ('{"eps": 0.1,', "config.json is not valid JSON"),
        ('{"eps": NaN}', "config.json holds NaN, which is not a finite number"),
    ],
)
def test_a_damaged_run_config_is_named(tmp_path, text, message):
    run_config.prepare_workdir(tmp_path, digits_demo.get_config(), overwrite=False)
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        run_config.prepare_workdir(tmp_path, digits_demo.get_config(), overwrite=True)
    assert (tmp_path / "config.json").read_text() == text


@pytest.mark.parametrize("kind", ["step", "cosine", "constant"])
def test_learning_rate_schedules(kind):
    schedule = phases.learning_rate_schedule(kind, 0.1, total_steps=100)
    rate = (lambda step: float(schedule(step))) if callable(schedule) else (lambda step: schedule)
    assert rate(0) == pytest.approx(0.1)
    if kind == "step":
        assert rate(49) == pytest.approx(0.1) and rate(60) == pytest.approx(0.01)
        assert rate(80) == pytest.approx(0.001)
    if kind == "cosine":
        assert rate(50) == pytest.approx(0.05, rel=1e-3) and rate(100) == pytest.approx(0.0)


@pytest.mark.parametrize("kind", ["step", "cosine", "constant"])
def test_a_warmup_rises_linearly_to_the_schedule_and_leaves_it_unchanged_after(kind):
    plain = phases.learning_rate_schedule(kind, 0.1, total_steps=100)
    warm = phases.learning_rate_schedule(kind, 0.1, total_steps=100, warmup_steps=10)
    for step in (0, 4, 9, 10, 60, 99):
        expected = (float(plain(step)) if callable(plain) else plain) * min(1, (step + 1) / 10)
        assert float(warm(step)) == pytest.approx(expected)


def test_phases_follow_the_config():
    config = digits_demo.get_config()
    names = [p.name for p in phases.phases_from_config(config)]
    assert names == ["pretrain", "tune"]
    config.tune.dataset = ""
    assert [p.name for p in phases.phases_from_config(config)] == ["pretrain"]
    config.tune.dataset, config.pretrain.epochs = "digits", 0  # tune-only, from a checkpoint
    assert [p.name for p in phases.phases_from_config(config)] == ["tune"]
    config.pretrain.epochs, config.tune.epochs = 8, 0  # untuned: the pretraining alone
    assert [p.name for p in phases.phases_from_config(config)] == ["pretrain"]


def test_a_pretraining_for_a_named_tune_dataset_is_also_evaluated_on_it():
    """The untuned row of thesis Tables 5.1-5.4 is measured on the tune data (CIFAR-10)."""
    config = default.get_config()  # CINIC-10 pretraining, CIFAR-10 tuning
    config.tune.epochs = 0
    (pretrain,) = phases.phases_from_config(config)
    assert phases.eval_data(config, pretrain) == {
        "test": ("cinic10", "test", 10_000),
        "train": ("cinic10", "train+validation", 10_000),
        "tune_test": ("cifar10", "test", 10_000),
        "tune_train": ("cifar10", "train", 10_000),
    }
    demo = digits_demo.get_config()  # the same test split is not evaluated twice
    pretrain, tune = phases.phases_from_config(demo)
    assert phases.eval_data(demo, pretrain) == {
        "test": ("digits", "test", 10_000),
        "train": ("digits", "pretrain", 500),
        "tune_train": ("digits", "tune", 500),
    }
    assert phases.eval_data(demo, tune) == {
        "test": ("digits", "test", 10_000),
        "train": ("digits", "tune", 500),
        "pretrain_train": ("digits", "pretrain", 500),
    }
    every_epoch, final = phases._eval_sets(demo, pretrain)  # the tune data: final model only
    assert set(every_epoch) == {"test", "train"} and set(final) == {"tune_train"}
    assert final["tune_train"].num_examples == 300  # all of digits:tune, fewer than 500


def test_eval_sets_choose_what_each_evaluation_measures():
    demo = digits_demo.get_config()
    demo.eval.sets = "test,pretrain_train"
    pretrain, tune = phases.phases_from_config(demo)
    assert phases.eval_data(demo, pretrain) == {"test": ("digits", "test", 10_000)}
    assert phases.eval_data(demo, tune) == {
        "test": ("digits", "test", 10_000),
        "pretrain_train": ("digits", "pretrain", 500),
    }
    every_epoch, final = phases._eval_sets(demo, pretrain)
    assert set(every_epoch) == {"test"} and final == {}
    demo.eval.sets = "test,tune_test"  # the same data as test: measured once, as test
    assert phases.eval_data(demo, pretrain) == {"test": ("digits", "test", 10_000)}
    older = digits_demo.get_config().to_dict()  # a run saved before the field: every set
    del older["eval"]["sets"]
    assert set(phases.eval_data(ml_collections.ConfigDict(older), tune)) == {
        "test",
        "train",
        "pretrain_train",
    }


@pytest.mark.parametrize(
    "given, spelled",
    [
        (set(), "tune.beta"),  # set by the config file
        ({"tune_beta"}, "--tune_beta"),
        ({"config.tune.beta"}, "--config.tune.beta"),
    ],
)
def test_an_error_names_the_field_as_the_command_line_set_it(given, spelled):
    config = digits_demo.get_config()
    config.tune.beta = -1.0
    with pytest.raises(FieldError) as caught:
        run_config.validate(config)
    message = caught.value.spelled(lambda path: legacy.flag_spelling(path, given))
    assert message == f"{spelled} must be >= 0, got -1.0."


@pytest.mark.parametrize(
    "field, value, given, message",
    [
        ("attack.eps", 1.5, {"eps"}, "--eps must be in [0, 1]"),
        ("tune.attack.eps", 1.5, {"config.tune.attack.eps"}, "--config.tune.attack.eps must be"),
        ("attack.eval_steps", 0, {"eval_attack_steps"}, "--eval_attack_steps must be >= 1"),
        ("model.width", 0, {"width"}, "--width: width must be an integer in [1, 512], got 0"),
        ("pretrain.split", "bogus", {"config.pretrain.split"}, "--config.pretrain.split: Unknown"),
        ("eval.sets", "train", {"config.eval.sets"}, "--config.eval.sets must include test"),
    ],
)
def test_every_kind_of_field_error_names_the_flag(field, value, given, message):
    """Errors of the attack block, and of checks other modules own, go the same way."""
    config = digits_demo.get_config()
    legacy.override(config, {field: value})
    with pytest.raises(FieldError) as caught:
        run_config.validate(config)
    assert caught.value.spelled(lambda path: legacy.flag_spelling(path, given)).startswith(message)


def test_a_run_made_before_the_marker_is_recognised_and_marked(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(_flat(default.get_config())))
    assert run_config.is_run_dir(tmp_path)
    run_config.prepare_workdir(tmp_path, default.get_config(), overwrite=False)
    assert (tmp_path / run_config.RUN_MARKER).is_file()
