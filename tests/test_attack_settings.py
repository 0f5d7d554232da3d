"""One attack type for training, its per-epoch evaluation and tools.evaluate: one set of rules,
one vocabulary of attack losses."""

import pytest
from support import thesis_attack

from tf_advreg import objectives
from tf_advreg.attacks import ATTACK_LOSSES, Attack, AttackSettings, settings
from tf_advreg.errors import FieldError
from tf_advreg.evaluation import robustness, runner
from tf_advreg.models import resnet18


def test_every_pgd_attack_of_tools_evaluate_is_named_after_its_loss():
    pgd_attacks = [name for name in settings.ATTACKS if Attack(name).loss is not None]
    assert pgd_attacks == ["pgd", "pgd-cw"]  # the documented names
    assert Attack("pgd").loss == "ce" and Attack("pgd-cw").loss == "cw"
    assert {Attack(name).loss for name in pgd_attacks} <= set(ATTACK_LOSSES)
    assert {Attack(name).loss for name in robustness.STRONGEST_DEFAULT} - {None} == {"ce", "cw"}


def test_every_objective_attacks_with_a_loss_of_the_vocabulary():
    for objective in objectives.OBJECTIVES.values():
        assert objective.attack_loss in (*ATTACK_LOSSES, None), objective


def test_the_per_epoch_evaluation_is_the_pgd_of_tools_evaluate():
    attack = thesis_attack()
    request = runner.Request(
        attack="pgd", eps=attack.eps, steps=attack.eval_steps, step_size=attack.eval_step_size
    )
    natural, pgd = runner.attacks_for(request)[0]
    assert attack.evaluation == pgd
    assert attack.matches_evaluation(pgd.settings())
    model = objectives.Trades(
        resnet18(num_classes=4, width=2, input_shape=(8, 8, 1)), attack=attack
    )
    assert model.eval_attack_loss == pgd.loss == "ce"
    assert model.eval_attack_steps == pgd.steps


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("steps", 0, "steps must be >= 1, got 0."),
        ("step_size", 0.0, "step_size must be > 0, got 0.0."),
        ("eps", 1.5, "eps must be in [0, 1] (images are in [0, 1]; L2 allows > 1), got 1.5."),
        ("eps", float("nan"), "eps must be a finite number, got nan."),
        ("norm", "l1", "norm must be one of ('linf', 'l2'), got 'l1'."),
    ],
)
def test_training_and_tools_evaluate_check_attacks_by_the_same_rules(field, value, message):
    with pytest.raises(FieldError) as evaluated:
        Attack("pgd", **{field: value})
    assert (evaluated.value.field, str(evaluated.value)) == (field, message)
    # config.attack's evaluation settings are named eval_<field>; its threat model as it is.
    name = field if field in ("eps", "norm") else f"eval_{field}"
    with pytest.raises(FieldError) as trained:
        AttackSettings(**(vars(thesis_attack()) | {name: value}))
    assert trained.value.field == name
    assert str(trained.value) == message.replace(field, name, 1)


def test_l2_allows_a_radius_above_one_in_training_and_evaluation():
    assert Attack("pgd", eps=2.0, norm="l2").eps == 2.0
    assert AttackSettings(**(vars(thesis_attack()) | dict(eps=2.0, norm="l2"))).eps == 2.0


def test_a_bad_attack_setting_is_named_by_its_tools_evaluate_flag():
    with pytest.raises(FieldError) as caught:
        runner.attacks_for(runner.Request(attack="pgd,deepfool"))
    assert caught.value.spelled(lambda field: f"--{field}").startswith(
        "Unknown --attack 'deepfool'; choose from: natural, noise, fgsm, pgd, pgd-cw,"
    )
    with pytest.raises(FieldError) as caught:
        runner.attacks_for(runner.Request(eps_curve=(0.0, 1.5)))
    assert caught.value.spelled(lambda field: f"--{field}").startswith(
        "--eps_curve must be in [0, 1]"
    )
