"""tf_advreg: adversarially robust image classifiers in TensorFlow/Keras."""

__version__ = "0.1.0"
