"""Downloading the real THINGS-EEG2 and THINGS-MEG files: resumable, verified, atomic.

The registry (``remote_files.py``) lists the published files of each dataset,
with where each URL and checksum comes from. Every file is streamed to
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

from .loaders import SUBJECTS
from .remote_files import RemoteFile, registry

LOCK_NAME = "i2b-download.lock.json"
PASSWORD_ENV = "I2B_THINGS_PASSWORD"


class OfflineError(ConnectionError):
    """No server could be reached at all."""

    def __init__(self, url: str, reason, advice: str):
        self.url, self.reason = url, reason
        super().__init__(f"could not connect to {url} ({reason}). There seems to be no network. {advice}")


class ChecksumError(RuntimeError):
    """A finished download does not have the published (or first-seen) size or SHA-256."""


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
