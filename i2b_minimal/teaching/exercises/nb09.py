"""Notebook 09 (topographies): which channel carries the N1?"""

from __future__ import annotations

import numpy as np

from . import unanswered, verdict


def n1_channel(signals, times, ch_names) -> str:
    """The channel with the most negative average value at the N1 latency of the channel-mean ERP.

    ``signals``: (..., C, T), averaged over every leading axis. The N1 latency is
    ``erp.erp_peaks(...)["N1"]["latency"]``: the minimum of the mean over channels
    inside the N1 window.
    """
    from i2b_minimal.evaluation.erp import erp_peaks

    average = np.asarray(signals, dtype=np.float64)
    average = average.reshape(-1, *average.shape[-2:]).mean(axis=0)
    latency = erp_peaks(average, times)["N1"]["latency"]
    column = int(np.argmin(np.abs(np.asarray(times) - latency)))
    return str(ch_names[int(np.argmin(average[:, column]))])


def check_n1_channel(answer, signals, times, ch_names) -> bool | None:
    """``answer``: the channel name (e.g. "Oz") that is most negative at the N1 of ``signals``."""
    if unanswered(answer):
        return None
    expected = n1_channel(signals, times, ch_names)
    given = str(answer).strip()
    if given.lower() not in {name.lower() for name in ch_names}:
        return verdict(False, "", f"answer with one of the channel names: {', '.join(ch_names)}.")
    return verdict(given.lower() == expected.lower(),
                   f"{expected}. Look at the subject grid: another subject's N1 may peak elsewhere, because "
                   "every head and cortex is folded differently.",
                   "find the N1 latency with erp.erp_peaks(...)['N1']['latency'], then the most negative channel "
                   "there; evoked.get_peak(tmin=..., tmax=..., mode='neg') or a topomap with names=True does it too.")
