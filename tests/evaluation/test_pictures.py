"""Pictures of robustness: example grids and accuracy-vs-eps curves."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from tf_advreg.evaluation import pictures, robustness
from tf_advreg.evaluation.robustness import Attack

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_perturbation_image_maps_minus_eps_to_black_and_eps_to_white():
    clean = np.full((1, 2, 2, 1), 0.5, np.float32)
    adversarial = clean + np.array([-0.1, 0.0, 0.05, 0.1], np.float32).reshape(1, 2, 2, 1)
    image = pictures.perturbation_image(clean, adversarial, eps=0.1)
    np.testing.assert_allclose(image.ravel(), [0.0, 0.5, 0.75, 1.0], atol=1e-6)


def test_example_grid_captions_wrong_predictions_in_red(untrained, tmp_path):
    network, images, labels = untrained
    attack = Attack("pgd", eps=0.1, steps=3, step_size=0.05)
    adversarial, clean_pred, adversarial_pred = pictures.attack_examples(
        network, images[:4], labels[:4], attack
    )
    assert np.abs(adversarial - images[:4]).max() <= 0.1 + 1e-6
    labels = clean_pred.copy()  # every clean prediction right
    adversarial_pred = (labels + np.array([0, 1, 0, 1])) % 10  # two adversarial ones wrong
    figure = pictures.example_grid(
        images[:4],
        adversarial,
        labels,
        clean_pred,
        adversarial_pred,
        eps=0.1,
        class_names=[str(i) for i in range(10)],
        title="pgd",
    )
    axes = np.array(figure.axes).reshape(3, 4)
    colors = [ax.title.get_color() for ax in axes[1]]
    assert colors == ["black", "tab:red", "black", "tab:red"]
    assert [ax.title.get_text() for ax in axes[2]] == ["", "", "", ""]
    assert axes[0, 0].title.get_text().startswith(f"label {labels[0]}")
    path = pictures.save(figure, tmp_path / "sub" / "grid.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no staging file left


def test_attack_examples_draw_the_evaluations_first_random_start(digits_model):
    """The pictured examples are the ones the evaluation of a first batch attacks."""
    network, images, labels = digits_model
    images, labels = images[:64], labels[:64]
    attack = Attack("noise", eps=0.5, seed=3)  # noise this large flips many predictions
    _, _, predictions = pictures.attack_examples(network, images, labels, attack)
    (outcome,) = robustness.evaluate(network, [(images, labels)], [attack], jit_compile=False)
    assert 0 < outcome.correct.sum() < len(labels)
    assert np.array_equal(predictions == labels, outcome.correct)


def _record(attack, eps, correct, total=10):
    outcome = robustness.Outcome(
        attack, Attack(attack, eps=eps).settings(), np.arange(total) < correct, 0.0
    )
    return robustness.result_record(outcome)


def _doc(paths_and_epochs, attacks=("pgd",)):
    return {
        "evaluations": [
            {
                "model": {"path": path, "epoch": epoch},
                "data": {"dataset": "digits", "split": "test", "num_examples": 10},
                "results": [_record("natural", 0.0, 9)]
                + [_record(a, eps, 9 - int(40 * eps)) for a in attacks for eps in (0.0, 0.1)],
            }
            for path, epoch in paths_and_epochs
        ]
    }


@pytest.mark.parametrize(
    "models, attacks, labels",
    [
        ([("runs/ar5/tune/saved_model", None)], ("pgd",), ["ar5"]),
        (
            [("runs/x/pretrain/checkpoints/epoch_0001", 1), ("exports/robopt", None)],
            ("pgd",),
            ["epoch_0001", "robopt"],
        ),
        ([("runs/ar5", None)], ("pgd", "fgsm"), ["ar5 pgd", "ar5 fgsm"]),
    ],
)
def test_eps_curves_one_per_model_and_attack_without_natural(models, attacks, labels):
    curves = pictures.eps_curves(_doc(models, attacks))
    assert list(curves) == labels
    for records in curves.values():
        assert [r["settings"]["eps"] for r in records] == [0.0, 0.1]


def test_eps_curve_figure_plots_accuracy_with_interval_bars(tmp_path):
    curves = pictures.eps_curves(_doc([("a", None), ("b", None)]))
    figure = pictures.eps_curve_figure(curves, "digits")
    assert isinstance(figure, Figure)
    (ax,) = figure.axes
    assert [bars.get_label() for bars in ax.containers] == ["a", "b"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["a", "b"]
    data_line = ax.containers[0].lines[0]
    np.testing.assert_allclose(data_line.get_xdata(), [0.0, 0.1])
    np.testing.assert_allclose(data_line.get_ydata(), [0.9, 0.5])
    written = pictures.write_eps_curve(_doc([("a", None)]), tmp_path / "curve")
    assert [p.name for p in written] == ["curve.csv", "curve.png"]
    assert written[1].read_bytes()[:8] == PNG_MAGIC
    assert written[0].read_text().splitlines()[0].startswith("epoch,model,dataset")
