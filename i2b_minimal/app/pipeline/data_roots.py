"""Where a model's data lives now, and the command that makes a dataset that is missing."""

from __future__ import annotations

from pathlib import Path

from i2b_minimal import runtime


def training_root(meta: dict) -> Path:
    """Where the data a model was trained on lives now: its recorded root, else that folder's name in the data folder.

    A model travels (the bundled one was trained on another machine), its data
    does not; ``runtime.data_dir()`` is where ``i2b data synth`` puts it here.
    """
    recorded = Path(meta["config"]["data_root"]).expanduser()
    return recorded if recorded.is_dir() else runtime.data_dir() / recorded.name


def how_to_make(root: Path, subject: int, dataset: str = "things-eeg2") -> str:
    """The command that makes the dataset ``root`` names: a synthetic world by its folder name, else a download."""
    parts = root.name.split("-")
    if len(parts) == 3 and parts[0] == "synthetic" and parts[1] in ("eeg", "meg"):
        return (f"make it with `i2b data synth --modality {parts[1]} --preset {parts[2]} --subjects {subject} "
                f"--out {root}`")
    return (f"make it with `i2b data synth --out {root}` or fetch real data with "
            f"`i2b data download {dataset} --subjects {subject} --out {root}`")
