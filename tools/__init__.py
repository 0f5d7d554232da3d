"""Command-line entry points: thin absl mains over tf_advreg."""
