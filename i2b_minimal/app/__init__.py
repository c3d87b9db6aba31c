"""What the ``i2b`` command runs: the pipeline (train, sample, evaluate, quickstart), its report, the CLI."""
