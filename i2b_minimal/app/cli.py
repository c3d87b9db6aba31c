"""The ``i2b`` command.

Each subcommand parses its arguments here and calls one library function;
the work itself lives in the modules, so the command line, the notebooks and
the tests all run the same code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# By its real path: `python -m i2b_minimal.cli` runs this file under its short name, where `.arguments` would
# be looked for in i2b_minimal/ itself.
from i2b_minimal.app.arguments import Parser, add_config_options, given_fields, parse_subjects
from i2b_minimal.datasets.splits import SCORED_SPLITS


# ----------------------------------------------------------------------------- data


def _cmd_data_synth(args) -> int:
    from i2b_minimal.world import synthetic
    root = synthetic.make_dataset(
        args.out, modality=args.modality, preset=args.preset, seed=args.seed, subjects=args.subjects
    )
    print(f"wrote the synthetic {args.modality.upper()} world ({args.preset}) to {root}")
    return 0


def _cmd_data_download(args) -> int:
    from i2b_minimal.datasets import download
    root = download.download_dataset(args.dataset, args.out, subjects=args.subjects)
    print(f"{args.dataset} is in {root}")
    return 0


def _add_data_commands(sub) -> None:
    data = sub.add_parser("data", help="make or fetch datasets").add_subparsers(dest="data_command", required=True)

    synth = data.add_parser("synth", help="write the offline synthetic world in THINGS formats")
    synth.add_argument("--modality", choices=["eeg", "meg"], default="eeg")
    synth.add_argument("--preset", choices=["tiny", "small", "full"], default="tiny")
    synth.add_argument("--subjects", type=parse_subjects, default=None, help="e.g. 1-3 (default: all)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", type=Path, default=None, help="root folder (default: <data dir>/synthetic-<modality>-<preset>; the data dir is $I2B_DATA_DIR or the clone's data/)")
    synth.set_defaults(func=_cmd_data_synth)

    dl = data.add_parser("download", help="download real THINGS data (needs the internet)")
    dl.add_argument("dataset", choices=["things-eeg2", "things-meg"])
    dl.add_argument("--subjects", type=parse_subjects, default=None, help="e.g. 1-3 (default: all)")
    dl.add_argument("--out", type=Path, default=None, help="root folder (default: <data dir>/<dataset>)")
    dl.set_defaults(func=_cmd_data_download)


# ----------------------------------------------------------------------------- train


def config_from_args(args):
    """The TrainConfig that ``i2b train`` options ask for: the defaults, with each given option in its place."""
    import dataclasses

    from i2b_minimal import runtime
    from i2b_minimal.training.config import TrainConfig
    config = TrainConfig().fast_mode() if runtime.fast_mode() else TrainConfig()
    return dataclasses.replace(config, **given_fields(args, TrainConfig))


def _cmd_train(args) -> int:
    from i2b_minimal.training import train
    result = train.train(config_from_args(args), resume=args.resume, overwrite=args.overwrite,
                         stop_after=args.stop_after)
    print(f"checkpoints in {result.output_dir / train.CHECKPOINT_DIR}; trained model in {result.model_dir}")
    return 0


def _add_train_commands(sub) -> None:
    parser = sub.add_parser("train", help="train the diffusion model (also under accelerate launch / torchrun)",
                            description="Options left out keep the defaults of i2b_minimal.train.TrainConfig.",
                            deferred=_train_options)
    parser.set_defaults(func=_cmd_train)


def _train_options(parser: argparse.ArgumentParser) -> None:
    """TrainConfig's fields (whose choices import torch: added only when `i2b train` is parsed), then the run's."""
    from i2b_minimal.training.config import TrainConfig
    add_config_options(parser, TrainConfig)
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output-dir")
    parser.add_argument("--overwrite", action="store_true", help="delete the checkpoints in --output-dir and start again")
    parser.add_argument("--stop-after", type=int, default=None, help="stop (with a checkpoint) after this step")


# ----------------------------------------------------------------------------- clip


def _cmd_clip_train(args) -> int:
    import dataclasses
    import json

    from i2b_minimal.world import tiny_clip
    given = {name: getattr(args, name) for name in ("steps", "seed", "batch_size") if getattr(args, name) is not None}
    config = dataclasses.replace(tiny_clip.TinyCLIPConfig(), **given)
    out = args.out or tiny_clip.TINY_CLIP_DIR
    metrics = tiny_clip.train_and_report(out, config)
    print(json.dumps(metrics, indent=2))
    print(f"tiny CLIP, metrics.json and MODEL_CARD.md written to {out}")
    return 0


def _cmd_clip_eval(args) -> int:
    import json

    from i2b_minimal.world import tiny_clip
    model = args.model or tiny_clip.TINY_CLIP_DIR
    metrics = {"retrieval": tiny_clip.retrieval(model), "linear_probe": tiny_clip.linear_probe(model)}
    print(json.dumps(metrics, indent=2))
    return 0


def _add_clip_commands(sub) -> None:
    clip = sub.add_parser("clip", help="the bundled tiny CLIP").add_subparsers(dest="clip_command", required=True)
    train = clip.add_parser("train", help="train the tiny CLIP on the synthetic world; write metrics and model card")
    train.add_argument("--out", type=Path, default=None, help="output folder (default: the bundled one)")
    train.add_argument("--steps", type=int, default=None, help="optimiser steps (default: TinyCLIPConfig.steps)")
    train.add_argument("--batch-size", type=int, default=None, help="default: TinyCLIPConfig.batch_size")
    train.add_argument("--seed", type=int, default=None, help="default: TinyCLIPConfig.seed")
    train.set_defaults(func=_cmd_clip_train)
    evaluate = clip.add_parser("eval", help="retrieval and linear-probe figures of a tiny CLIP folder")
    evaluate.add_argument("--model", type=Path, default=None, help="default: the bundled tiny CLIP")
    evaluate.set_defaults(func=_cmd_clip_eval)


# ----------------------------------------------------------------------------- sample, evaluate, quickstart


def _print_json(result: dict) -> None:
    import json

    print(json.dumps(result, indent=1, allow_nan=False))  # the pipeline writes null, never NaN


def _quiet_stdout(as_json: bool):
    """Under --json, anything a library prints goes to stderr, so stdout holds exactly one JSON object."""
    import contextlib

    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()


def _cmd_sample(args) -> int:
    import numpy as np

    from . import pipeline
    from i2b_minimal import runtime
    if args.out.is_dir():  # before the sampling, not after it
        raise IsADirectoryError(21, "Is a directory", str(args.out))
    signals = pipeline.generate(args.checkpoint, args.images, samples_per_image=args.samples_per_image,
                                subject=args.subject, **_sampler_options(args))
    with runtime.atomic_path(args.out) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, signals)
    print(f"wrote {args.out}: float32 {tuple(signals.shape)} (images, [samples,] channels, times) in the data's units")
    return 0


def _cmd_evaluate(args) -> int:
    from . import pipeline
    from . import report
    with _quiet_stdout(args.json):
        results = [pipeline.evaluate(args.checkpoint, args.data_root, subject=subject,
                                     samples_per_image=args.samples_per_image, conditioning=args.conditioning,
                                     ridge=not args.no_ridge, split=args.split, **_sampler_options(args))
                   for subject in args.subject or [None]]
    if args.json:
        _print_json(results[0] if len(results) == 1 else {"subjects": {str(r["subject"]): r for r in results}})
    elif len(results) == 1:
        print(report.markdown(results[0]))
    else:
        print(report.subjects_table(results))
    return 0


def _cmd_quickstart(args) -> int:
    from . import pipeline
    with _quiet_stdout(args.json):
        result = pipeline.quickstart(args.out, args.data_root, steps=args.steps)
    if args.json:
        _print_json(result)
    else:
        from . import report
        print(report.headline(result))
        print(f"report in {result['report']} (README.md, metrics.json, figures); took {result['seconds']['quickstart']} s")
    return 0


def _sampler_options(args) -> dict:
    """The sampler settings given on the command line; the others keep ``SamplingSettings``' defaults."""
    if args.sampler == "ddpm" and args.eta is not None:
        raise ValueError("--eta sets DDIM's fresh noise; DDPM adds its posterior's noise at every step: "
                         "drop --eta or use --sampler ddim")
    given = dict(num_inference_steps=args.steps, eta=args.eta, sampler=args.sampler,
                 guidance_scale=args.guidance_scale, seed=args.seed)
    return {name: value for name, value in given.items() if value is not None}


def _add_sampling_options(parser, samples_per_image: int) -> None:
    parser.add_argument("--checkpoint", default="bundled",
                        help="'bundled' (every subject of the small synthetic EEG world), 'bundled-meg' (of the MEG "
                             "world), a model folder or a run folder")
    parser.add_argument("--sampler", choices=["ddim", "ddpm"], default="ddim", help="DDIM (fast) or DDPM (all T steps)")
    # The defaults live in SamplingSettings (chosen on the validation split); the help repeats them, and
    # tests/test_pipeline.py checks that it does so truly.
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default 100; DDPM takes all of them)")
    parser.add_argument("--eta", type=float, default=None,
                        help="DDIM's fresh noise per jump (Song et al. 2021, eq. 16): 0 deterministic, 1 DDPM-like "
                             "(default 0)")
    parser.add_argument("--guidance-scale", type=float, default=1.0, help="classifier-free guidance (1: none)")
    parser.add_argument("--samples-per-image", type=int, default=samples_per_image, help="samples drawn per image")
    parser.add_argument("--seed", type=int, default=0)


def _conditioning_option(parser: argparse.ArgumentParser) -> None:
    from i2b_minimal.method.unet import CONDITIONING_MODES  # imports torch: added only when `i2b evaluate` runs
    parser.add_argument("--conditioning", choices=CONDITIONING_MODES, default=None,
                        help="refuse a model trained with another conditioning mode")


def _add_pipeline_commands(sub) -> None:
    sample = sub.add_parser("sample", help="generate brain signals for image files")
    sample.add_argument("images", nargs="+", type=Path, help="image files")
    sample.add_argument("--out", type=Path, default=Path("samples.npy"), help="where to save the signals (.npy)")
    sample.add_argument("--subject", type=int, default=None,
                        help="whose responses, for a model of several subjects (default: its first)")
    _add_sampling_options(sample, samples_per_image=1)
    sample.set_defaults(func=_cmd_sample)

    evaluate = sub.add_parser("evaluate", help="score a model on a test set, next to ridge and the noise ceiling",
                              deferred=_conditioning_option)
    evaluate.add_argument("--data-root", type=Path, default=None, help="dataset root (default: the model's training data)")
    evaluate.add_argument("--subject", type=parse_subjects, default=None,
                          help="whose test data to score, e.g. 3 or 1-10 (default: the model's first subject); a "
                               "subject the model was not trained on is scored cross-subject; several give one "
                               "table, or one JSON object per subject under \"subjects\"")
    evaluate.add_argument("--no-ridge", action="store_true", help="skip the ridge baseline")
    evaluate.add_argument("--split", choices=SCORED_SPLITS, default="test",
                          help="score the test split, or the validation images of a model trained with "
                               "--hold-out-validation (for choosing settings)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    _add_sampling_options(evaluate, samples_per_image=4)
    evaluate.set_defaults(func=_cmd_evaluate)

    quick = sub.add_parser("quickstart", help="the whole pipeline on the offline synthetic world, in minutes")
    quick.add_argument("--out", type=Path, default=Path("reports/quickstart"), help="report folder")
    quick.add_argument("--data-root", type=Path, default=None,
                       help="synthetic EEG root, made if missing (default: runtime.data_dir()/synthetic-eeg-small)")
    quick.add_argument("--steps", type=int, default=None, help="training steps (default: sized for ~5 min on 2 cores)")
    quick.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    quick.set_defaults(func=_cmd_quickstart)


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="i2b", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _add_data_commands(sub)
    _add_train_commands(sub)
    _add_clip_commands(sub)
    _add_pipeline_commands(sub)
    return parser


def _expected_failures() -> tuple[type[BaseException], ...]:
    """What bad input, bad files and a busy or missing machine raise: each carries a message written for the user."""
    from PIL.Image import DecompressionBombError

    # OSError covers FileNotFoundError, PermissionError, IsADirectoryError and ConnectionError.
    return OSError, ValueError, RuntimeError, DecompressionBombError


def error_message(error: BaseException) -> str:
    """One paragraph: the error's own message, or for a bare OS error what failed on which path."""
    from PIL.Image import DecompressionBombError

    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.strerror.lower()}: {error.filename}"
        if isinstance(error, IsADirectoryError):
            text += " (give a file name, not a folder)"
    elif isinstance(error, DecompressionBombError):
        text = f"an image is too large to open safely ({error}); give a smaller image"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("i2b: interrupted", file=sys.stderr)
        return 130
    except _expected_failures() as error:
        if args.debug:
            raise
        # Known failure modes carry a message written for the user; a traceback adds nothing (--debug shows it).
        print(f"i2b: error: {error_message(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
