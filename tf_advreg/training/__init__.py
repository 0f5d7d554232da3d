"""Training: checkpoints, callbacks, strategies and the pretrain -> tune phases."""
