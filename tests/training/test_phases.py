"""A training phase's evaluation: a fixed test sample each epoch, the whole split at the end."""

import tensorflow as tf
from support import TINY_PRETRAINING

from configs import digits_demo
from tf_advreg import data
from tf_advreg.training import callbacks, legacy, phases


def test_epochs_read_a_test_sample_and_the_final_epoch_the_whole_split(tmp_path):
    config = digits_demo.get_config()
    legacy.override(config, TINY_PRETRAINING)
    (phase,) = phases.phases_from_config(config)

    phases.run_phase(config, phase, tmp_path, tf.distribute.get_strategy())

    records = callbacks.read_metrics(tmp_path / "pretrain" / "metrics.jsonl")
    whole = data.split_size("digits", config.eval.test_split)
    assert whole > 100
    assert [r["test/num_examples"] for r in records] == [100, whole]
    assert [r["train/num_examples"] for r in records] == [50, 50]
    for record in records:  # accuracies are counts over the examples read
        for key in ("test/natural_accuracy", "test/adversarial_accuracy"):
            correct = record[key] * record["test/num_examples"]
            assert abs(correct - round(correct)) < 1e-3
