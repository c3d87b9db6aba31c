"""How low a classifier two-sample test of single trials can go on the synthetic world, and what it sees (measured).

Issue 12 asks that a classifier tell the generated single trials of the bundled model from recorded ones no
better than 60% of the time (``evaluation/c2st.py``). How low can any generator go, and what separates this one?

1. **Bounds from the world itself** (``world/fresh_trials.py``): new trials of the same test images drawn by the
   simulation that recorded them. Drawn with everything, they are what a perfect generator would give, and the
   test must score them at chance. Drawn as the exact mean plus the world's own noise, without the response-locked
   latency jitter and gain, they are the best an additive-noise generator can do.
2. **The model**, with its default sampler and with the samplers given by ``--samplers``, and the ridge-plus-
   Gaussian baseline, as ``i2b evaluate`` scores them.
3. **What the classifier uses** on the model's trials: its accuracy from each group of features alone, and the
   samples' residual power against the recorded trials', band by band, on the leading principal components.

Each C2ST is repeated ``--draws`` times (a new draw of the balancing real trials, and of the world's sets): mean
and standard deviation. The test split is read, as ``i2b evaluate`` reads it: nothing here is chosen on it.

Run: ``python benchmarks/c2st_bounds.py`` (bundled EEG model, subject 1: about 3 minutes on 2 cores, plus about
80 s per ``--samplers ddim:100:1`` and 15 minutes for ``ddpm``). Results: ``benchmarks/results/c2st_bounds.md``.
"""

from __future__ import annotations

import argparse
import datetime

import numpy as np

from i2b_minimal import pipeline
from i2b_minimal.datasets import loaders
from i2b_minimal.evaluation import c2st as c2st_test
from i2b_minimal.world.fresh_trials import fresh_trials

SAMPLES_PER_IMAGE = 4  # as `i2b evaluate` draws them (pipeline.EVALUATION_SAMPLING)
LEADING = 3  # principal components whose residual power the spectrum table shows


def c2st_over_draws(make_set, real, draws: int) -> list[float]:
    """The C2ST accuracy of ``make_set(draw)`` against ``real`` for each draw (a new balancing of the real trials)."""
    return [c2st_test.c2st(make_set(draw), real, seed=draw)["accuracy"] for draw in range(draws)]


def parse_sampler(spec: str) -> dict:
    """``ddim:STEPS:ETA`` or ``ddpm`` as SamplingSettings fields."""
    if spec == "ddpm":
        return {"sampler": "ddpm"}
    kind, steps, eta = spec.split(":")
    if kind != "ddim":
        raise argparse.ArgumentTypeError(f"a sampler is ddim:STEPS:ETA or ddpm, not {spec!r}")
    return {"sampler": "ddim", "num_inference_steps": int(steps), "eta": float(eta)}


def feature_groups(described: c2st_test.DescribedTrials, frequencies: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Named column masks of ``described``: all, power, correlations, each component's spectrum, each band."""
    power = described.component >= 0
    groups = [("every feature", np.ones_like(power)), ("power spectra only", power),
              ("correlations between components only", ~power)]
    groups += [(f"spectrum of component {k + 1} only", described.component == k)
               for k in range(described.component.max() + 1)]
    groups += [(f"power at {frequencies[b]:.1f} Hz only (every component)", described.frequency_bin == b)
               for b in range(described.frequency_bin.max() + 1)]
    return groups


def residual_power_db(described: c2st_test.DescribedTrials, frequencies: np.ndarray) -> list[list[str]]:
    """Rows (Hz, then per leading component): the generated minus the real residuals' mean log power, in dB."""
    generated, real = described.labels == 1, described.labels == 0
    rows = []
    for b, hz in enumerate(frequencies):
        row = [f"{hz:.1f}"]
        for k in range(LEADING):
            column = (described.component == k) & (described.frequency_bin == b)
            log_power = described.features[:, column][:, 0]  # log10 power
            row.append(f"{10 * (log_power[generated].mean() - log_power[real].mean()):+.1f}")
        rows.append(row)
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f} ({', '.join(f'{v:.3f}' for v in values)})"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="bundled")
    parser.add_argument("--subject", type=int, default=1)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--samplers", nargs="*", type=parse_sampler, default=[],
                        help="more samplers to score: ddim:STEPS:ETA or ddpm")
    args = parser.parse_args(argv)
    if args.draws < 2:
        parser.error("--draws must be at least 2 (each row reports a standard deviation over the draws)")
    began = datetime.datetime.now(datetime.timezone.utc)

    trained = pipeline.load_model(args.checkpoint, progress=False)  # once, for the evaluation and the samplers
    result, signals = pipeline.evaluate(trained, subject=args.subject, return_signals=True, progress=False)
    modality = "eeg" if result["dataset"] == "things-eeg2" else "meg"
    test = loaders.load(result["dataset"], result["data_root"], subject=args.subject, split="test")
    real, half = test.signals, test.n_repetitions // 2
    print(f"{result['dataset']} subject {args.subject}: {test.n_images} test images x {test.n_repetitions} "
          f"repetitions; {SAMPLES_PER_IMAGE} trials of each kind per image in every test", flush=True)

    def world(variability):
        return lambda draw: fresh_trials(result["data_root"], modality, args.subject, test.image_paths,
                                         SAMPLES_PER_IMAGE, np.random.default_rng([draw, 12]), variability)

    # (name, the set of each draw, the recorded trials it is told from)
    sets = [("recorded: 4 repetitions against 4 of the other half's (calibration)",
             lambda draw: real[:, :SAMPLES_PER_IMAGE], real[:, half:]),
            ("world: new trials, as recorded (a perfect generator)", world("all"), real),
            ("world: exact mean + the world's noise, no response-locked variability", world("noise"), real),
            (f"model: DDIM {result['num_inference_steps']} steps, eta {result['eta']} (default)",
             lambda draw: signals["samples"], real),
            ("ridge + Gaussian residuals (the generative baseline)", lambda draw: signals["generative_baseline"],
             real)]
    for fields in args.samplers:
        samples = pipeline.generate(trained, test.image_paths, samples_per_image=SAMPLES_PER_IMAGE,
                                    progress=True, subject=args.subject, **fields)  # DDPM: minutes
        name = "DDPM, every training step" if fields["sampler"] == "ddpm" else \
            f"DDIM {fields['num_inference_steps']} steps, eta {fields['eta']}"
        sets.append((f"model: {name}", lambda draw, samples=samples: samples, real))
    rows = []
    for name, make_set, recorded in sets:
        rows.append([name, mean_sd(c2st_over_draws(make_set, recorded, args.draws))])
        print(rows[-1], flush=True)
    print(f"\n{table(['generated set', f'C2ST accuracy, mean ± sd over {args.draws} draws'], rows)}\n")

    described = c2st_test.describe_trials(signals["samples"], real, seed=0)
    frequencies = c2st_test.bin_frequencies(test.signals.shape[-1], test.sfreq)
    groups = [[name, f"{c2st_test.held_out_accuracy(described, columns=mask)['accuracy']:.3f}"]
              for name, mask in feature_groups(described, frequencies)]
    print(table(["the model's default samples: features the classifier is given", "C2ST accuracy"], groups), "\n")
    print(table(["Hz"] + [f"component {k + 1}: generated minus recorded (dB)" for k in range(LEADING)],
                residual_power_db(described, frequencies)))
    print(f"\n{began:%Y-%m-%d %H:%M}-{datetime.datetime.now(datetime.timezone.utc):%H:%M} UTC, "
          f"checkpoint {args.checkpoint}")


if __name__ == "__main__":
    main()
