"""Exercise checks of notebooks 08-10: each accepts the solution, rejects a wrong answer, and waits for None.

Expected answers are also checked against an independent reference: the
library's metrics for the noise ceiling and identification, MNE's
``Evoked.get_peak`` for the N1 channel, and numpy for the array size.
"""

import numpy as np

from i2b_minimal import metrics
from i2b_minimal.exercises import NOT_ANSWERED, nb08, nb09, nb10

# -- nb08 ---------------------------------------------------------------------------------------------


def test_nb08_noise_ceiling(capsys):
    assert nb08.check_noise_ceiling(2 / 3, np.sqrt(2 / 3))
    assert "Right" in capsys.readouterr().out
    assert not nb08.check_noise_ceiling(0.5, np.sqrt(0.5))  # forgot Spearman-Brown
    assert not nb08.check_noise_ceiling(2 / 3, 2 / 3)  # forgot the square root
    assert "Hint" in capsys.readouterr().out
    assert not nb08.check_noise_ceiling(None, 0.8)
    assert NOT_ANSWERED in capsys.readouterr().out


def test_nb08_expected_values_match_the_library():
    reliability, ceiling = nb08.reliability_and_ceiling(0.5)
    assert np.isclose(reliability, metrics.spearman_brown(0.5, 2))
    assert np.isclose(ceiling, np.sqrt(metrics.spearman_brown(0.5, 2)))


def test_nb08_chance_levels(capsys):
    assert nb08.check_chance_levels(0.5, 1 / 16, n_images=16)
    assert not nb08.check_chance_levels(1 / 16, 1 / 16, n_images=16)
    assert not nb08.check_chance_levels(0.5, 0.5, n_images=16)
    assert not nb08.check_chance_levels(0.5, None, n_images=16)
    assert NOT_ANSWERED in capsys.readouterr().out


def test_nb08_chance_levels_match_a_flat_prediction():
    # metrics documents that a flat prediction scores exactly chance: 0.5 (all ties) and 1 / n (ties to index 0).
    rng = np.random.default_rng(0)
    target = rng.normal(size=(16, 3, 20))
    flat = np.zeros_like(target)
    assert metrics.identification_2way(flat, target) == 0.5
    assert metrics.identification_top1(flat, target) == 1 / 16


# -- nb09 ---------------------------------------------------------------------------------------------


def test_nb09_n1_channel_matches_mne(tiny_eeg_root, capsys):
    from i2b_minimal import data, erp, sensors

    bd = data.load_things_eeg2(tiny_eeg_root, subject=1, split="test")
    expected = nb09.n1_channel(bd.signals, bd.times, bd.ch_names)
    latency = erp.erp_peaks(bd.mean_over_repetitions(), bd.times)["N1"]["latency"]
    evoked = sensors.to_evoked(bd.signals.mean(axis=(0, 1)), bd.ch_names, bd.times)
    # MNE rebuilds the time axis from tmin and sfreq, a rounding away from bd.times: ask at its own sample.
    sample = float(evoked.times[np.argmin(np.abs(evoked.times - latency))])
    assert evoked.get_peak(tmin=sample, tmax=sample, mode="neg")[0] == expected

    assert nb09.check_n1_channel(expected.lower(), bd.signals, bd.times, bd.ch_names)
    wrong = next(name for name in bd.ch_names if name != expected)
    assert not nb09.check_n1_channel(wrong, bd.signals, bd.times, bd.ch_names)
    assert not nb09.check_n1_channel("Cz", bd.signals, bd.times, bd.ch_names)  # not a THINGS-EEG2 channel
    assert "Hint" in capsys.readouterr().out
    assert not nb09.check_n1_channel(None, bd.signals, bd.times, bd.ch_names)


# -- nb10 ---------------------------------------------------------------------------------------------


def test_nb10_direction(capsys):
    assert nb10.check_direction(" Encoding ")
    assert not nb10.check_direction("decoding")
    assert not nb10.check_direction(None)
    assert NOT_ANSWERED in capsys.readouterr().out


def test_nb10_training_gigabytes():
    assert np.isclose(nb10.eeg_training_gigabytes(), np.zeros(nb10.EEG_TRAINING_SHAPE, dtype=np.float32).nbytes / 1e9)
    assert nb10.check_training_gigabytes(0.45)
    assert nb10.check_training_gigabytes(0.419)  # GiB is accepted too
    assert not nb10.check_training_gigabytes(0.9)  # float64
    assert not nb10.check_training_gigabytes("0.45")
    assert not nb10.check_training_gigabytes(None)
