"""The report folder of ``i2b quickstart``: the metrics as JSON and a table, and the figures that show them.

``out/metrics.json`` is the ``i2b evaluate --json`` object (plus the training
run); ``out/README.md`` puts its numbers in one table beside the figures:

* ``erp.png``: the ERP (mean over images and channels) of the real test data and
  of the generated signals, with the P1/N1/P2 windows (``viz.plot_erp``);
* ``butterfly.png``: every channel's time course and the global field power
  (``viz.plot_butterfly``);
* ``topomaps.png``: real against generated scalp maps at the P1 and N1 peak
  latencies of the real ERP, drawn by MNE (``viz.compare_topomaps``);
* ``examples.png``: single test images with their real, generated and ridge
  responses, the image-by-image view that the averages above hide;

"generated" is the model's headline readout, its conditional mean
(``pipeline.scoring``).
* ``loss.png``: the training loss.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from i2b_minimal.runtime import atomic_path, atomic_write

SCORES = (("mse", "MSE"), ("pcc", "PCC (paper)"), ("corr_across_images", "corr. across images"),
          ("identification_2way", "2-way id. (centred)"), ("identification_top1", "top-1 id. (centred)"),
          ("erp_latency_error", "ERP latency error (s)"))
# Where each row of the table lives in the result, and its title ({k}: samples per image, {m}: draws of x_T).
# The generative baseline's conditional mean is ridge exactly, so it has no row of its own.
ROWS = ((("readouts", "conditional_mean"), "diffusion, conditional mean ({m} draws at the noisiest step)"),
        (("readouts", "mean_of_k"), "diffusion, mean of {k} samples"),
        (("readouts", "single"), "diffusion, 1 sample"),
        (("ridge",), "ridge (same CLIP features)"),
        (("generative_baseline_readouts", "mean_of_k"), "generative baseline (ridge + Gaussian noise), mean of {k}"),
        (("generative_baseline_readouts", "single"), "generative baseline, 1 sample"),
        (("ground_truth",), "noiseless truth (synthetic only)"))
GENERATORS = (("model", "diffusion, {k} samples per image"), ("generative_baseline", "generative baseline, {k} samples"))
SINGLE_TRIAL = (("dispersion_ratio_min", "dispersion ratio, lowest channel"),
                ("dispersion_ratio_max", "highest channel"), ("covariance_distance", "covariance distance"),
                ("psd_distance", "residual PSD distance"), ("c2st_accuracy", "C2ST accuracy"))


def write_figures(out, signals: dict, losses=None) -> list[Path]:
    """Draw the figures listed in the module docstring into ``out``; return their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # a report needs no window; keeps working on a headless machine
    import matplotlib.pyplot as plt

    from i2b_minimal.evaluation import erp, viz
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    real, generated, times = signals["real"], signals["generated"], np.asarray(signals["times"])
    reduce = "mean" if signals["ch_type"] == "eeg" else "gfp"
    peaks = erp.erp_peaks(real, times, reduce=reduce)
    latencies = (peaks["P1"]["latency"], peaks["N1"]["latency"])
    figures = {
        "erp.png": viz.plot_erp(real, generated, times, signals["ch_names"],
                                title=f"ERP over all channels, {len(real)} test images"),
        "butterfly.png": viz.plot_butterfly(real, generated, times, title="every channel, mean over test images"),
        "topomaps.png": viz.compare_topomaps(real, generated, times, signals["ch_names"], latencies=latencies,
                                             ch_type=signals["ch_type"],
                                             title="at the real P1 and N1 peaks, mean over test images"),
        "examples.png": _examples(signals),
    }
    if losses is not None:
        figures["loss.png"] = _loss_curve(losses)
    paths = []
    for name, figure in figures.items():
        with atomic_path(out / name) as tmp:
            figure.savefig(tmp, dpi=110, format="png")
        plt.close(figure)
        paths.append(out / name)
    return paths


def write_summary(out, result: dict) -> tuple[Path, Path]:
    """``out/metrics.json`` (the full result) and ``out/README.md`` (the table and the figures)."""
    out = Path(out)
    json_path, readme = out / "metrics.json", out / "README.md"
    with atomic_write(json_path, "w") as handle:
        json.dump(result, handle, indent=1)
    with atomic_write(readme, "w") as handle:
        handle.write(markdown(result))
    return json_path, readme


def sampler_noise(result: dict) -> str:
    """The report line's ", eta 0.5" for DDIM with fresh noise in its jumps; nothing for deterministic DDIM or for
    DDPM (results written before eta was recorded are deterministic DDIM)."""
    return f", eta {result['eta']:g}" if result.get("eta") else ""


def markdown(result: dict) -> str:
    """The report page: what was run, the table of scores, the ceilings, the single-trial checks, the figures."""
    k = result["samples_per_image"]
    relation = "" if result.get("subject_relation", "within") == "within" else (
        f" (cross-subject: the model was trained on subjects {result['trained_subjects']})")
    lines = [f"# i2b report: {result['conditioning']} on {result['dataset']} subject {result['subject']}{relation}", "",
             f"Model `{result['checkpoint']}`, {result['sampler'].upper()} with {result['num_inference_steps']} steps"
             f"{sampler_noise(result)}, guidance scale {result['guidance_scale']}, seed {result['seed']}; "
             f"test set `{result['data_root']}` "
             f"({result['n_test_images']} images x {result['n_test_repetitions']} repetitions, averaged).", "",
             "Three readouts of the diffusion model: its conditional mean E[x_0 | image] (the headline, `model`), "
             f"the mean of {k} samples and one sample. Two baselines on the same features, fitted on the training "
             "split: ridge, and the generative baseline (ridge plus Gaussian trial noise; its conditional mean "
             "is ridge).", "", score_table(score_rows(result)), "", ceiling_sentence(result), "",
             "Correlation across images and identification use t >= 0 s; identification compares image-centred "
             f"patterns; chance is 0.5 for 2-way and 1/{result['n_test_images']} for top-1 identification.", ""]
    trials = result.get("single_trial", {})
    if any(trials.get(name) for name, _ in GENERATORS):
        lines += [f"Single trials: {k} samples per image against the recorded single trials of the same images, "
                  "each minus its image's mean (1 is the right dispersion; C2ST 0.5: a classifier cannot tell "
                  "them apart).", "", single_trial_table(result), ""]
    elif "reason" in trials:
        lines += [f"No single-trial checks: {trials['reason']}.", ""]
    if "training" in result:
        run = result["training"]
        lines += [f"Training: {run['steps']} steps of batch {run['batch_size']}, U-Net width {run['base_channels']}, "
                  f"{run['seconds']} s; final loss {run['final_loss']:.4f}. Whole quickstart: "
                  f"{result['seconds'].get('quickstart', '?')} s.", ""]
    for name, caption in (("erp.png", "ERP, real and generated"), ("butterfly.png", "butterfly plots"),
                          ("topomaps.png", "topographies at P1 and N1"), ("examples.png", "single test images"),
                          ("loss.png", "training loss")):
        lines.append(f"![{caption}]({name})")
    return "\n".join(lines) + "\n"


def score_table(rows, columns=SCORES) -> str:
    """A markdown table: one row per (title, score dict), one column per (key, title) of ``columns``."""
    lines = ["| | " + " | ".join(title for _, title in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for title, scores in rows:
        lines.append(f"| {title} | " + " | ".join(_fmt(scores.get(key)) for key, _ in columns) + " |")
    return "\n".join(lines)


def score_rows(result: dict) -> list[tuple[str, dict]]:
    """The (title, scores) rows of :data:`ROWS` that ``result`` holds."""
    k, m = result["samples_per_image"], result.get("num_draws", "?")
    return [(title.format(k=k, m=m), _at(result, path)) for path, title in ROWS if _at(result, path) is not None]


def single_trial_table(result: dict) -> str:
    """The single-trial checks of each generator in ``result`` as a table, the C2ST accuracy with its 95% interval."""
    rows = [(title.format(k=result["samples_per_image"]), result["single_trial"][name])
            for name, title in GENERATORS if result["single_trial"].get(name)]
    with_interval = [(title, {**checks, "c2st_accuracy": f"{_fmt(checks['c2st_accuracy'])} "
                                                         f"[{_fmt(checks['c2st_ci_low'])}, {_fmt(checks['c2st_ci_high'])}]"})
                     for title, checks in rows]
    return score_table(with_interval, SINGLE_TRIAL)


def ceiling_sentence(result: dict) -> str:
    """Both noise ceilings (and the true one), each with the scores that compare with it."""
    text = (f"Noise ceilings of the correlation across images: split halves stepped up by Spearman-Brown "
            f"{_fmt(result['noise_ceiling'])} (compare the table)")
    gifford, scores = result.get("noise_ceiling_gifford"), result.get("gifford_score", {})
    if gifford:
        against = ", ".join(f"{who} {_fmt(value)}" for who, value in scores.items())
        text += (f"; Gifford et al. 2022's protocol, lower {_fmt(gifford['lower'])} and upper "
                 f"{_fmt(gifford['upper'])} (scored as they score, against half the repetitions: {against})")
    if "true_noise_ceiling" in result:
        text += f"; true ceiling from the noiseless responses {_fmt(result['true_noise_ceiling'])}"
    return text + "."


def headline(result: dict) -> str:
    """One line for the terminal: the headline readout against both baselines and the ceilings."""
    model, ridge, k = result["model"], result.get("ridge", {}), result["samples_per_image"]
    baseline = result.get("generative_baseline", {})
    true = f", true ceiling {_fmt(result['true_noise_ceiling'])}" if "true_noise_ceiling" in result else ""
    return (f"correlation across images: model (conditional mean) {_fmt(model['corr_across_images'])}, mean of "
            f"{k} samples {_fmt(result['readouts']['mean_of_k']['corr_across_images'])}, "
            f"ridge {_fmt(ridge.get('corr_across_images'))}, generative baseline (mean of {k}) "
            f"{_fmt(baseline.get('corr_across_images'))}, noise ceiling {_fmt(result['noise_ceiling'])}{true}; "
            f"centred 2-way identification {_fmt(model['identification_2way'])}")


def subjects_table(results: list[dict]) -> str:
    """One row per scored subject (``i2b evaluate --subject 1-10``): whether the model was trained on it, the
    conditional mean next to ridge and the ceilings, identification and the single-trial checks; then the means."""
    lines = ["| subject | trained on it | conditional mean | ridge | noise ceiling | true ceiling | model / ceiling | "
             "2-way | dispersion (min-max) | C2ST |", "|---" * 10 + "|"]
    for r in results:
        single = (r.get("single_trial") or {}).get("model") or {}
        ridge = (r.get("ridge") or {}).get("corr_across_images")
        lines.append(
            f"| {r['subject']} | {'yes' if r['subject_relation'] == 'within' else 'no (cross-subject)'} | "
            f"{_fmt(r['model']['corr_across_images'])} | {_fmt(ridge) if ridge is not None else ''} | "
            f"{_fmt(r['noise_ceiling'])} | {_fmt(r['true_noise_ceiling']) if 'true_noise_ceiling' in r else ''} | "
            f"{r['model']['corr_across_images'] / r['noise_ceiling']:.2f} | {_fmt(r['model']['identification_2way'])} | "
            + (f"{single['dispersion_ratio_min']:.2f}-{single['dispersion_ratio_max']:.2f} | "
               f"{single['c2st_accuracy']:.2f} |" if single else " | |"))
    for relation in ("within", "cross"):
        chosen = [r for r in results if r["subject_relation"] == relation]
        if chosen:
            mean = np.mean([r["model"]["corr_across_images"] for r in chosen])
            lines.append(f"| mean, {relation}-subject ({len(chosen)}) | | {_fmt(float(mean))} | | | | | | | |")
    return "\n".join(lines)


def _at(result: dict, path):
    for key in path:
        result = result.get(key) if isinstance(result, dict) else None
    return result


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):  # already formatted
        return value
    return f"{value:.3f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2e}"


def _examples(signals: dict, n: int = 4):
    """A few test images (the first ``n``): the picture, then the channel-mean response, real vs generated vs ridge."""
    import matplotlib.pyplot as plt
    from PIL import Image

    times = np.asarray(signals["times"])
    paths = signals.get("image_paths") or [None] * len(signals["real"])
    n = min(n, len(signals["real"]))
    fig, axes = plt.subplots(n, 2, figsize=(7, 1.7 * n), width_ratios=(1, 4), squeeze=False, layout="constrained")
    for row in range(n):
        picture, trace = axes[row]
        picture.axis("off")
        if paths[row] is not None:
            with Image.open(paths[row]) as image:
                picture.imshow(image.convert("RGB"))
        trace.plot(times, signals["real"][row].mean(axis=0), "k", lw=1.2, label="real (mean of repetitions)")
        trace.plot(times, signals["generated"][row].mean(axis=0), "C1--", lw=1.2, label="model (conditional mean)")
        if "ridge" in signals:
            trace.plot(times, signals["ridge"][row].mean(axis=0), "C0:", lw=1.2, label="ridge")
        trace.axhline(0, color="0.6", lw=0.5)
        trace.set_xlim(times[0], times[-1])
    axes[0, 1].legend(fontsize=7, loc="upper right")
    axes[-1, 1].set_xlabel("time (s)")
    fig.suptitle("single test images: mean over channels")
    return fig


def _loss_curve(losses):
    import matplotlib.pyplot as plt

    losses = np.asarray(losses, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
    ax.plot(np.arange(1, len(losses) + 1), losses, lw=0.5, alpha=0.4, label="per step")
    window = max(1, len(losses) // 50)
    if len(losses) >= window:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(losses) + 1), smooth, lw=1.5, label=f"mean of {window}")
    ax.set(xlabel="step", ylabel="noise-prediction MSE", yscale="log", title="training loss")
    ax.legend(fontsize=8)
    return fig
