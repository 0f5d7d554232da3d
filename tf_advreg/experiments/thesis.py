"""The thesis's published numbers (Zhang 2019, Tables 4.1, 4.2 and 5.1-5.5), to set ours beside.

thesis_results.csv holds one published value per line: `table` (e.g. 4.1), and `row` and
`column` spelled as the thesis's table spells them (Table 5.5's two label columns are joined
as "<model> / <metric>").
"""

import csv
from pathlib import Path

RESULTS_FILE = Path(__file__).with_name("thesis_results.csv")
CAPTIONS = {
    "4.1": "Evaluation of TRADES",
    "4.2": "Evaluation of Adversarial Regularization",
    "5.1": "Pretraining: Natural Trainset Accuracy",
    "5.2": "Pretraining: Natural Testset Accuracy",
    "5.3": "Pretraining: Adversarial Trainset Accuracy",
    "5.4": "Pretraining: Adversarial Testset Accuracy",
    "5.5": "Pretraining: Full vs Sample Dataset",
}


def published(table: str) -> dict[tuple[str, str], float]:
    """{(row, column): value} of one thesis table."""
    with RESULTS_FILE.open(newline="") as f:
        return {
            (line["row"], line["column"]): float(line["value"])
            for line in csv.DictReader(f)
            if line["table"] == table
        }
