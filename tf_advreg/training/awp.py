"""Adversarial weight perturbation (AWP; Wu et al. 2020, "Adversarial Weight Perturbation Helps
Robust Generalization").

Each step, after the attack has found x', the weights are pushed uphill on the objective's own
training loss L (at x and x', BatchNorm in training mode) and the update's gradient is taken
there:

    g_l = dL/dw_l                                  (gradient of the global-batch mean loss)
    v_l = gamma * ||w_l|| / (||g_l|| + 1e-20) * g_l  (one ascent step, rescaled per layer)
    w  <- w - lr * (grad of L at w + v)              (the optimizer's step; v is not kept)

as the authors' code does (csdongxian/AWP, `utils_awp.py`: one SGD ascent step of a proxy
network, `diff_in_weights` rescales the change to ||w_l|| per tensor, `perturb`/`restore`
around the update). Like there, only tensors of rank >= 2 carry a perturbation (convolution
kernels and dense weights; not biases or BatchNorm scales), the norms are Frobenius norms of
whole tensors, the ascent gradient has no weight decay, and the ascent's BatchNorm statistics
are thrown away (their proxy network's are). The authors use gamma = 5e-3 for TRADES (from
epoch 10 of 1-based epochs) and 1e-2 for adversarial training (from the start).

Two choices differ from the in-place perturb/restore of that code, for exactness:
- The variables are never written. The forward passes read w + v through a Keras
  `StatelessScope`; the gradient flows to w (so it is the gradient at w + v), and no
  (w + v) - v rounding accumulates over steps. The BatchNorm statistics those passes compute
  are then assigned, as the authors' perturbed model updates its own.
- Weight decay (objectives: added to the gradient) acts on w, where PyTorch's SGD in that code
  decays w + v; the two differ by wd * v, about 2.5e-6 * ||w_l|| per step at wd = 5e-4.

Under tf.distribute each replica's gradient of `compute_average_loss` is its share of the
global one; they are summed across replicas before the norms, so every replica applies the
same v and the step equals the one-device step.
"""

import contextlib
from collections.abc import Callable, Iterator

import keras
import tensorflow as tf

_TINY = 1e-20  # the authors' EPS: no division by zero where a layer's gradient vanishes


def perturbed_variables(network: keras.Model) -> list:
    """The trainable variables AWP perturbs: those of rank >= 2 (kernels, not biases/BN)."""
    return [v for v in network.trainable_variables if len(v.shape) >= 2]


def weight_perturbation(
    gradients: list[tf.Tensor], variables: list, gamma: tf.Tensor | float
) -> list[tf.Tensor]:
    """v_l = gamma * ||w_l|| / (||g_l|| + 1e-20) * g_l for each variable w_l and gradient g_l."""
    return [
        gamma * tf.norm(tf.cast(w, g.dtype)) / (tf.norm(g) + _TINY) * g
        for g, w in zip(gradients, variables)
    ]


def perturbation(
    network: keras.Model, loss_fn: Callable[[], tf.Tensor], gamma: tf.Tensor | float
) -> list[tf.Tensor]:
    """The step's perturbation of `perturbed_variables(network)`, from `loss_fn()` at w.

    `loss_fn` returns this replica's share of the global-batch mean loss (as
    `tf.nn.compute_average_loss` gives). It runs in a `StatelessScope`, so the BatchNorm
    statistics it computes are discarded.
    """
    variables = perturbed_variables(network)
    with tf.GradientTape() as tape, keras.StatelessScope():
        loss = loss_fn()
    gradients = tape.gradient(loss, variables)
    gradients = tf.distribute.get_replica_context().all_reduce("sum", gradients)
    return weight_perturbation(gradients, variables, gamma)


@contextlib.contextmanager
def perturbed(network: keras.Model, perturbation: list[tf.Tensor] | None) -> Iterator[None]:
    """Within the block, `network` computes with w + v (v: `perturbation`); None: with w.

    Enter it inside the update's GradientTape, so the gradient reaches the variables. The
    block's non-trainable updates (BatchNorm statistics) are assigned when it ends.
    """
    if perturbation is None:
        yield
        return
    variables = perturbed_variables(network)
    mapping = [(w, w.value + tf.stop_gradient(v)) for w, v in zip(variables, perturbation)]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        yield
    for variable in network.non_trainable_variables:
        value = scope.get_current_value(variable)
        if value is not None:
            variable.assign(value)


class AwpWarmup(keras.callbacks.Callback):
    """Sets the model's `awp_gamma` to 0 before `start_epoch` (0-based) and to `gamma` from it.

    The authors' TRADES-AWP starts at epoch 10 of 1-based epochs: start_epoch=9. Set at each
    epoch's start, so a resumed run is at the right value from its first step.
    """

    def __init__(self, gamma: float, start_epoch: int):
        super().__init__()
        if gamma < 0 or start_epoch < 0:
            raise ValueError(
                f"AWP needs gamma >= 0 and start_epoch >= 0, got {gamma} and {start_epoch}."
            )
        self.gamma = gamma
        self.start_epoch = start_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.model.awp_gamma.assign(self.gamma if epoch >= self.start_epoch else 0.0)
