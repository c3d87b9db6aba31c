"""The ``i2b`` command.

Each subcommand parses its arguments here and calls one library function;
the work itself lives in the modules, so the command line, the notebooks and
the tests all run the same code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_subjects(text: str) -> list[int]:
    """``"1-3,5"`` -> ``[1, 2, 3, 5]``."""
    subjects: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            first, last = part.split("-", 1)
            subjects.extend(range(int(first), int(last) + 1))
        else:
            subjects.append(int(part))
    if not subjects:
        raise argparse.ArgumentTypeError(f"no subject numbers in {text!r}; write e.g. 1-3 or 1,4")
    return subjects


# ----------------------------------------------------------------------------- data


def _cmd_data_synth(args) -> int:
    from . import synthetic

    root = synthetic.make_dataset(
        args.out, modality=args.modality, preset=args.preset, seed=args.seed, subjects=args.subjects
    )
    print(f"wrote the synthetic {args.modality.upper()} world ({args.preset}) to {root}")
    return 0


def _cmd_data_download(args) -> int:
    from . import download

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
    synth.add_argument("--out", type=Path, default=None, help="root folder (default: data/synthetic-<modality>-<preset>)")
    synth.set_defaults(func=_cmd_data_synth)

    dl = data.add_parser("download", help="download real THINGS data (needs the internet)")
    dl.add_argument("dataset", choices=["things-eeg2", "things-meg"])
    dl.add_argument("--subjects", type=parse_subjects, default=None, help="e.g. 1-3 (default: all)")
    dl.add_argument("--out", type=Path, default=None, help="root folder (default: data/<dataset>)")
    dl.set_defaults(func=_cmd_data_download)


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="i2b", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError, ConnectionError) as error:
        # Known failure modes carry a message written for the user; a traceback adds nothing.
        print(f"i2b: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
