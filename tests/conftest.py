"""Test-wide settings and shared fixtures.

The environment variables are set at import time, before any test imports
huggingface_hub (which reads HF_HUB_OFFLINE once, at import) or matplotlib,
and before nbval starts notebook kernels (which inherit them).
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("I2B_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_eeg_root(tmp_path_factory):
    """The tiny synthetic THINGS-EEG2 world, written once per test session."""
    from i2b_minimal import synthetic

    return synthetic.make_dataset(tmp_path_factory.mktemp("eeg") / "root", modality="eeg", preset="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_meg_root(tmp_path_factory):
    """The tiny synthetic THINGS-MEG world, written once per test session."""
    from i2b_minimal import synthetic

    return synthetic.make_dataset(tmp_path_factory.mktemp("meg") / "root", modality="meg", preset="tiny", seed=0)
