"""Pictures of robustness: adversarial examples beside their clean images, and accuracy vs eps.

`tools.evaluate --examples/--eps_curve` and the tutorial notebook draw with these functions, so
a figure in the docs and one from the command line come from the same code. Figures are built
with `matplotlib.figure.Figure` (no pyplot), so importing this module sets no global backend:
a notebook shows them inline, a cluster node writes PNGs.
"""

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from tf_advreg import data, files
from tf_advreg.attacks import Attack
from tf_advreg.evaluation import models, report, runner
from tf_advreg.evaluation.robustness import craft

# Examples shown per grid by `tools.evaluate --examples`.
NUM_EXAMPLES = 8


def perturbation_image(clean: np.ndarray, adversarial: np.ndarray, eps: float) -> np.ndarray:
    """The perturbation magnified from [-eps, eps] to [0, 1]: grey is 0, white is +eps."""
    return np.clip((adversarial - clean) / (2.0 * max(eps, 1e-12)) + 0.5, 0.0, 1.0)


def example_grid(
    clean: np.ndarray,
    adversarial: np.ndarray,
    labels: np.ndarray,
    clean_predictions: np.ndarray,
    adversarial_predictions: np.ndarray,
    *,
    eps: float,
    class_names: Sequence[str],
    title: str,
) -> Figure:
    """Three rows (clean, adversarial, perturbation magnified), one column per example.

    Clean images are captioned with the label and the prediction, adversarial ones with the
    prediction, in red where it is wrong.
    """
    rows = (
        ("clean", clean, clean_predictions),
        ("adversarial", adversarial, adversarial_predictions),
        (
            f"perturbation\n±{eps:g}",
            perturbation_image(clean, adversarial, eps),
            None,
        ),
    )
    count = len(clean)
    figure = Figure(figsize=(1.3 * count + 1.2, 4.6))
    axes = figure.subplots(3, count, squeeze=False)
    for row, (name, images, predictions) in enumerate(rows):
        for column in range(count):
            ax = axes[row, column]
            image = images[column]
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                ax.imshow(image, vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if predictions is not None:
                predicted = class_names[int(predictions[column])]
                wrong = predictions[column] != labels[column]
                caption = f"pred {predicted}"
                if row == 0:
                    caption = f"label {class_names[int(labels[column])]}\n{caption}"
                ax.set_title(caption, fontsize=8, color="tab:red" if wrong else "black")
        axes[row, 0].set_ylabel(name, fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def attack_examples(
    model: Callable, images: np.ndarray, labels: np.ndarray, attack: Attack
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(adversarial images, clean predictions, adversarial predictions) under `attack`.

    The random start is the one the evaluation draws for its first batch and first restart.
    """
    x = tf.convert_to_tensor(images, tf.float32)
    y = tf.convert_to_tensor(labels, tf.int32)
    seed = tf.random.experimental.stateless_fold_in([attack.seed, 0], 0)
    adversarial = tf.function(lambda x, y, seed: craft(model, x, y, attack, seed))(x, y, seed)

    def predict(batch):
        return tf.argmax(model(batch, training=False), axis=-1).numpy()

    return adversarial.numpy(), predict(x), predict(adversarial)


def save(figure: Figure, path: str | os.PathLike) -> Path:
    """Writes `figure` as a PNG, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.replaced_atomically(path) as staging:
        figure.savefig(staging, dpi=120)
    return path


def write_examples(
    model: Callable,
    images: np.ndarray,
    labels: np.ndarray,
    attacks: Sequence[Attack],
    directory: str | os.PathLike,
    class_names: Sequence[str],
) -> list[Path]:
    """One grid per attack, natural aside: `<directory>/<attack>_eps<eps>.png`."""
    written = []
    for attack in attacks:
        if attack.name == "natural":
            continue
        adversarial, clean_predictions, adversarial_predictions = attack_examples(
            model, images, labels, attack
        )
        figure = example_grid(
            images,
            adversarial,
            labels,
            clean_predictions,
            adversarial_predictions,
            eps=attack.eps,
            class_names=class_names,
            title=f"{attack.name}, {attack.norm} eps {attack.eps:g}",
        )
        written.append(save(figure, Path(directory) / f"{attack.name}_eps{attack.eps:g}.png"))
    return written


def model_label(path: str | os.PathLike, epoch: int | None) -> str:
    """A short name for a model: its workdir for <workdir>/<phase>/saved_model, else its
    directory's name, with the epoch of a checkpoint."""
    path = Path(path)
    name = path.parent.parent.name if path.name == "saved_model" else path.name
    return name if epoch is None or name.startswith("epoch_") else f"{name} epoch {epoch}"


def write_request_examples(
    request: runner.Request, doc: dict, directory: str | os.PathLike
) -> list[Path]:
    """Grids of the first NUM_EXAMPLES examples of the request's data under each of its attacks,
    for every model `doc` (the request's result) evaluated.

    One model: `<directory>/<attack>_eps<eps>.png`; several: one subdirectory per model.
    """
    info = data.info(request.dataset, request.data_dir)
    batches = data.load(
        request.dataset,
        request.split,
        batch_size=NUM_EXAMPLES,
        training=False,
        data_dir=request.data_dir,
        subset=request.subset,
        seed=request.seed,
    )
    images, labels = (t.numpy() for t in next(iter(batches)))
    attacks, _ = runner.attacks_for(request)
    paths = list(dict.fromkeys(e["model"]["path"] for e in doc["evaluations"]))
    written = []
    for path in paths:
        model = models.load(path, request.trust_model)
        out = Path(directory)
        if len(paths) > 1:
            out /= model_label(model.path, model.epoch).replace(" ", "_")
        written += write_examples(model.classifier, images, labels, attacks, out, info.class_names)
    return written


def eps_curve_figure(curves: Mapping[str, Sequence[dict]], title: str) -> Figure:
    """Accuracy against eps, one line per label, with 95 % confidence intervals as bars.

    `curves` maps a label to result records (`robustness.result_record`: settings.eps,
    accuracy, ci95) of one attack at several eps.
    """
    figure = Figure(figsize=(6.0, 4.0))
    ax = figure.subplots()
    for label, records in curves.items():
        records = sorted(records, key=lambda r: r["settings"]["eps"])
        eps = np.array([r["settings"]["eps"] for r in records])
        accuracy = np.array([r["accuracy"] for r in records])
        low = accuracy - np.array([r["ci95"]["low"] for r in records])
        high = np.array([r["ci95"]["high"] for r in records]) - accuracy
        ax.errorbar(eps, accuracy, yerr=[low, high], marker="o", capsize=3, label=label)
    ax.set_xlabel("eps (pixel units in [0, 1])")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def eps_curves(doc: dict) -> dict[str, list[dict]]:
    """The curves of an evaluation document: one per (model, split, attack), natural left out.

    Labels name the model (and the epoch of a checkpoint), the split when several were
    evaluated and the attack when several were run.
    """
    evaluations = doc["evaluations"]
    several_splits = len({e["data"]["split"] for e in evaluations}) > 1
    curves: dict[str, list[dict]] = {}
    for evaluation in evaluations:
        name = model_label(evaluation["model"]["path"], evaluation["model"]["epoch"])
        if several_splits:
            name += f" ({evaluation['data']['split']})"
        results = [r for r in evaluation["results"] if r["attack"] != "natural"]
        several_attacks = len({r["attack"] for r in results}) > 1
        for result in results:
            label = f"{name} {result['attack']}" if several_attacks else name
            curves.setdefault(label, []).append(result)
    return curves


def write_eps_curve(doc: dict, prefix: str | os.PathLike) -> list[Path]:
    """`<prefix>.csv` (the rows of `report.write_csv`) and `<prefix>.png` (`eps_curve_figure`)."""
    prefix = Path(prefix)
    csv_path, png_path = (prefix.with_name(prefix.name + suffix) for suffix in (".csv", ".png"))
    report.write_csv(doc, csv_path)
    first = doc["evaluations"][0]["data"]
    title = f"{first['dataset']}:{first['split']}, {first['num_examples']} examples"
    return [csv_path, save(eps_curve_figure(eps_curves(doc), title), png_path)]
