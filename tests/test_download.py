"""The download path against a real HTTP server on 127.0.0.1 that serves synthetic files.

Covers a good file, a checksum mismatch, a connection dropped midway (resumed
with Range, or restarted when the server ignores Range), no server at all, and
the dataset-level flow: OSF-style metadata, archive extraction, the
trust-on-first-use lock file and skipping finished files.
"""

import hashlib
import http.server
import io
import json
import socket
import threading
import zipfile

import pytest

from i2b_minimal import download


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "not here")
            return
        if callable(body):
            body = body(server)
        start = 0
        range_header = self.headers.get("Range")
        if range_header and server.support_range:
            start = int(range_header.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if self.path in server.drop_once:  # send half, then hang up
            server.drop_once.discard(self.path)
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.drop_once, httpd.support_range = {}, [], set(), True
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _payload(n=300_000, seed=1):
    return bytes((i * 7919 + seed * 104729) % 251 for i in range(n))


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_good_file_is_verified_and_renamed(server, tmp_path):
    data = _payload()
    server.files["/a.bin"] = data
    dest = tmp_path / "sub" / "a.bin"
    digest = download.download_file(f"{server.url}/a.bin", dest, sha256=_sha(data), size=len(data), progress=False)
    assert digest == _sha(data)
    assert dest.read_bytes() == data
    assert not (tmp_path / "sub" / "a.bin.part").exists()


def test_checksum_mismatch_deletes_the_part_file_and_names_url_and_hashes(server, tmp_path):
    data = _payload()
    server.files["/a.bin"] = data
    dest = tmp_path / "a.bin"
    with pytest.raises(download.ChecksumError) as caught:
        download.download_file(f"{server.url}/a.bin", dest, sha256="0" * 64, progress=False)
    message = str(caught.value)
    assert f"{server.url}/a.bin" in message and "0" * 64 in message and _sha(data) in message
    assert not dest.exists() and not (tmp_path / "a.bin.part").exists()


def test_wrong_size_is_rejected(server, tmp_path):
    server.files["/a.bin"] = _payload(1000)
    with pytest.raises(download.ChecksumError, match="999 bytes"):
        download.download_file(f"{server.url}/a.bin", tmp_path / "a.bin", size=999, progress=False)


def test_dropped_connection_is_resumed_with_range(server, tmp_path):
    data = _payload()
    server.files["/a.bin"] = data
    server.drop_once.add("/a.bin")
    dest = tmp_path / "a.bin"
    download.download_file(f"{server.url}/a.bin", dest, sha256=_sha(data), progress=False, retries=2)
    assert dest.read_bytes() == data
    assert len(server.requests) == 2
    assert server.requests[0][1] is None
    assert server.requests[1][1] == f"bytes={len(data) // 2}-"


def test_dropped_connection_restarts_when_the_server_ignores_range(server, tmp_path):
    data = _payload()
    server.files["/a.bin"] = data
    server.drop_once.add("/a.bin")
    server.support_range = False
    dest = tmp_path / "a.bin"
    download.download_file(f"{server.url}/a.bin", dest, sha256=_sha(data), progress=False, retries=2)
    assert dest.read_bytes() == data
    assert server.requests[1][1] is not None  # it asked for the rest, got everything, and started over


def test_a_rerun_resumes_after_retries_are_spent(server, tmp_path):
    data = _payload()
    server.files["/a.bin"] = data
    server.drop_once.add("/a.bin")
    dest = tmp_path / "a.bin"
    with pytest.raises(ConnectionError, match="run the command again"):
        download.download_file(f"{server.url}/a.bin", dest, progress=False, retries=0)
    assert (tmp_path / "a.bin.part").stat().st_size == len(data) // 2
    assert not dest.exists()
    download.download_file(f"{server.url}/a.bin", dest, sha256=_sha(data), progress=False, retries=0)
    assert dest.read_bytes() == data
    assert server.requests[-1][1] == f"bytes={len(data) // 2}-"


def test_no_server_fails_at_once_with_advice(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/a.bin"
    with pytest.raises(download.OfflineError) as caught:
        download.download_file(url, tmp_path / "a.bin", progress=False, timeout=2.0, retries=3)
    message = str(caught.value)
    assert "no network" in message and "i2b data synth" in message and url in message
    assert not (tmp_path / "a.bin").exists()


def test_no_server_for_a_dataset_names_the_ways_out(tmp_path):
    files = [download.RemoteFile("sourcedata/a.csv", url=f"http://127.0.0.1:{_free_port()}/a.csv")]
    with pytest.raises(download.OfflineError) as caught:
        download.download_dataset("things-meg", tmp_path / "root", files=files, progress=False)
    message = str(caught.value)
    assert "no network" in message and "i2b data synth --modality meg" in message and str(tmp_path / "root") in message
    assert not (tmp_path / "root").exists()  # nothing half-made is left behind


def test_http_error_names_the_url(server, tmp_path):
    with pytest.raises(RuntimeError, match="404"):
        download.download_file(f"{server.url}/missing.bin", tmp_path / "x.bin", progress=False)


def _zip_bytes(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_dataset_flow_osf_metadata_extraction_lock_and_skip(server, tmp_path):
    archive = _zip_bytes({"sub-01/preprocessed_eeg_test.npy": b"abc", "sub-01/preprocessed_eeg_training.npy": b"defg"})
    plain = _payload(5000)
    server.files["/storage/sub-01.zip"] = archive
    server.files["/storage/notes.csv"] = plain
    # What OSF's API answers for a stored file: size, published SHA-256 and the download link.
    server.files["/api/nodes/x/files/?name=sub-01.zip"] = json.dumps({"data": [{
        "attributes": {"name": "sub-01.zip", "size": len(archive), "extra": {"hashes": {"sha256": _sha(archive)}}},
        "links": {"download": f"{server.url}/storage/sub-01.zip"}}]}).encode()
    files = [download.RemoteFile("preprocessed_data/sub-01.zip", osf_api=f"{server.url}/api/nodes/x/files/?name=sub-01.zip",
                                 extract_to="preprocessed_data/sub-01"),
             download.RemoteFile("sourcedata/notes.csv", url=f"{server.url}/storage/notes.csv")]
    root = download.download_dataset("things-eeg2", tmp_path / "root", files=files, progress=False)

    assert (root / "preprocessed_data/sub-01/preprocessed_eeg_test.npy").read_bytes() == b"abc"
    assert (root / "preprocessed_data/sub-01/preprocessed_eeg_training.npy").read_bytes() == b"defg"
    assert not (root / "preprocessed_data/sub-01.zip").exists()
    assert (root / "sourcedata/notes.csv").read_bytes() == plain
    lock = json.loads((root / download.LOCK_NAME).read_text())
    assert lock["preprocessed_data/sub-01.zip"]["sha256"] == _sha(archive)
    assert lock["sourcedata/notes.csv"] == {"url": f"{server.url}/storage/notes.csv", "sha256": _sha(plain), "size": 5000}

    n_requests = len(server.requests)
    download.download_dataset("things-eeg2", root, files=files, progress=False)
    assert len(server.requests) == n_requests  # everything was in place: nothing fetched again

    # Trust on first use: a later download of the same file must match the recorded hash.
    (root / "sourcedata/notes.csv").unlink()
    server.files["/storage/notes.csv"] = _payload(5000, seed=2)
    with pytest.raises(download.ChecksumError, match=_sha(plain)):
        download.download_dataset("things-eeg2", root, files=files, progress=False)


def test_published_osf_checksum_is_enforced(server, tmp_path):
    server.files["/storage/a.zip"] = _zip_bytes({"a/x.txt": b"x"})
    server.files["/api/files/abc/"] = json.dumps({"data": {
        "attributes": {"size": None, "extra": {"hashes": {"sha256": "f" * 64}}},
        "links": {"download": "unused"}}}).encode()
    files = [download.RemoteFile("a.zip", url=f"{server.url}/storage/a.zip", osf_api=f"{server.url}/api/files/abc/",
                                 extract_to="a")]
    with pytest.raises(download.ChecksumError, match="f" * 64):
        download.download_dataset("things-eeg2", tmp_path, files=files, progress=False)


def test_encrypted_archive_needs_the_licence_password(server, tmp_path, monkeypatch):
    monkeypatch.delenv(download.PASSWORD_ENV, raising=False)
    server.files["/images.zip"] = _zip_bytes({"object_images/aardvark/aardvark_01b.jpg": b"jpg", "readme.txt": b"r"})
    files = [download.RemoteFile("images_THINGS.zip", url=f"{server.url}/images.zip", extract_to="images_meg",
                                 inner="object_images", encrypted=True)]
    with pytest.raises(RuntimeError, match=download.PASSWORD_ENV):
        download.download_dataset("things-meg", tmp_path, files=files, progress=False)
    assert (tmp_path / "images_THINGS.zip").is_file()  # kept: the rerun only extracts
    n_requests = len(server.requests)
    download.download_dataset("things-meg", tmp_path, files=files, password="secret", progress=False)
    assert (tmp_path / "images_meg/aardvark/aardvark_01b.jpg").read_bytes() == b"jpg"
    assert not (tmp_path / "images_meg/readme.txt").exists()
    assert len(server.requests) == n_requests


def test_registry_lists_the_real_files():
    meg = download.registry("things-meg", [2])
    paths = [f.path for f in meg]
    assert paths[:5] == [f"derivatives/preprocessed/preprocessed_P2-epo{s}.fif" for s in ("", "-1", "-2", "-3")] + [
        "sourcedata/sample_attributes_P2.csv"]
    assert all(f.url.startswith("https://s3.amazonaws.com/openneuro.org/ds004212/") and "versionId=" in f.url for f in meg[:5])
    assert meg[3].sha256 == "52200eb4b46340185970d6df82ba5f5169e396a63efaead4b82268014b96b1fa" and meg[3].size == 2062928825
    assert meg[-1].encrypted and meg[-1].extract_to == "images_meg"
    eeg = download.registry("things-eeg2", [1, 10])
    assert [f.extract_to for f in eeg] == ["preprocessed_data/sub-01", "preprocessed_data/sub-10",
                                           "image_set/training_images", "image_set/test_images"]
    assert len(download.registry("things-eeg2")) == 12
    with pytest.raises(ValueError, match="subjects 1-4"):
        download.registry("things-meg", [5])
    with pytest.raises(ValueError, match="unknown dataset"):
        download.download_dataset("things-fmri", progress=False)
