"""Landscape slices as a JSON document and a PNG: per image, the image, the loss surface and the
decision regions in the same plane, the eps-ball drawn on the regions."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a cluster node
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402

from tf_advreg import files  # noqa: E402
from tf_advreg.evaluation.landscape import Settings, Slice, mean_summary  # noqa: E402

JSON_NAME, PNG_NAME = "landscape.json", "landscape.png"


def document(model: dict, data: dict, settings: Settings, slices: list[Slice]) -> dict:
    """Everything needed to redraw the pictures or compare models: settings, grids, summaries."""
    return {
        "model": model,
        "data": data,
        "settings": {
            "eps": settings.eps,
            "span": settings.span,
            "resolution": settings.resolution,
            "seed": settings.seed,
            "directions": "adversarial: sign of the CE gradient; random: Rademacher",
        },
        "summary": mean_summary(slices),
        "images": [
            {
                **s.summary(),
                "coordinates": s.coordinates.tolist(),
                "loss": np.round(s.loss, 5).tolist(),
                "prediction": s.prediction.tolist(),
            }
            for s in slices
        ],
    }


def _regions_colormap(num_classes: int) -> tuple[ListedColormap, BoundaryNorm]:
    base = plt.get_cmap("tab10" if num_classes <= 10 else "tab20")
    colors = [base(i % base.N) for i in range(num_classes)]
    return ListedColormap(colors), BoundaryNorm(np.arange(num_classes + 1) - 0.5, num_classes)


def figure(images: np.ndarray, slices: list[Slice], num_classes: int, title: str) -> plt.Figure:
    """One row per image: the image, its loss surface (3-D) and its decision regions."""
    rows = len(slices)
    fig = plt.figure(figsize=(11, 3.4 * rows))
    cmap, norm = _regions_colormap(num_classes)
    for row, (image, s) in enumerate(zip(images, slices)):
        extent = (s.coordinates[0], s.coordinates[-1])
        a, b = np.meshgrid(s.coordinates, s.coordinates, indexing="ij")

        ax = fig.add_subplot(rows, 3, 3 * row + 1)
        ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
        ax.set_title(f"label {s.label}")
        ax.axis("off")

        ax = fig.add_subplot(rows, 3, 3 * row + 2, projection="3d")
        ax.plot_surface(a, b, s.loss, cmap="viridis", linewidth=0)
        ax.set_xlabel("adversarial (eps)")
        ax.set_ylabel("random (eps)")
        ax.set_zlabel("CE loss")

        ax = fig.add_subplot(rows, 3, 3 * row + 3)
        shown = ax.imshow(
            s.prediction.T,  # rows of the picture: random axis; columns: adversarial axis
            origin="lower",
            extent=(*extent, *extent),
            cmap=cmap,
            norm=norm,
            interpolation="nearest",
        )
        ax.plot([1, 0, -1, 0, 1], [0, 1, 0, -1, 0], color="white", linewidth=1.2)
        ax.plot([0], [0], marker="x", color="black")
        ax.set_xlabel("adversarial (eps)")
        ax.set_ylabel("random (eps)")
        ax.set_title(f"predicted class ({s.summary()['flipped_fraction']:.0%} flipped in ball)")
        fig.colorbar(shown, ax=ax, ticks=range(num_classes), fraction=0.046)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def write(out: Path, doc: dict, fig: plt.Figure) -> list[Path]:
    """Writes landscape.json and landscape.png into `out`, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    files.write_text(out / JSON_NAME, json.dumps(doc, indent=1) + "\n")
    with files.replaced_atomically(out / PNG_NAME) as staging:
        fig.savefig(staging, dpi=80)
    plt.close(fig)
    return [out / JSON_NAME, out / PNG_NAME]
