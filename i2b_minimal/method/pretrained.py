"""Where CLIP weights come from: the bundled tiny CLIP, a local folder, or the Hugging Face hub.

Nothing touches the network unless a hub id is not cached yet; then a short
check runs first, so that an offline machine, or a server (or proxy) that accepts
connections and never answers, fails in seconds with a message that says what to
do, instead of retrying for half a minute or hanging for minutes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.parse
import urllib.request
from pathlib import Path

TINY_CLIP_DIR = Path(__file__).parents[1] / "assets" / "tiny-clip"
CONNECT_TIMEOUT_S = 2.5  # to open a connection, and again for the first byte of an answer


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in {"1", "true", "yes", "on"}
    return bool(constants.HF_HUB_OFFLINE) or flag


def _hub_state(timeout: float = CONNECT_TIMEOUT_S) -> str:
    """"answers", "silent" (a connection opens, nothing comes back) or "unreachable": the hub, or the HTTPS proxy.

    A plain HTTP request goes out on the connection; any reply within ``timeout``, or the server closing it (a TLS
    server meeting plain text does either), counts as an answer. The hub library's own metadata call has no read
    deadline, so a silent server would otherwise hang it for minutes.
    """
    from huggingface_hub import constants

    url = urllib.parse.urlsplit(urllib.request.getproxies().get("https") or constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout) as connection:
            connection.sendall(f"HEAD / HTTP/1.1\r\nHost: {url.hostname}\r\nConnection: close\r\n\r\n".encode())
            try:
                connection.recv(1)
            except TimeoutError:
                return "silent"
            return "answers"
    except OSError:
        return "unreachable"


def resolve_source(name_or_path: str) -> tuple[str, bool]:
    """``(what from_pretrained gets, whether it is a local folder)`` for a name, folder or hub id."""
    if name_or_path == "tiny":
        return str(TINY_CLIP_DIR), True
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(
            f"{name_or_path!r} is not a folder with a CLIP model (config.json, model.safetensors, "
            "preprocessor_config.json); give a folder, a hub id such as openai/clip-vit-large-patch14, or 'tiny'"
        )
    return name_or_path, False


@contextlib.contextmanager
def _hub_offline():
    """Switch huggingface_hub to offline mode for a block.

    ``local_files_only`` alone is not enough: huggingface_hub 2.x builds a
    user-agent header even for a cache lookup, and that fetches a registry from
    the hub once a day (3 s timeout). Offline mode turns every such call off.
    """
    from huggingface_hub import constants

    saved, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def from_pretrained(cls, source: str, local: bool, **kwargs):
    """Load ``source``: from disk with no network call when possible, else online after a quick check."""
    try:
        with _hub_offline():
            return cls.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError as not_cached:
        if local:
            raise
        way_out = (f"run once with internet access to download and cache {source!r} "
                   "(it then loads offline), or use the bundled ImageEncoder('tiny')")
        if _offline():
            raise ConnectionError(f"{source!r} is not in the Hugging Face cache and HF_HUB_OFFLINE=1 "
                                  f"forbids downloading it: {way_out}") from not_cached
        state = _hub_state()
        if state == "unreachable":
            raise ConnectionError(f"{source!r} is not in the Hugging Face cache and the hub is unreachable "
                                  f"(no connection within {CONNECT_TIMEOUT_S} s): {way_out}") from not_cached
        if state == "silent":
            raise ConnectionError(f"{source!r} is not in the Hugging Face cache and the hub (or proxy) accepted a "
                                  f"connection but did not answer within {CONNECT_TIMEOUT_S} s: {way_out}") \
                from not_cached
    return cls.from_pretrained(source, **kwargs)
