"""The thesis's grids of runs, as per-run config overrides, shared by both scales.

The thesis reports its robust-optimization model as the lambda = 0 row of both Table 4.1 and
Table 4.2 ("we include the Robust Optimization model as a baseline. It is represented as the 0
regularization model in both tables"), so lambda = 0 is `robopt`, not TRADES with beta 0
(which would be natural training).
"""

from tf_advreg import data

LAMBDAS = (0.1, 0.2, 0.4, 0.8, 1.0, 2.0, 3.0, 5.0)
ROBOPT = ("robopt", 0.0)
# Tables 5.1-5.4: columns (pretraining) and rows (tuning; None: the pretrained model itself).
TABLE_5_PRETRAIN = (ROBOPT, ("trades", 0.1), ("trades", 0.5), ("trades", 1.0), ("trades", 3.0))
TABLE_5_TUNE = (
    None,
    ROBOPT,
    ("trades", 0.1),
    ("trades", 0.5),
    ("trades", 1.0),
    ("trades", 3.0),
    ("trades", 5.0),
)
# Figures 5-1..5-4 and Table 5.5: the thesis's three pretrain -> tune pairs.
PAIRS = ((ROBOPT, ROBOPT), (("trades", 3.0), ("trades", 5.0)), (("ar", 1.0), ("ar", 5.0)))

# The thesis's future work: other distances in place of KL, and other pretraining sizes.
REGULARIZERS = ("kl", "symmetric_kl", "total_variation", "jensen_shannon")
REGULARIZED = ("trades", "ar")

Method = tuple[str, float]


def pretrain(method: Method) -> dict:
    objective, beta = method
    return {"pretrain.objective": objective, "pretrain.beta": beta}


def tune(method: Method | None) -> dict:
    """None: untuned, the pretraining alone, which is then also evaluated on the tune data."""
    if method is None:
        return {"tune.epochs": 0}
    objective, beta = method
    return {"tune.objective": objective, "tune.beta": beta}


def lambda_grid(objective: str) -> list[dict]:
    """Tables 4.1 (trades) and 4.2 (ar): robust optimization, then the objective at each lambda."""
    return [pretrain(ROBOPT)] + [pretrain((objective, beta)) for beta in LAMBDAS]


def pretrain_tune_grid() -> list[dict]:
    """Tables 5.1-5.4: every pretraining with every tuning, and untuned."""
    return [pretrain(p) | tune(t) for p in TABLE_5_PRETRAIN for t in TABLE_5_TUNE]


def tune_alone_grid() -> list[dict]:
    """Table 4.1's rows at the lambdas of Tables 5.1-5.4's tunings (robust optimization and
    TRADES at 0.1, 1, 3, 5; 0.5 is no row of Table 4.1): the runs trained from scratch that the
    tuned ones are compared with."""
    rows = [ROBOPT] + [("trades", beta) for beta in LAMBDAS]
    return [pretrain(method) for method in TABLE_5_TUNE if method in rows]


def pairs() -> list[dict]:
    """Figures 5-1..5-4: the three pairs."""
    return [pretrain(p) | tune(t) for p, t in PAIRS]


def subset_pairs(subset: int) -> list[dict]:
    """Table 5.5: the three pairs pretrained on the whole split and on a `subset` sample."""
    return [run | {"pretrain.subset": size} for size in (0, subset) for run in pairs()]


def regularizer_grid() -> list[dict]:
    """TRADES and AR at each lambda with each distance, and robust optimization (lambda = 0).
    The KL entries are Figures 4-x's runs (same names), so a shared root trains them once."""
    return [pretrain(ROBOPT)] + [
        pretrain((objective, beta)) | {"pretrain.regularizer": regularizer}
        for objective in REGULARIZED
        for regularizer in REGULARIZERS
        for beta in LAMBDAS
    ]


def pretrain_size_grid(sizes: tuple[int, ...]) -> list[dict]:
    """The three pairs pretrained on each sample size (0: the whole split, Table 5.5's runs)."""
    return [run | {"pretrain.subset": size} for size in sizes for run in pairs()]


def pretrain_size_same_steps_grid(sizes: tuple[int, ...], config) -> list[dict]:
    """pretrain_size_grid with every sample pretrained for about as many steps as `config`'s
    pretraining takes on the whole split: epochs = those steps over the sample's steps per
    epoch, rounded. With fixed epochs a smaller sample is also a shorter pretraining; here
    only the number of distinct images changes along the curve."""
    whole = data.split_size(config.pretrain.dataset, config.pretrain.split)
    steps = whole // config.batch_size * config.pretrain.epochs
    cells = []
    for cell in pretrain_size_grid(sizes):
        size = cell["pretrain.subset"]
        if size:  # 0: the whole split, at its own epochs
            cell |= {"pretrain.epochs": round(steps / (size // config.batch_size))}
        cells.append(cell)
    return cells
