"""clip.py: loading (folder, cached hub id, offline failures), image conversion, encoding and feature caching.

These tests use a small randomly initialised CLIP vision tower saved to a
temporary folder, so they do not depend on the bundled tiny CLIP.
"""

import socket
import time

import numpy as np
import pytest
import torch
from PIL import Image

from i2b_minimal import clip, features

MEAN = np.array([0.48145466, 0.4578275, 0.40821073])  # OpenAI CLIP's normalisation (Radford et al. 2021)
STD = np.array([0.26862954, 0.26130258, 0.27577711])


def save_random_clip(folder, seed=0, image_size=32, patch_size=8):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=image_size, patch_size=patch_size, projection_dim=16)
    model = CLIPVisionModelWithProjection(config)
    model.save_pretrained(folder)
    clip.image_processor_class()(size={"shortest_edge": image_size},
                                  crop_size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return model.eval()


@pytest.fixture(scope="module")
def random_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("random-clip")
    return folder, save_random_clip(folder)


def reference_features(model, image: Image.Image):
    """Preprocess by hand (the image is already 32 x 32: only rescale and normalise), then run the model."""
    pixels = (np.asarray(image.convert("RGB"), np.float64) / 255 - MEAN) / STD
    with torch.no_grad():
        out = model(pixel_values=torch.tensor(pixels, dtype=torch.float32).permute(2, 0, 1)[None])
    return out.last_hidden_state[0], out.image_embeds[0]


def random_image(seed, size=32, mode="RGB"):
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB").convert(mode)


def test_folder_encoder_matches_hand_preprocessed_model(random_clip):
    folder, model = random_clip
    encoder = clip.ImageEncoder(str(folder), device="cpu", batch_size=2, progress=False)
    assert (encoder.num_tokens, encoder.token_dim, encoder.embed_dim) == (17, 32, 16)
    assert not encoder.model.training and not any(p.requires_grad for p in encoder.model.parameters())
    images = [random_image(seed) for seed in range(3)]  # 3 images, batches of 2: exercises batching
    tokens, pooled = encoder.encode(images)
    assert tokens.shape == (3, 17, 32) and pooled.shape == (3, 16)
    assert tokens.dtype == pooled.dtype == torch.float32 and tokens.device.type == "cpu"
    for i, image in enumerate(images):
        ref_tokens, ref_pooled = reference_features(model, image)
        torch.testing.assert_close(tokens[i], ref_tokens, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(pooled[i], ref_pooled, atol=1e-4, rtol=1e-4)


def write_hub_cache(cache, repo_id, folder, commit="0123456789abcdef0123456789abcdef01234567"):
    """Lay out ``folder``'s files as huggingface_hub caches a download of ``repo_id``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for file in folder.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt to open a connection, recording it."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network is down (test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_cached_hub_id_loads_without_network(random_clip, tmp_path, no_network, monkeypatch):
    folder, model = random_clip
    write_hub_cache(tmp_path, "i2b-test/random-clip", folder)
    # Even with offline mode off, a cached model must not trigger the connectivity check or a download.
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    encoder = clip.ImageEncoder("i2b-test/random-clip", device="cpu", progress=False, cache_dir=tmp_path)
    image = random_image(7)
    tokens, pooled = encoder.encode(image)
    ref_tokens, ref_pooled = reference_features(model, image)
    torch.testing.assert_close(tokens[0], ref_tokens, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(pooled[0], ref_pooled, atol=1e-4, rtol=1e-4)
    assert no_network == []


def test_uncached_hub_id_fails_fast_when_offline(tmp_path, no_network):
    import transformers.models.clip  # noqa: F401  (the import's own seconds are not the failure's)

    started = time.perf_counter()
    with pytest.raises(ConnectionError) as error:
        clip.ImageEncoder("i2b-test/not-cached", cache_dir=tmp_path, progress=False)
    assert time.perf_counter() - started < 5  # the requirement: fail within 5 s
    message = str(error.value)
    assert "i2b-test/not-cached" in message and "HF_HUB_OFFLINE" in message
    assert "internet" in message and "'tiny'" in message
    assert no_network == []


def test_uncached_hub_id_fails_fast_when_the_network_is_down(tmp_path, no_network, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    import transformers.models.clip  # noqa: F401

    started = time.perf_counter()
    with pytest.raises(ConnectionError, match="unreachable") as error:
        clip.ImageEncoder("i2b-test/not-cached", cache_dir=tmp_path, progress=False)
    assert time.perf_counter() - started < 5
    assert "'tiny'" in str(error.value)
    assert len(no_network) == 1  # one quick connectivity check, no download attempt after it


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        clip.ImageEncoder(str(tmp_path / "no-such-model"))


def test_bad_image_files_are_named(random_clip, tmp_path):
    folder, _ = random_clip
    encoder = clip.ImageEncoder(str(folder), device="cpu", progress=False)
    missing = tmp_path / "missing.png"
    with pytest.raises(FileNotFoundError, match="missing.png"):
        encoder.encode([missing])
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"these bytes are not an image")
    with pytest.raises(ValueError, match="corrupt.jpg"):
        encoder.encode([corrupt])
    random_image(0, size=64).save(tmp_path / "whole.png")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes((tmp_path / "whole.png").read_bytes()[:300])
    with pytest.raises(ValueError, match="truncated.png"):
        encoder.encode([truncated])


def test_image_modes_convert_to_8_bit_rgb():
    grey = np.arange(0, 256, dtype=np.uint16).reshape(16, 16)
    sixteen_bit = Image.fromarray(grey * 257)  # mode "I;16": 0..65535
    assert sixteen_bit.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(clip.load_rgb(sixteen_bit))[..., 1], grey)
    thirty_two_bit = Image.fromarray((grey * 257).astype(np.int32), "I")
    np.testing.assert_array_equal(np.asarray(clip.load_rgb(thirty_two_bit))[..., 0], grey)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: kept
    rgba[0, 1] = (10, 20, 30, 0)  # transparent: white
    rgba[1, :] = (0, 0, 0, 128)  # half-transparent black: mid grey
    rgb = np.asarray(clip.load_rgb(Image.fromarray(rgba, "RGBA"))).astype(int)
    assert tuple(rgb[0, 0]) == (10, 20, 30) and tuple(rgb[0, 1]) == (255, 255, 255)
    assert np.all(np.abs(rgb[1] - 127) <= 1)
    palette = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
    palette.putpalette([200, 10, 10, 5, 6, 7] + [0] * 762)
    np.testing.assert_array_equal(np.asarray(clip.load_rgb(palette)), [[[200, 10, 10], [5, 6, 7]]])
    palette.info["transparency"] = 1
    np.testing.assert_array_equal(np.asarray(clip.load_rgb(palette)), [[[200, 10, 10], [255, 255, 255]]])
    np.testing.assert_array_equal(np.asarray(clip.load_rgb(Image.fromarray(grey.astype(np.uint8), "L")))[..., 2], grey)


def test_every_image_mode_encodes_like_its_rgb_equivalent(random_clip, tmp_path):
    folder, _ = random_clip
    encoder = clip.ImageEncoder(str(folder), device="cpu", progress=False)
    grey = np.random.default_rng(0).integers(0, 256, (32, 32)).astype(np.uint16)
    Image.fromarray(grey * 257).save(tmp_path / "grey16.png")  # a 16-bit PNG on disk
    _, pooled_16 = encoder.encode(tmp_path / "grey16.png")
    _, pooled_8 = encoder.encode(Image.fromarray(grey.astype(np.uint8), "L").convert("RGB"))
    torch.testing.assert_close(pooled_16, pooled_8)
    image = random_image(3)
    others = [image.convert(mode) for mode in ("L", "RGBA", "P", "CMYK")]
    tokens, pooled = encoder.encode(others)
    assert tokens.shape[0] == 4 and torch.isfinite(tokens).all() and torch.isfinite(pooled).all()


def test_encode_dataset_caches_and_recomputes(random_clip, tmp_path, monkeypatch):
    folder, _ = random_clip
    root = tmp_path / "root"
    paths = []
    for i in range(3):
        paths.append(root / "images" / f"{i}.png")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        random_image(i).save(paths[-1])
    encoder = clip.ImageEncoder(str(folder), device="cpu", progress=False)
    tokens, pooled = features.encode_dataset(encoder, paths, root / "features", progress=False)
    direct_tokens, direct_pooled = encoder.encode(paths)
    torch.testing.assert_close(tokens, direct_tokens)
    torch.testing.assert_close(pooled, direct_pooled)
    cache_files = list((root / "features").iterdir())
    assert len(cache_files) == 1 and cache_files[0].suffix == ".safetensors"  # no temporary leftovers

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr(encoder, "encode", must_not_run)
    cached_tokens, cached_pooled = features.encode_dataset(encoder, paths, root / "features", progress=False)
    assert torch.equal(cached_tokens, tokens) and torch.equal(cached_pooled, pooled)
    with pytest.raises(AssertionError, match="cache"):  # another image order is another cache entry
        features.encode_dataset(encoder, paths[::-1], root / "features", progress=False)

    other_folder = tmp_path / "other-clip"
    save_random_clip(other_folder, seed=1)
    other = clip.ImageEncoder(str(other_folder), device="cpu", progress=False)
    assert other.fingerprint != encoder.fingerprint
    calls = []
    original = other.encode
    monkeypatch.setattr(other, "encode", lambda *a, **k: calls.append(1) or original(*a, **k))
    other_tokens, _ = features.encode_dataset(other, paths, root / "features", progress=False)
    assert calls == [1] and not torch.allclose(other_tokens, tokens)
    assert len(list((root / "features").iterdir())) == 2


def test_a_read_only_data_folder_caches_in_the_user_cache(random_clip, tmp_path, monkeypatch):
    folder, _ = random_clip
    root = tmp_path / "root"
    paths = [root / "images" / f"{i}.png" for i in range(2)]
    paths[0].parent.mkdir(parents=True)
    for i, path in enumerate(paths):
        random_image(i).save(path)
    (root / "features").write_text("in the way")  # the features folder cannot be made: as on a read-only disk
    monkeypatch.setenv("I2B_CACHE_DIR", str(tmp_path / "user-cache"))
    encoder = clip.ImageEncoder(str(folder), device="cpu", progress=False)
    tokens, _ = features.encode_dataset(encoder, paths, root / "features", progress=False)
    cached = list((tmp_path / "user-cache" / "features").glob("root-*/clip-*.safetensors"))
    assert len(cached) == 1

    monkeypatch.setattr(encoder, "encode", lambda *a, **k: pytest.fail("the user cache should have been read"))
    again, _ = features.encode_dataset(encoder, paths, root / "features", progress=False)
    assert torch.equal(again, tokens)


@pytest.fixture
def silent_hub(monkeypatch):
    """A server on 127.0.0.1 that accepts connections and never answers, set as the hub's endpoint."""
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)  # stops by itself even if nobody connects
    held = []
    thread = threading.Thread(target=lambda: held.append(server.accept()), daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", endpoint)
    for proxy in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    yield held
    for connection, _ in held:
        connection.close()
    server.close()
    thread.join()


def test_a_hub_that_accepts_and_never_answers_is_a_clear_error(tmp_path, silent_hub):
    with pytest.raises(ConnectionError, match="accepted a connection but did not answer") as error:
        clip.ImageEncoder("i2b-test/not-cached", cache_dir=tmp_path, progress=False)
    assert "'tiny'" in str(error.value) and len(silent_hub) == 1  # the check reached the silent server
