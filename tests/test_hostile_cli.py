"""The command under careless use (issue 13): every expected failure is one paragraph and exit code 1; the
traceback only with ``i2b --debug``."""

import pytest
from PIL import Image

from i2b_minimal.app import cli


def _run(argv, capsys):
    code = cli.main(argv)
    err = capsys.readouterr().err  # progress bars first, then the error
    message = err.rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert "Traceback" not in err and message.startswith("i2b: error: ") and err.count("i2b: error") == 1, err
    return code, message + "\n"


def test_sample_into_a_folder_says_to_give_a_file(tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    code, err = _run(["sample", str(image), "--steps", "2", "--out", str(tmp_path)], capsys)
    assert code == 1 and f"is a directory: {tmp_path}" in err and "not a folder" in err


def test_a_decompression_bomb_is_a_message(tmp_path, capsys, monkeypatch):
    image = tmp_path / "bomb.png"
    Image.new("RGB", (40, 40)).save(image)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels is then a bomb, as 200 Mpx is by default
    code, err = _run(["sample", str(image), "--steps", "2", "--out", str(tmp_path / "x.npy")], capsys)
    assert code == 1 and "too large to open safely" in err


def test_a_permission_error_names_the_path(capsys, monkeypatch):
    def refuse(args):
        raise PermissionError(13, "Permission denied", "/somewhere/out.npy")

    monkeypatch.setattr(cli, "_cmd_sample", refuse)
    code, err = _run(["sample", "x.png"], capsys)
    assert code == 1 and err == "i2b: error: permission denied: /somewhere/out.npy\n"


def test_a_missing_data_root_is_a_message(tmp_path, capsys):
    code, err = _run(["train", "--data-root", str(tmp_path / "typo"), "--output-dir", str(tmp_path / "run")], capsys)
    assert code == 1 and "typo does not exist" in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="--steps"):
        cli.main(["--debug", "train", "--steps", "0", "--output-dir", str(tmp_path)])


def test_a_multi_line_message_becomes_one_paragraph():
    assert cli.error_message(ValueError("first\n  second")) == "first second"
