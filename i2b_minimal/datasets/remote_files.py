"""The published files of THINGS-EEG2 and THINGS-MEG: where each lives online, and where it lands.

THINGS-EEG2 (Gifford et al. 2022) is on OSF, project 3jk45, which publishes a
SHA-256 for every file in its JSON API; THINGS-MEG (Hebart et al. 2023) is
OpenNeuro ds004212, served from S3 at pinned object versions. The local paths
come from ``things_format.py``, so a download lands where the loaders look.
"""

from __future__ import annotations

import dataclasses

from . import things_format
from .loaders import SUBJECTS

OSF_API = "https://api.osf.io/v2"
OPENNEURO_S3 = "https://s3.amazonaws.com/openneuro.org/ds004212"


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One published file and where it lands, relative to the dataset root."""

    path: str
    url: str | None = None  # None: take the download link from ``osf_api``
    sha256: str | None = None  # None: not published here; download.py trusts the first download
    size: int | None = None
    osf_api: str | None = None  # OSF API record with size, SHA-256 and download link
    extract_to: str | None = None  # archives: the folder their content becomes
    inner: str | None = None  # archives: the folder inside the archive to keep (default: its single top folder)
    encrypted: bool = False  # archive needs the licence password (see ``download.download_dataset``)


# OpenNeuro ds004212 files, pinned to S3 object versions (the URLs OpenNeuro serves; the same
# version ids appear in github.com/feroooooo/NeuroBridge scripts/things_meg/download_meg.sh).
# MNE splits files above 2 GB, so each subject's epochs are the -epo.fif plus parts -1, -2, -3.
_MEG_VERSIONS = {
    "derivatives/preprocessed/preprocessed_P1-epo.fif": "_KO81vnVItjzcxrR91AFeHh8sA7YiuB9",
    "derivatives/preprocessed/preprocessed_P1-epo-1.fif": "VEFpBYggusLPxNIKlN21eEtrjpo4DcBP",
    "derivatives/preprocessed/preprocessed_P1-epo-2.fif": "hVx8E4e0xIymnQ3nHKFnNAhQHsr7jKlQ",
    "derivatives/preprocessed/preprocessed_P1-epo-3.fif": "1jVDhw2KOJz7b_6ApO2a9J4vy_8jqqhn",
    "derivatives/preprocessed/preprocessed_P2-epo.fif": "yYjGg9sMwgC3FozM8Sc_HXmKoSd_6Qnv",
    "derivatives/preprocessed/preprocessed_P2-epo-1.fif": "yIZzH6fajlVFCen182u0nGLl5sbWKs0w",
    "derivatives/preprocessed/preprocessed_P2-epo-2.fif": "qQ9bWzptOpO8CZlBhT4c5erDOA5Do67a",
    "derivatives/preprocessed/preprocessed_P2-epo-3.fif": "uRES5t7k47rQTCDUNlFN5_rRmjNOemtW",
    "derivatives/preprocessed/preprocessed_P3-epo.fif": "oaTbATaOOvX.UtsD5gA9ET7RJoZljTsB",
    "derivatives/preprocessed/preprocessed_P3-epo-1.fif": "JYdYRMFUzwsz8354Fz9sQQbnQ.Ozstbb",
    "derivatives/preprocessed/preprocessed_P3-epo-2.fif": "mUABa6OLpBG1Vu0A9IsFpOkgWjMBTuG8",
    "derivatives/preprocessed/preprocessed_P3-epo-3.fif": "LadUGeGvC.s2wAqYEMXEzD4_VjD1aRJg",
    "derivatives/preprocessed/preprocessed_P4-epo.fif": "LM9PMqdfCcx8h9qjfU_W69WU0Ol9ECdl",
    "derivatives/preprocessed/preprocessed_P4-epo-1.fif": "LGG8UJiqW83Z5Mgpiv5LQDgUgs0kYn9y",
    "derivatives/preprocessed/preprocessed_P4-epo-2.fif": "tdx2wKa7QOpMjBzsN4py4Y.rYhW9vp26",
    "derivatives/preprocessed/preprocessed_P4-epo-3.fif": "gajLhEHnXBlMs.EMnyXyFtJ_SVvw_gOT",
    "sourcedata/sample_attributes_P1.csv": "w8BUbZcwHpY.6GxyOjtFSmTnc52bhBLs",
    "sourcedata/sample_attributes_P2.csv": "Evg76igx3TBV6JfoCAMLk5F8NB9O2niW",
    "sourcedata/sample_attributes_P3.csv": "P18epEYFJ3xxvxm.5B9eTXC.zZ7LP7Af",
    "sourcedata/sample_attributes_P4.csv": "eZ.cG_jUR9G4OX1K23_4.DV99kj2KUW0",
}
# git-annex keys (SHA256E-s<size>--<sha256>) of github.com/OpenNeuroDatasets/ds004212 at commit
# 10f11c0c167081f9602947d0340ac9f4cf088f38; the other MEG files have no published hash we could find.
_MEG_ANNEX = {
    "derivatives/preprocessed/preprocessed_P2-epo-3.fif":
        ("52200eb4b46340185970d6df82ba5f5169e396a63efaead4b82268014b96b1fa", 2062928825),
    "derivatives/preprocessed/preprocessed_P4-epo-3.fif":
        ("d6be250ded9464acae2d1008d10eaa6656562a039be08dc530ffb52dbfe1345e", 2062928271),
}


def registry(dataset: str, subjects=None) -> list[RemoteFile]:
    """The files of ``dataset`` for ``subjects`` (default: all), images included."""
    subjects = _check_subjects(dataset, subjects)
    if dataset == "things-eeg2":
        # OSF project 3jk45 (Gifford et al. 2022): preprocessed EEG in component anp5v, one zip per
        # subject; images in component y63gw, files 3v527 (training) and znu7b (test).
        files = [RemoteFile(f"{things_format.eeg2_subject_folder(n)}.zip",
                            osf_api=f"{OSF_API}/nodes/anp5v/files/osfstorage/?filter%5Bname%5D=sub-{n:02d}.zip",
                            extract_to=things_format.eeg2_subject_folder(n)) for n in subjects]
        for guid, split in (("3v527", "train"), ("znu7b", "test")):
            folder = things_format.eeg2_image_folder(split)
            files.append(RemoteFile(f"{folder}.zip", url=f"https://osf.io/download/{guid}/",
                                    osf_api=f"{OSF_API}/files/{guid}/", extract_to=folder))
        return files
    files = []
    for n in subjects:
        parts = [things_format.meg_epochs_file(n, part) for part in ("", "-1", "-2", "-3")]  # MNE's split files
        for path in parts + [things_format.meg_attributes_file(n)]:
            sha256, size = _MEG_ANNEX.get(path, (None, None))
            files.append(RemoteFile(path, url=f"{OPENNEURO_S3}/{path}?versionId={_MEG_VERSIONS[path]}", sha256=sha256, size=size))
    # The THINGS image database (Hebart et al. 2019), OSF project jum2f, file rdxy2: a zip of
    # object_images/<concept>/<image>.jpg, encrypted with a password that its licence text gives.
    files.append(RemoteFile("images_THINGS.zip", url="https://osf.io/download/rdxy2/", osf_api=f"{OSF_API}/files/rdxy2/",
                            extract_to=things_format.MEG_IMAGE_FOLDER, inner="object_images", encrypted=True))
    return files


def _check_subjects(dataset: str, subjects) -> list[int]:
    if dataset not in SUBJECTS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(SUBJECTS)}")
    valid = SUBJECTS[dataset]
    subjects = list(valid) if subjects is None else [int(n) for n in subjects]
    wrong = [n for n in subjects if n not in valid]
    if wrong:
        raise ValueError(f"{dataset} has subjects {valid.start}-{valid.stop - 1}; {wrong} do not exist")
    return subjects
