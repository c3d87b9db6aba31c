"""runtime.data_dir: one data folder for notebooks, the command line and Colab."""

from pathlib import Path

from i2b_minimal import runtime

REPO = Path(__file__).resolve().parents[1]


def test_data_dir_is_the_repository_data_folder_from_any_subfolder(monkeypatch):
    monkeypatch.delenv("I2B_DATA_DIR", raising=False)
    monkeypatch.chdir(REPO / "notebooks" if (REPO / "notebooks").is_dir() else REPO / "tests")
    assert runtime.data_dir() == REPO / "data"


def test_data_dir_outside_a_checkout_is_local(monkeypatch, tmp_path):
    monkeypatch.delenv("I2B_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert runtime.data_dir() == tmp_path.resolve() / "data"


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("I2B_DATA_DIR", str(tmp_path / "elsewhere"))
    assert runtime.data_dir() == (tmp_path / "elsewhere").resolve()
