"""New single trials from the world that recorded a synthetic dataset: a perfect generator, and one without a part.

How close can a generator's single trials come to recorded ones? The classifier two-sample test
(``evaluation/c2st.py``) asks whether a classifier tells them apart; on real data nobody knows what the
best possible generator would score. Here the simulation that wrote the files can draw new trials of the
same images from the same simulated subject, in the units the files hold (EEG: MVNN-whitened with the
subject's own matrix, ``ground_truth/sub-XX/whitening.npy``; MEG: z-scored against the baseline), and so
give the bounds, as the perfect-sampler bound does for the mean of K samples (``training/bounds.py``):

* ``variability="all"``: trials as the world records them. A perfect generator: a calibrated test must
  score it at chance.
* ``variability="noise"``: the exact mean response plus the world's own trial noise, without the
  response-locked latency jitter and gain of ``variability.py``. A generator that knows the mean and the
  noise exactly but treats the trial-to-trial variability as additive and the same for every image, as the
  ridge-plus-Gaussian baseline does (with a fitted mean and a fitted covariance instead).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import brain, markers, mvnn, pictures, synthetic

VARIABILITY = ("all", "noise")


def fresh_trials(root, modality: str, subject: int, image_paths, repetitions: int, rng: np.random.Generator,
                 variability: str = "all") -> np.ndarray:
    """``repetitions`` new trials (n_images, repetitions, C, T) float64 of ``subject`` to each of ``image_paths``.

    ``root`` is a synthetic dataset (``synthetic.make_dataset``) of ``modality`` ("eeg" or "meg"), the paths
    as ``BrainData.image_paths`` gives them; ``variability`` one of :data:`VARIABILITY` (module docstring).
    """
    if variability not in VARIABILITY:
        raise ValueError(f"variability must be one of {VARIABILITY}, not {variability!r}")
    if modality not in ("eeg", "meg"):
        raise ValueError(f"modality must be 'eeg' or 'meg', not {modality!r}")
    root = Path(root)
    whitening = _whitening(root, subject) if modality == "eeg" else None
    table = synthetic.load_captions(root)
    features = pictures.image_features(table.iloc[synthetic.image_rows(root, image_paths)].to_dict("records"))
    simulated = brain.make_subject(modality, subject)
    shown = np.repeat(np.arange(len(image_paths)), repetitions)
    if variability == "all":
        trials = brain.record(simulated, features, rng, shown)
    else:
        mean = brain.evoked(simulated, features).astype(np.float64)[shown]
        trials = brain.remove_baseline(simulated, mean + brain.trial_noise(simulated, rng, len(shown)))
    trials = brain.zscore(simulated, trials) if modality == "meg" else mvnn.whiten(whitening, trials)
    return trials.reshape(len(image_paths), repetitions, *trials.shape[1:])


def _whitening(root: Path, subject: int) -> np.ndarray:
    path = root / "ground_truth" / f"sub-{subject:02d}" / "whitening.npy"
    if not path.is_file():
        marker = markers.marker_path(root, subject)
        if not marker.is_file():
            raise FileNotFoundError(f"{marker} does not exist: subject {subject} was not (completely) written")
        world = json.loads(marker.read_text())
        raise FileNotFoundError(
            f"{path} does not exist: subject {subject} was written before the world saved its whitening; write it "
            f"again (the same seed gives the same trials) with `i2b data synth --modality eeg --preset "
            f"{world['preset']} --seed {world['seed']} --subjects {subject} --out {root}`")
    return np.load(path)
