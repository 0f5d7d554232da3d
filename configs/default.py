"""The thesis settings (Zhang 2019, chapters 4-5): CINIC-10 pretraining, CIFAR-10 tuning.

Every field is also a plain flag of `python -m tools.train` with the same name, and any field
can be set with `--config.<field>=<value>`. Settings the thesis does not state are marked
"our choice" and follow the Madry / TRADES reference code.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()

    # Data. The thesis pretrains on CINIC-10 train+valid (180k images) and tunes on CIFAR-10.
    config.pretrain_dataset = "cinic10"
    config.pretrain_split = "train+validation"
    config.pretrain_subset = 0  # 0: the whole split; Table 5.5 uses 50_000
    config.tune_dataset = "cifar10"  # "": no tune phase
    config.tune_split = "train"
    config.test_split = "test"
    config.data_dir = ""  # "": the TFDS default (~/tensorflow_datasets)
    config.augment = "default"  # our choice: random crop (4 px padding) + horizontal flip

    # Model: CIFAR ResNet18 (11.17 M parameters at width 64).
    config.width = 64
    config.sync_batchnorm = False  # our choice: per-replica BatchNorm statistics, as PyTorch DDP

    # Objectives: natural, robopt, trades, ar, alp, alp_kannan, mart; beta is the thesis's lambda.
    config.pretrain_objective = "robopt"
    config.pretrain_beta = 0.0
    # The distance trades and ar regularize with: kl (the thesis's), symmetric_kl,
    # total_variation, jensen_shannon (the thesis's future work).
    config.pretrain_regularizer = "kl"
    config.tune_objective = "robopt"
    config.tune_beta = 0.0
    config.tune_regularizer = "kl"
    config.tune_init_checkpoint = ""  # "": start tuning from this run's last pretrain checkpoint

    # Optimisation: 100 epochs per phase, batch 100, lr 0.1 (pretrain) and 0.001 (tune).
    config.pretrain_epochs = 100
    config.tune_epochs = 100
    config.batch_size = 100
    config.pretrain_lr = 0.1
    config.tune_lr = 0.001
    config.lr_schedule = "step"  # our choice: x0.1 at 50% and 75% of the phase; or cosine, constant
    config.momentum = 0.9  # our choice (SGD, as Madry / TRADES)
    config.nesterov = False
    config.weight_decay = 2e-4  # our choice (TRADES's CIFAR value), coupled as in PyTorch SGD

    # Threat model: L-inf eps 0.03; train PGD-10 step 0.007; evaluate PGD-20 step 0.003.
    config.eps = 0.03
    config.attack_norm = "linf"
    config.attack_steps = 10
    config.attack_step_size = 0.007
    config.eval_attack_steps = 20
    config.eval_attack_step_size = 0.003
    config.attack_bn_training = False  # our choice: BatchNorm in inference mode during attacks

    # Evaluation each `eval_every` epochs: natural and PGD accuracy on the test split, on the
    # training split and, while tuning, on the pretraining data (thesis Figures 5-1..5-4).
    config.eval_every = 1
    config.train_eval_subset = 10_000  # our choice: a class-balanced sample; 0: whole split
    # Our choice: a fixed class-balanced test sample per epoch (PGD-20 on CINIC-10's 90k test
    # images costs half a pretraining epoch); the final epoch reads the whole split. 0: always.
    config.test_eval_subset = 10_000

    # Run.
    config.workdir = "runs/thesis"
    config.keep_checkpoints = 0  # 0: keep every epoch's checkpoint (Figures 5-x need them)
    config.seed = 0
    config.strategy = "auto"  # auto, default, mirrored, multi_worker
    config.jit_compile = "auto"  # auto: XLA on GPUs and TPUs, not on CPUs; true; false
    config.mixed_precision = False  # True: mixed_bfloat16 with float32 logits and losses
    config.steps_per_execution = 1
    config.deterministic = False  # True: TF op determinism (bit-identical reruns, slower)
    return config
