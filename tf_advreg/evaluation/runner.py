"""One evaluation request (what `python -m tools.evaluate` is asked) -> one result document."""

import dataclasses
import json
import time

from absl import logging

from tf_advreg import data
from tf_advreg.attacks import Attack
from tf_advreg.errors import FieldError
from tf_advreg.evaluation import autoattack, models, report, robustness, sanity
from tf_advreg.xla import resolve_jit_compile

THESIS_SPLITS = ("train", "test")
# The thesis's evaluation attack: PGD-20 with step 0.003 in an L-inf ball of 0.03.
THESIS_PGD = Attack("pgd", eps=0.03, steps=20, step_size=0.003)


@dataclasses.dataclass(frozen=True)
class Request:
    """What to evaluate, on which data, against which attacks. See tools/evaluate.py's flags."""

    model: str | None = None
    checkpoints: str | None = None
    dataset: str = "cifar10"
    data_dir: str | None = None
    split: str = "test"
    subset: int | None = None
    seed: int = 0
    batch_size: int = 128
    attack: str = "pgd"
    eps: float = 0.03
    norm: str = "linf"
    steps: int = 20
    step_size: float = 0.003
    restarts: int = 1
    thesis_metrics: bool = False
    sanity_checks: bool = False
    transfer_model: str | None = None
    trust_model: bool = False
    jit_compile: bool | str = "auto"  # "auto": XLA on GPUs and TPUs, not on CPUs
    eps_curve: tuple[float, ...] = ()


def attacks_for(request: Request) -> tuple[list[Attack], bool]:
    """The attacks to run, natural first, and whether to add the worst case over them.

    `request.attack` is comma-separated; "strongest" asks for the worst case, over the other
    attacks named or, alone, over robustness.STRONGEST_DEFAULT. With `request.eps_curve`,
    each attack runs at every eps listed there instead of at `request.eps`.
    """
    if request.thesis_metrics:
        return [Attack("natural"), THESIS_PGD], False
    names = _attack_names(request)
    if autoattack_version(request):
        sequence = autoattack.attacks(
            names[0], eps=request.eps, norm=request.norm, seed=request.seed
        )
        return [Attack("natural"), *sequence], False
    worst = robustness.WORST_CASE in names
    names = [name for name in names if name != robustness.WORST_CASE]
    if worst and not names:
        names = list(robustness.STRONGEST_DEFAULT)
    settings = dict(
        steps=request.steps,
        step_size=request.step_size,
        restarts=request.restarts,
        norm=request.norm,
        seed=request.seed,
    )
    attacks = [Attack("natural", eps=request.eps, **settings)]
    try:
        radii = request.eps_curve or (request.eps,)
        attacks += [Attack(name, eps=eps, **settings) for name in names for eps in radii]
    except FieldError as error:  # a radius of the curve is named as that flag
        if request.eps_curve and error.field == "eps":
            raise error.renamed("eps_curve") from None
        raise
    return list(dict.fromkeys(attacks)), worst


def model_paths(request: Request) -> list[str]:
    """The models `request.model` names: one path, or several separated by commas."""
    if request.model is None:
        return []
    return [path.strip() for path in request.model.split(",") if path.strip()]


def _attack_names(request: Request) -> list[str]:
    return [name.strip() for name in request.attack.split(",") if name.strip()]


def autoattack_version(request: Request) -> str | None:
    """The AutoAttack version asked for (autoattack, autoattack-rand), or None.

    AutoAttack is a fixed protocol, so it runs alone: other attacks, --steps and --restarts
    do not apply to it.
    """
    if request.thesis_metrics:
        return None
    names = _attack_names(request)
    versions = [name for name in names if name in autoattack.VERSIONS]
    if not versions:
        return None
    if len(names) > 1:
        raise ValueError(
            f"--attack={versions[0]} is a fixed protocol and runs alone; "
            f"drop {', '.join(n for n in names if n != versions[0])} from --attack."
        )
    return versions[0]


def run(request: Request) -> dict:
    """Evaluates the requested model(s); raises ValueError/FileNotFoundError on bad input.

    Everything the user can get wrong is checked before the first attack runs.
    """
    start = time.perf_counter()
    if (request.model is None) == (request.checkpoints is None):
        raise ValueError("Pass exactly one of --model and --checkpoints.")
    if request.sanity_checks and len(model_paths(request)) != 1:
        raise ValueError("--sanity_checks evaluates one model: use it with one --model.")
    if request.transfer_model is not None and not request.sanity_checks:
        raise ValueError("--transfer_model is used by the sanity checks: add --sanity_checks.")
    if request.eps_curve and (request.thesis_metrics or request.sanity_checks):
        raise ValueError(
            "--eps_curve sweeps eps itself: drop --thesis_metrics and --sanity_checks."
        )
    if request.eps_curve and robustness.WORST_CASE in request.attack:
        raise ValueError(
            f"--eps_curve draws one curve per attack: drop '{robustness.WORST_CASE}' from "
            "--attack (the worst case over radii is the largest radius)."
        )
    jit_compile = resolve_jit_compile(request.jit_compile)
    attacks, worst = attacks_for(request)
    version = autoattack_version(request)
    sanity_attack = _sanity_attack(attacks) if request.sanity_checks else None
    splits = THESIS_SPLITS if request.thesis_metrics else (request.split,)
    if request.model is not None:
        paths = model_paths(request)
        loaded, unreadable = [models.load(path, request.trust_model) for path in paths], []
    else:
        loaded, unreadable = _load_series(request.checkpoints)
    transfer = (
        None
        if request.transfer_model is None
        else models.load(request.transfer_model, request.trust_model)
    )
    image_shape = data.info(request.dataset, request.data_dir).image_shape
    for model in loaded + ([transfer] if transfer else []):
        models.check_input_shape(model, image_shape, request.dataset)
    batches = {
        split: data.load(
            request.dataset,
            split,
            batch_size=request.batch_size,
            training=False,
            data_dir=request.data_dir,
            subset=request.subset,
            seed=request.seed,
        )
        for split in splits
    }

    def data_identity(split: str, num_examples: int) -> dict:
        return {
            "dataset": request.dataset,
            "split": split,
            "subset": request.subset,
            "seed": request.seed,
            "num_examples": num_examples,
            "image_shape": list(image_shape),
        }

    records = []
    for model in loaded:
        for split in splits:
            began = time.perf_counter()
            extra = {}
            if version:
                outcomes, extra["autoattack"] = autoattack.evaluate(
                    model.classifier,
                    batches[split],
                    version,
                    attacks[1:],
                    batch_size=request.batch_size,
                    jit_compile=jit_compile,
                )
            else:
                outcomes = robustness.evaluate(
                    model.classifier, batches[split], attacks, jit_compile=jit_compile
                )
            if worst:
                outcomes.append(robustness.worst_case(outcomes))
            identity = data_identity(split, len(outcomes[0].correct))
            elapsed = time.perf_counter() - began
            record = report.evaluation_record(model.identity(), identity, outcomes, elapsed)
            records.append(record | extra)
            logging.info("Evaluated %s on %s in %.1f s.", model.path, split, elapsed)

    sanity_checks = None
    if sanity_attack is not None:
        (model,) = loaded
        checks = sanity.run_checks(
            model.classifier,
            batches[splits[-1]],
            sanity_attack,
            transfer_source=transfer.classifier if transfer else None,
            jit_compile=jit_compile,
        )
        sanity_checks = report.sanity_record(
            model.identity(),
            records[-1]["data"],
            {"attack": sanity_attack.name, "settings": sanity_attack.settings()},
            checks,
        )
    return report.document(records, sanity_checks, time.perf_counter() - start, unreadable)


def _load_series(directory: str) -> tuple[list[models.LoadedModel], list[dict]]:
    """Every epoch's checkpoint that loads, and {path, error} of each that does not: one
    truncated or corrupted copy must not hide the other epochs' results."""
    loaded, unreadable = [], []
    for path in models.checkpoint_series(directory):
        try:
            loaded.append(models.load(path))
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
            logging.warning("Skipping unreadable checkpoint %s (%s).", path, error)
            unreadable.append({"path": str(path), "error": str(error)})
    if not loaded:
        raise ValueError(
            f"No checkpoint in {directory} could be loaded; the first, {unreadable[0]['path']}: "
            f"{unreadable[0]['error']}"
        )
    return loaded, unreadable


def _sanity_attack(attacks: list[Attack]) -> Attack:
    """The attack the sanity checks vouch for: the first iterative one requested."""
    iterative = [a for a in attacks if a.name in sanity.ITERATIVE_ATTACKS]
    if not iterative:
        raise ValueError(
            f"--sanity_checks needs an iterative attack in --attack: "
            f"{', '.join(sanity.ITERATIVE_ATTACKS)}."
        )
    return iterative[0]
