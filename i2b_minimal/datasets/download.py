"""Downloading the real THINGS-EEG2 and THINGS-MEG files: resumable, verified, atomic.

A registry lists the published files of each dataset (where each URL and
checksum comes from is written beside it). Every file is streamed to
``<name>.part``, resumed with an HTTP ``Range`` request when a transfer breaks
off (or restarted when the server ignores ranges), checked against its size and
SHA-256, and only then renamed into place, so a half-written file never looks
finished. Archives are extracted after the check into the trees that
``data/README.md`` draws (``things_format.py`` names every folder), and then deleted.

Checksums. OSF publishes a SHA-256 for every stored file in its JSON API, so the
OSF entries ask the API for it at download time. OpenNeuro's git-annex keys
give SHA-256 and size for two of the MEG files. Where nothing is published the
registry holds ``sha256=None`` and the downloader trusts the first download: it
records the hash it computed in ``i2b-download.lock.json`` beside the data, and
any later download of that file must match it.

Offline, a download fails at once (a short connect timeout, no retries before a
server has answered) with a message that says what to do instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from i2b_minimal.runtime import atomic_write, data_dir

from . import things_format
from .loaders import SUBJECTS

LOCK_NAME = "i2b-download.lock.json"
OSF_API = "https://api.osf.io/v2"
OPENNEURO_S3 = "https://s3.amazonaws.com/openneuro.org/ds004212"
PASSWORD_ENV = "I2B_THINGS_PASSWORD"


class OfflineError(ConnectionError):
    """No server could be reached at all."""

    def __init__(self, url: str, reason, advice: str):
        self.url, self.reason = url, reason
        super().__init__(f"could not connect to {url} ({reason}). There seems to be no network. {advice}")


class ChecksumError(RuntimeError):
    """A finished download does not have the published (or first-seen) size or SHA-256."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One published file and where it lands, relative to the dataset root."""

    path: str
    url: str | None = None  # None: take the download link from ``osf_api``
    sha256: str | None = None  # None: not published here, see the module docstring
    size: int | None = None
    osf_api: str | None = None  # OSF API record with size, SHA-256 and download link
    extract_to: str | None = None  # archives: the folder their content becomes
    inner: str | None = None  # archives: the folder inside the archive to keep (default: its single top folder)
    encrypted: bool = False  # archive needs the licence password (see ``download_dataset``)


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


def download_dataset(dataset: str, root=None, subjects=None, *, files: list[RemoteFile] | None = None,
                     password: str | None = None, progress: bool = True, timeout: float = 10.0, retries: int = 3) -> Path:
    """Fetch ``dataset`` ("things-eeg2" or "things-meg") into ``root`` (default ``runtime.data_dir()/<dataset>``).

    Files already in place are skipped, so an interrupted run continues where it
    stopped. ``files`` replaces the registry (tests point it at a local server).
    The THINGS images are encrypted to make users read their licence first
    (https://osf.io/jum2f/, password_images.txt): pass the password it gives as
    ``password`` or in the ``I2B_THINGS_PASSWORD`` environment variable.
    """
    if dataset not in SUBJECTS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(SUBJECTS)}")
    root = Path(root if root is not None else data_dir() / dataset).expanduser().resolve()
    files = registry(dataset, subjects) if files is None else files
    lock_path = root / LOCK_NAME
    lock = json.loads(lock_path.read_text()) if lock_path.is_file() else {}
    for remote in files:
        dest = root / remote.path
        if remote.extract_to and (root / remote.extract_to).is_dir():
            continue
        if not dest.is_file():
            try:
                url, sha256, size = _ask_osf(remote, timeout) if remote.osf_api else (remote.url, remote.sha256, remote.size)
                known = lock.get(remote.path, {})
                sha256, size = sha256 or known.get("sha256"), size or known.get("size")
                digest = download_file(url, dest, sha256=sha256, size=size, progress=progress, timeout=timeout, retries=retries)
            except OfflineError as error:
                modality = "eeg" if dataset == "things-eeg2" else "meg"
                raise OfflineError(error.url, error.reason, (
                    f"Download the files of {dataset} on a machine that has one (their URLs: "
                    f"i2b_minimal.download.registry({dataset!r})) and copy them into {root} as data/README.md lays "
                    f"out, or work offline with the synthetic world: `i2b data synth --modality {modality}`")) from None
            lock[remote.path] = {"url": url, "sha256": digest, "size": dest.stat().st_size}
            with atomic_write(lock_path, "w") as handle:
                json.dump(lock, handle, indent=1, sort_keys=True)
        if remote.extract_to:
            secret = (password or os.environ.get(PASSWORD_ENV)) if remote.encrypted else None
            if remote.encrypted and not secret:
                raise RuntimeError(f"{dest} is downloaded but encrypted: read the licence of the THINGS images at "
                                   f"https://osf.io/jum2f/ (password_images.txt), then rerun with {PASSWORD_ENV}=<password>")
            extract(dest, root / remote.extract_to, inner=remote.inner, password=secret, progress=progress)
            dest.unlink()
    return root


def download_file(url: str, dest, sha256: str | None = None, size: int | None = None, *, progress: bool = True,
                  timeout: float = 10.0, retries: int = 3) -> str:
    """Download ``url`` to ``dest`` atomically; return its SHA-256 after checking ``size`` and ``sha256``.

    Bytes go to ``dest.part``. A transfer that breaks off is resumed with an
    HTTP Range request (or restarted when the server ignores it), up to
    ``retries`` times; a rerun also resumes from the part file. A failure to
    connect before any server has answered raises :class:`OfflineError` at once.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    answered, attempt = False, 0
    while True:
        try:
            answered |= _fetch(url, part, size, progress, timeout)
            break
        except OfflineError:
            if not answered or attempt >= retries:
                raise
        except (http.client.HTTPException, ConnectionError, TimeoutError) as error:  # dropped, reset, read timeout
            answered = True
            if attempt >= retries:
                raise ConnectionError(f"the download of {url} broke off {attempt + 1} times ({error}); "
                                      f"run the command again to resume from {part}") from error
        attempt += 1
        time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))  # 0.5 s, 1 s, 2 s, ...
    with open(part, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    actual_size = part.stat().st_size
    if (size is not None and actual_size != size) or (sha256 is not None and digest != sha256.lower()):
        part.unlink()
        raise ChecksumError(f"{url} gave {actual_size} bytes with SHA-256 {digest}, but expected "
                            f"{size if size is not None else 'any size'} bytes with SHA-256 {sha256 or 'any'}; "
                            f"the download was deleted, run the command again")
    os.replace(part, dest)
    return digest


def extract(archive, target, inner: str | None = None, password: str | None = None, progress: bool = True) -> Path:
    """Unpack a zip into ``target`` all at once: into a temporary folder first, then one rename.

    The kept folder is ``inner`` inside the archive when given, else the
    archive's single top-level folder (``training_images/``, ``sub-01/``), else
    everything.
    """
    from tqdm.auto import tqdm

    archive, target = Path(archive), Path(target)
    scratch = target.with_name(f".{target.name}.extracting")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zipped:
            if password:
                zipped.setpassword(password.encode())
            for member in tqdm(zipped.infolist(), desc=f"extracting {archive.name}", unit="file", disable=not progress):
                zipped.extract(member, scratch)
        entries = [p for p in scratch.iterdir() if p.name != "__MACOSX"]
        source = scratch / inner if inner else (entries[0] if len(entries) == 1 and entries[0].is_dir() else scratch)
        if not source.is_dir():
            raise ValueError(f"{archive} has no folder {inner!r}; it is not the archive the registry describes")
        os.replace(source, target)
    except RuntimeError as error:  # zipfile's "Bad password"
        raise RuntimeError(f"could not extract {archive}: {error}") from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _fetch(url: str, part: Path, size: int | None, progress: bool, timeout: float) -> bool:
    """Append the missing bytes of ``url`` to ``part``. Returns True (the server answered)."""
    from tqdm.auto import tqdm

    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset >= size:
        if offset == size:
            return True
        part.unlink()
        offset = 0
    headers = {"User-Agent": "i2b-minimal", **({"Range": f"bytes={offset}-"} if offset else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # our part file is longer than the file: start again
            part.unlink()
            return _fetch(url, part, size, progress, timeout)
        raise RuntimeError(f"{url} answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise OfflineError(url, getattr(error, "reason", error), (
            f"Download the file on a machine that has one and copy it to {part.with_suffix('')}, "
            f"or work offline with the synthetic world: `i2b data synth`")) from None
    part.parent.mkdir(parents=True, exist_ok=True)
    with response:
        content_range = response.headers.get("Content-Range", "")
        if offset and not (response.status == 206 and content_range.startswith(f"bytes {offset}-")):
            offset = 0  # the server ignored the Range header and sends everything: restart
        length = response.headers.get("Content-Length")
        expected_end = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as handle, tqdm(
                total=size or expected_end, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=part.name[:-5], disable=not progress) as bar:
            while chunk := response.read(1 << 20):
                handle.write(chunk)
                bar.update(len(chunk))
    if expected_end is not None and part.stat().st_size < expected_end:
        raise http.client.IncompleteRead(b"", expected_end - part.stat().st_size)
    return True


def _ask_osf(remote: RemoteFile, timeout: float) -> tuple[str, str | None, int | None]:
    """Download link, SHA-256 and size of an OSF file, from OSF's JSON API."""
    try:
        with urllib.request.urlopen(urllib.request.Request(remote.osf_api, headers={"User-Agent": "i2b-minimal"}),
                                    timeout=timeout) as response:
            record = json.load(response)["data"]
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{remote.osf_api} answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise OfflineError(remote.osf_api, getattr(error, "reason", error), "") from None
    if isinstance(record, list):
        if not record:
            raise RuntimeError(f"OSF lists no file for {remote.path} at {remote.osf_api}")
        record = record[0]
    attributes = record.get("attributes", {})
    sha256 = (attributes.get("extra") or {}).get("hashes", {}).get("sha256")
    return remote.url or record["links"]["download"], remote.sha256 or sha256, remote.size or attributes.get("size")


def _check_subjects(dataset: str, subjects) -> list[int]:
    if dataset not in SUBJECTS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(SUBJECTS)}")
    valid = SUBJECTS[dataset]
    subjects = list(valid) if subjects is None else [int(n) for n in subjects]
    wrong = [n for n in subjects if n not in valid]
    if wrong:
        raise ValueError(f"{dataset} has subjects {valid.start}-{valid.stop - 1}; {wrong} do not exist")
    return subjects
