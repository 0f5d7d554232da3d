"""Training objectives: one `keras.Model` subclass each, overriding `train_step`/`test_step`.

The base class `AdversarialModel` wraps a network (images in [0, 1] -> logits) and holds the
attack settings. A subclass states only which loss its attack maximises (`attack_loss`) and
which per-example loss training minimises (`training_loss`); the step's control flow lives
in one place. Everything else (logging, checkpoints) belongs in callbacks.

Each class also describes itself: its `config_name`, the `display_name` reports use, and
whether it takes a `regularizer` and a `beta`. Adding an objective is one class here and its
entry in OBJECTIVES; config validation, tools.train, tools.report and tools.benchmark read it
from there.

| class                     | attack maximises       | training minimises                    |
|---------------------------|------------------------|---------------------------------------|
| NaturalTraining           | (no attack)            | CE(z(x), y)                           |
| RobustOptimization        | CE(z(x'), y)           | CE(z(x'), y)                          |
| Trades(beta)              | KL(p(x) || p(x'))      | CE(z(x), y) + beta KL(p(x) || p(x'))  |
| AdversarialRegularization | CE(z(x'), y) + beta KL | CE(z(x'), y) + beta KL(p(x) || p(x')) |
| AdversarialLogitPairing   | CE(z(x'), y)           | CE(z(x), y) + beta sum_k gap_k^2      |
| KannanLogitPairing        | CE(z(x'), y)           | (CE(z(x), y) + CE(z(x'), y)) / 2      |
|                           |                        |   + beta mean_k gap_k^2               |
| Mart(beta)                | CE(z(x'), y)           | BCE(p(x'), y) + beta KL (1 - p_y(x))  |

gap_k = z_k(x') - z_k(x). AdversarialLogitPairing is the thesis's form (§2.2);
KannanLogitPairing is what Kannan et al.'s code trains. Trades and AdversarialRegularization
take `regularizer`, the distance in place of KL in both columns (losses.REGULARIZERS: kl,
symmetric_kl, total_variation, jensen_shannon); the others have no distance between p(x) and
p(x') to swap (ALP's is between logits, MART's KL is weighted) and accept only "kl".
"""

import zlib
from numbers import Real

import keras
import tensorflow as tf

from tf_advreg import losses
from tf_advreg.attacks import AttackSettings, pgd
from tf_advreg.attacks.settings import check_loss
from tf_advreg.training import awp, batchnorm, ema


def _replica_counter(name: str) -> keras.Variable:
    """An int32 counter each replica keeps (on_read, like the metrics' counts)."""
    return keras.Variable(
        0,
        dtype="int32",
        trainable=False,
        name=name,
        synchronization="on_read",
        aggregation="only_first_replica",
    )


class AdversarialModel(keras.Model):
    """Shared step logic: attack (inference-mode BatchNorm), then one update on the loss.

    eps and the step sizes live in non-trainable variables, so changing them (e.g. an eps
    schedule) does not retrace the compiled step. The per-example loss is averaged over the
    global batch (`tf.nn.compute_average_loss`), so the step is exact under tf.distribute.
    Weight decay is added to the gradient before the optimizer, as PyTorch's SGD (used by the
    Madry and TRADES code) does; Keras's own `weight_decay` is decoupled and ~10x weaker
    with momentum 0.9. Each replica adds wd * w / num_replicas: the optimizer sums the
    replicas' gradients, so the sum carries wd * w once, as on one device. (Adding it after
    the sum would mean overriding the optimizer's cross-replica aggregation, which Keras
    keeps private.)

    Beyond the thesis, each objective takes `awp_gamma` (adversarial weight perturbation,
    training/awp.py) and `ema_decay` (an average of the weights kept beside them,
    training/ema.py); 0 turns either off and leaves the step exactly as without it.
    """

    config_name: str  # in configs: `--config.pretrain.objective=<config_name>`
    display_name: str  # in tables and figures: "TRADES 3.0"
    attack_loss: str | None = "ce"  # one of attacks.ATTACK_LOSSES; None: no attack
    takes_regularizer = False  # whether `regularizer` may name another distance than KL
    uses_beta = True  # whether `beta` weighs a term (a report labels it with its beta)

    def __init__(
        self,
        network: keras.Model,
        *,
        attack: AttackSettings,
        beta: float = 0.0,
        regularizer: str = "kl",
        random_start: bool = True,
        weight_decay: float = 0.0,
        awp_gamma: float = 0.0,
        ema_decay: float = 0.0,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # What `with_network` needs to build the same objective and attacks around another network.
        self._settings = dict(
            attack=attack, beta=beta, regularizer=regularizer, random_start=random_start, seed=seed
        )
        # `attack` was checked when it was made; the objective checks what it adds.
        check_loss(self.attack_loss or "ce", "attack_loss")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}.")
        losses.check_regularizer(regularizer)
        if regularizer != "kl" and not self.takes_regularizer:
            raise ValueError(
                f"regularizer {regularizer!r} applies to {' and '.join(regularized())} only; "
                f"{type(self).__name__} takes regularizer 'kl'."
            )
        if isinstance(weight_decay, Real) and weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}.")
        if awp_gamma < 0:
            raise ValueError(
                f"awp_gamma must be >= 0 (0: no weight perturbation), got {awp_gamma}."
            )
        self.network = network
        self.beta = float(beta)
        self.regularizer = regularizer
        self.norm = attack.norm
        self.random_start = random_start
        self.attack_steps = int(attack.steps)
        # The per-epoch evaluation attack: tools.evaluate's `pgd` (attacks.Attack) at the
        # evaluation settings, so the two measure the same thing.
        self.eval_attack_loss = attack.evaluation.loss
        self.eval_attack_steps = int(attack.evaluation.steps)
        self.attack_bn_training = attack.bn_training
        self.weight_decay = float(weight_decay)
        self.seed = int(seed)
        self.eps = keras.Variable(attack.eps, dtype="float32", trainable=False, name="eps")
        self.attack_step_size = keras.Variable(
            attack.step_size, dtype="float32", trainable=False, name="attack_step_size"
        )
        self.eval_attack_step_size = keras.Variable(
            attack.evaluation.step_size,
            dtype="float32",
            trainable=False,
            name="eval_attack_step_size",
        )
        # Adversarial weight perturbation's relative size (training/awp.py); a variable, so its
        # warm-up does not retrace the step. None when off: the step is then exactly without it.
        self.awp_gamma = None
        if awp_gamma:
            self.awp_gamma = keras.Variable(
                awp_gamma, dtype="float32", trainable=False, name="awp_gamma"
            )
        # The evaluation set's key (`label_evaluation`) and the attacks of this `evaluate` call
        # so far: folded into the evaluation seed, so each batch of each set gets its own start,
        # the same in a resumed run and whichever other sets are evaluated.
        self.eval_set_key = _replica_counter("eval_set_key")
        self.eval_batches = _replica_counter("eval_batches")
        # Weight averaging (training/ema.py), updated after each step; None when off.
        self.weight_average = ema.WeightAverage(network, ema_decay) if ema_decay else None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.natural_accuracy = keras.metrics.SparseCategoricalAccuracy(name="natural_accuracy")
        self.adversarial_accuracy = keras.metrics.SparseCategoricalAccuracy(
            name="adversarial_accuracy"
        )

    def compile(self, *args, **kwargs):
        """Keras's compile, then the optimizer's variables. Outside a distribution strategy
        Keras creates them inside the first traced train step, and a tf.function that creates
        variables is traced twice: building them here halves the step's tracing time."""
        super().compile(*args, **kwargs)
        with self.distribute_strategy.scope():
            self.optimizer.build(self.network.trainable_variables)

    @property
    def needs_natural_logits(self) -> bool:
        """Whether `training_loss` reads z(x) (computed in training mode, under the tape)."""
        return True

    def with_network(self, network: keras.Model) -> "AdversarialModel":
        """This objective with the same attacks around `network` (e.g. the weight average), to
        evaluate it alike; without AWP or averaging, which only training uses."""
        return type(self)(network, **self._settings)

    def training_loss(
        self, logits_nat: tf.Tensor | None, logits_adv: tf.Tensor | None, labels: tf.Tensor
    ) -> tf.Tensor:
        """Per-example loss minimised over the weights."""
        raise NotImplementedError

    @property
    def metrics(self):
        return [self.loss_tracker, self.natural_accuracy, self.adversarial_accuracy]

    def call(self, images, training=False):
        return self.network(images, training=training)

    def label_evaluation(self, label: str) -> None:
        """The evaluations from here on are of the set `label`: their attacks' starts depend on
        the step, the label and the batch's place in its `evaluate` call alone."""
        self.eval_set_key.assign(zlib.crc32(label.encode()) & 0x7FFFFFFF)

    def evaluate(self, *args, **kwargs):
        """Keras's evaluate, its attacks' starts counted from its first batch (see
        `label_evaluation`)."""
        self.eval_batches.assign(0)
        return super().evaluate(*args, **kwargs)

    def _attack_seed(self, evaluation: bool) -> tf.Tensor:
        """A fresh stateless seed per train step, evaluation set and batch, and replica,
        reproducible from `seed`."""
        replica = tf.distribute.get_replica_context()
        replica_id = 0 if replica is None else replica.replica_id_in_sync_group
        step = tf.cast(self.optimizer.iterations, tf.int32)
        seed = tf.stack([self.seed + tf.cast(replica_id, tf.int32), step])
        if not evaluation:
            return seed
        seed = tf.random.experimental.stateless_fold_in(seed, self.eval_set_key.value)
        seed = tf.random.experimental.stateless_fold_in(seed, self.eval_batches.value)
        self.eval_batches.assign_add(1)
        return seed

    def attack(self, images, labels, *, evaluation: bool = False) -> tf.Tensor:
        """The adversarial batch for training (this objective's loss) or evaluation (PGD-CE).

        Each evaluation call between two train steps starts from its own random point.
        """
        return pgd(
            self.network,
            images,
            labels,
            eps=self.eps,
            step_size=self.eval_attack_step_size if evaluation else self.attack_step_size,
            steps=self.eval_attack_steps if evaluation else self.attack_steps,
            loss=self.eval_attack_loss if evaluation else self.attack_loss,
            beta=self.beta,
            regularizer=self.regularizer,
            norm=self.norm,
            random_start=self.random_start,
            training=self.attack_bn_training and not evaluation,
            seed=self._attack_seed(evaluation),
        )

    def train_step(self, data):
        images, labels = data[0], data[1]
        images_adv = None if self.attack_loss is None else self.attack(images, labels)
        variables = self.network.trainable_variables
        perturbation = self._weight_perturbation(images, images_adv, labels)
        with tf.GradientTape() as tape, awp.perturbed(self.network, perturbation):
            logits_nat, logits_adv, per_example = self._forward(images, images_adv, labels)
            loss = tf.nn.compute_average_loss(per_example)
        gradients = tape.gradient(loss, variables)
        if self.weight_decay:
            gradients = self._add_weight_decay(gradients, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        batchnorm.share_moving_statistics(self.network)  # before averaging: one copy to average
        if self.weight_average is not None:
            self.weight_average.update(self.network)

        if logits_nat is None:
            # Natural accuracy for objectives that never see z(x): one inference-mode forward,
            # so BatchNorm statistics are not touched.
            logits_nat = self.network(images, training=False)
        self.loss_tracker.update_state(per_example)
        self.natural_accuracy.update_state(labels, logits_nat)
        if logits_adv is None:
            return {m.name: m.result() for m in (self.loss_tracker, self.natural_accuracy)}
        self.adversarial_accuracy.update_state(labels, logits_adv)
        return {m.name: m.result() for m in self.metrics}

    def _forward(self, images, images_adv, labels):
        """z(x) (if the loss reads it), z(x') and the per-example training loss; training mode."""
        logits_nat = self.network(images, training=True) if self.needs_natural_logits else None
        logits_adv = None if images_adv is None else self.network(images_adv, training=True)
        return logits_nat, logits_adv, self.training_loss(logits_nat, logits_adv, labels)

    def _weight_perturbation(self, images, images_adv, labels):
        """AWP hook: the weight perturbation for this step's update; None without AWP."""
        if self.awp_gamma is None:
            return None

        def loss():
            return tf.nn.compute_average_loss(self._forward(images, images_adv, labels)[2])

        return awp.perturbation(self.network, loss, self.awp_gamma)

    def _add_weight_decay(self, gradients, variables):
        """gradient + wd * w / num_replicas, so the cross-replica sum adds wd * w once."""
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        decay = self.weight_decay / replicas
        return [g + decay * tf.cast(v, g.dtype) for g, v in zip(gradients, variables)]

    def test_step(self, data):
        """Natural and PGD (evaluation settings, CE loss) accuracy; loss at those points."""
        images, labels = data[0], data[1]
        images_adv = self.attack(images, labels, evaluation=True)
        logits_nat = self.network(images, training=False)
        logits_adv = self.network(images_adv, training=False)
        self.loss_tracker.update_state(self.training_loss(logits_nat, logits_adv, labels))
        self.natural_accuracy.update_state(labels, logits_nat)
        self.adversarial_accuracy.update_state(labels, logits_adv)
        return {m.name: m.result() for m in self.metrics}


class NaturalTraining(AdversarialModel):
    """Standard training on clean images; evaluation still reports PGD accuracy."""

    config_name = "natural"
    display_name = "Natural"
    uses_beta = False
    attack_loss = None

    def training_loss(self, logits_nat, logits_adv, labels):
        return losses.cross_entropy(logits_nat, labels, reduction="none")


class RobustOptimization(AdversarialModel):
    """Madry et al. (2018): min over weights of max over the ball of CE."""

    config_name = "robopt"
    display_name = "Rob Opt"
    uses_beta = False
    attack_loss = "ce"

    @property
    def needs_natural_logits(self) -> bool:
        return False

    def training_loss(self, logits_nat, logits_adv, labels):
        return losses.cross_entropy(logits_adv, labels, reduction="none")


class Trades(AdversarialModel):
    """Zhang et al. (2019): natural CE plus beta times the KL the attack maximised."""

    config_name = "trades"
    display_name = "TRADES"
    attack_loss = "kl"
    takes_regularizer = True

    def training_loss(self, logits_nat, logits_adv, labels):
        return losses.trades_loss(
            logits_nat, logits_adv, labels, self.beta, distance=self.regularizer, reduction="none"
        )


class AdversarialRegularization(AdversarialModel):
    """Thesis Alg. 3: the attack and the update share CE(z(x'), y) + beta KL(p(x) || p(x'))."""

    config_name = "ar"
    display_name = "AR"
    attack_loss = "ce+kl"
    takes_regularizer = True

    @property
    def needs_natural_logits(self) -> bool:
        # At beta = 0 the loss is robust optimization's; skipping z(x) keeps the step (and the
        # BatchNorm statistics) identical to it.
        return self.beta != 0

    def training_loss(self, logits_nat, logits_adv, labels):
        if logits_nat is None:
            return losses.cross_entropy(logits_adv, labels, reduction="none")
        return losses.ar_loss(
            logits_nat, logits_adv, labels, self.beta, distance=self.regularizer, reduction="none"
        )


class AdversarialLogitPairing(AdversarialModel):
    """Logit pairing in the thesis's form (§2.2, after Kannan et al. 2018): natural CE plus beta
    times the squared logit distance, summed over classes."""

    config_name = "alp"
    display_name = "ALP"
    attack_loss = "ce"

    def training_loss(self, logits_nat, logits_adv, labels):
        return losses.alp_loss(logits_nat, logits_adv, labels, self.beta, reduction="none")


class KannanLogitPairing(AdversarialModel):
    """Logit pairing as Kannan et al.'s (2018) code trains it: the mean of the natural and the
    adversarial CE, plus beta times the squared logit gap averaged over classes."""

    config_name = "alp_kannan"
    display_name = "ALP (Kannan)"
    attack_loss = "ce"

    def training_loss(self, logits_nat, logits_adv, labels):
        return losses.alp_kannan_loss(logits_nat, logits_adv, labels, self.beta, reduction="none")


class Mart(AdversarialModel):
    """Wang et al. (2020): boosted CE on x' plus a KL weighted by natural misclassification."""

    config_name = "mart"
    display_name = "MART"
    attack_loss = "ce"

    def training_loss(self, logits_nat, logits_adv, labels):
        return losses.mart_loss(logits_nat, logits_adv, labels, self.beta, reduction="none")


OBJECTIVES = {
    cls.config_name: cls
    for cls in (
        NaturalTraining,
        RobustOptimization,
        Trades,
        AdversarialRegularization,
        AdversarialLogitPairing,
        KannanLogitPairing,
        Mart,
    )
}


def objective_class(name: str) -> type[AdversarialModel]:
    """The objective named `name`, or a ValueError listing the valid names."""
    if name not in OBJECTIVES:
        raise ValueError(f"Unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}.")
    return OBJECTIVES[name]


def regularized() -> list[str]:
    """The objectives whose regularizer may be another distance than KL."""
    return [name for name, cls in OBJECTIVES.items() if cls.takes_regularizer]


def label(name: str, beta: float) -> str:
    """As the thesis's tables name a training method: Rob Opt, TRADES 0.5, AR 5.0."""
    cls = objective_class(name)
    return f"{cls.display_name} {beta:.1f}" if cls.uses_beta else cls.display_name
