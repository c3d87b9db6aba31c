"""The CPU thread policy: its rule, its override, and that it never undoes a choice made by the user."""

import pytest
import torch

from i2b_minimal.method import hardware


@pytest.fixture
def untouched_torch(monkeypatch):
    """Torch as the package finds it: 4 threads, never set by this module; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    monkeypatch.setattr(hardware, "_AT_IMPORT", 4)
    monkeypatch.setattr(hardware, "_last_set", None)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("cpus, threads", [(1, 1), (2, 1), (3, 1), (8, 4), (16, 8)])
def test_half_the_cores_at_least_one(cpus, threads):
    assert hardware.policy_threads(cpus, environ={}) == threads


def test_i2b_threads_overrides_the_rule():
    assert hardware.policy_threads(16, environ={"I2B_THREADS": "3"}) == 3
    with pytest.raises(ValueError, match="I2B_THREADS='two'"):
        hardware.policy_threads(16, environ={"I2B_THREADS": "two"})
    with pytest.raises(ValueError, match="positive"):
        hardware.policy_threads(16, environ={"I2B_THREADS": "0"})


def test_the_rule_is_applied_to_an_untouched_torch(untouched_torch):
    expected = max(1, hardware.available_cpus() // 2)
    assert hardware.apply_thread_policy(environ={}) == expected
    assert torch.get_num_threads() == expected
    assert hardware.apply_thread_policy(environ={"I2B_THREADS": "3"}) == 3  # the setting, read at every call
    assert torch.get_num_threads() == 3


def test_a_users_set_num_threads_wins(untouched_torch):
    torch.set_num_threads(3)  # the user's choice, after the import
    assert hardware.apply_thread_policy(environ={"I2B_THREADS": "1"}) == 3
    assert torch.get_num_threads() == 3


def test_a_choice_after_the_policy_ran_also_wins(untouched_torch):
    hardware.apply_thread_policy(environ={"I2B_THREADS": "1"})
    torch.set_num_threads(4)  # back to torch's own count, on purpose
    assert hardware.apply_thread_policy(environ={}) == 4
    assert torch.get_num_threads() == 4


def test_openmp_variables_are_left_to_torch(untouched_torch):
    assert hardware.apply_thread_policy(environ={"OMP_NUM_THREADS": "4"}) == 4
    assert torch.get_num_threads() == 4
    assert hardware.apply_thread_policy(environ={"OMP_NUM_THREADS": "4", "I2B_THREADS": "2"}) == 2  # ours wins


def test_best_device_applies_the_policy(untouched_torch, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("I2B_THREADS", "2")
    assert hardware.best_device("cpu") == torch.device("cpu")
    assert torch.get_num_threads() == 2
