"""The embedded offline demo: pretrain -> tune on scikit-learn's digits in ~2.5 CPU minutes.

The thesis pipeline at toy scale: TRADES (lambda 3) pretraining on one part of the digits
training images (997), TRADES (lambda 5) tuning on the rest (300), the thesis's best pair.
Scaled for 8x8 digits on two CPU cores: a width-16 ResNet18, batch 50 (more steps per epoch
on so few images), eps 0.1 (8x8 digits shrug off 0.03) with the thesis's step-to-eps ratios,
and XLA off, because on CPU XLA runs the attack's while-loop slower than graph mode does
(see docs/performance.md).
"""

from configs import default


def get_config():
    config = default.get_config()
    config.pretrain.update(
        dataset="digits", split="pretrain", objective="trades", beta=3.0, epochs=8, lr=0.1
    )
    config.tune.update(
        dataset="digits", split="tune", objective="trades", beta=5.0, epochs=4, lr=0.01
    )
    config.model.width = 16
    config.batch_size = 50
    config.attack.update(eps=0.1, step_size=0.025, eval_step_size=0.01)
    config.eval.train_subset = 500
    config.workdir = "runs/digits_demo"
    return config
