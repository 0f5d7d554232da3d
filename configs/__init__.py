"""Experiment configs: one small Python file per experiment, returning a ConfigDict."""
