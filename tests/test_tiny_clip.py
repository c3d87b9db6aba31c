"""world/tiny_clip/: the tokenizer, the contrastive loss, the held-out split, the bundled weights and a short training run."""

import json
import math

import numpy as np
import pytest
import torch

from i2b_minimal import cli, clip, synthetic, tiny_clip


def test_word_tokenizer_covers_the_world_and_round_trips(tmp_path):
    tokenizer = tiny_clip.WordTokenizer.from_world()
    for values in synthetic.ATTRIBUTES.values():
        for value in values:
            assert all(word in tokenizer.vocab for word in value.split())
    text = synthetic.caption({"shape": "star", "colour": "teal", "size": "large", "position": "upper left",
                              "texture": "wavy", "background": "gradient"})
    ids, mask = tokenizer([text, "a purple unicorn"])
    words = tiny_clip.WordTokenizer.words(text)
    assert ids.shape == mask.shape == (2, tiny_clip.MAX_CAPTION_TOKENS)
    assert ids[0, 0] == tokenizer.bos_id and ids[0, len(words) + 1] == tokenizer.eos_id
    assert [tokenizer.vocab[w] for w in words] == ids[0, 1:len(words) + 1].tolist()
    assert int(mask[0].sum()) == len(words) + 2 and (ids[0, len(words) + 2:] == tokenizer.pad_id).all()
    assert ids[1, 3] == tokenizer.unk_id  # "unicorn" is not a word of this world
    tokenizer.save(tmp_path)
    assert tiny_clip.WordTokenizer.load(tmp_path).vocab == tokenizer.vocab


def test_contrastive_loss_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    image, text = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    scale = 2.5
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    logits = np.exp(scale) * unit(image) @ unit(text).T

    def cross_entropy(rows):  # the correct class of row i is column i
        return np.mean(np.log(np.exp(rows).sum(axis=1)) - np.diag(rows))

    expected = (cross_entropy(logits) + cross_entropy(logits.T)) / 2
    got = tiny_clip.contrastive_loss(torch.tensor(image), torch.tensor(text), torch.tensor(scale, dtype=torch.float64))
    assert got.item() == pytest.approx(expected, rel=1e-10)
    # Orthogonal, perfectly paired embeddings at the maximal scale: the loss vanishes.
    eye = torch.eye(4, dtype=torch.float64)
    assert tiny_clip.contrastive_loss(eye, eye, torch.tensor(math.log(100.0))).item() < 1e-10


def test_held_out_split_is_about_a_tenth_and_disjoint():
    rng = np.random.default_rng(0)
    sample = synthetic.sample_attributes(rng, 5000)
    fraction = np.mean([tiny_clip.is_held_out(a) for a in sample])
    assert 0.08 < fraction < 0.12
    held_out = tiny_clip.sample_world(rng, 200, held_out=True)
    trained = tiny_clip.sample_world(rng, 200, held_out=False)
    assert all(map(tiny_clip.is_held_out, held_out)) and not any(map(tiny_clip.is_held_out, trained))
    assert len({synthetic.caption(a) for a in held_out}) == 200  # distinct combinations


def test_mirror_twins_swap_only_left_and_right_and_never_add_a_held_out_combination():
    world = tiny_clip.sample_world(np.random.default_rng(0), 700, held_out=False)
    table, twin = tiny_clip.with_mirror_twins(world)
    assert table[:len(world)] == world and len({synthetic.caption(a) for a in table}) == len(table)
    assert not any(map(tiny_clip.is_held_out, table))
    for row, attributes in enumerate(world):
        other = tiny_clip.mirror(attributes)
        if twin[row] < 0:  # no twin: the middle column, or a twin that training must not see
            assert other is None or tiny_clip.is_held_out(other)
            continue
        assert table[twin[row]] == other and other["position"] != attributes["position"]
        assert {k: v for k, v in other.items() if k != "position"} == {k: v for k, v in attributes.items()
                                                                       if k != "position"}
        assert tiny_clip.mirror(other) == attributes  # mirroring twice is the identity
    assert tiny_clip.mirror({**world[0], "position": "centre"}) is None


def test_twin_batches_put_each_picture_beside_its_twin_and_cover_the_pool():
    twin = np.array([5, -1, 6, 1, -1])  # rows 5 and 6 are twins outside the pool; row 3's twin is pool row 1
    for seed in range(20):
        batches = tiny_clip.twin_batches(np.random.default_rng(seed), twin, batch_size=4)
        first = [next(batches) for _ in range(2)]  # an epoch is 5 pool rows and 2-3 twins: 8 rows reach into the next
        for batch in first:
            assert len(batch) == 4 and len(set(batch.tolist())) == 4  # never a row twice in one batch
            for position, row in enumerate(batch[:-1]):  # the last row's twin may have been cut off
                if row < len(twin) and twin[row] >= 0 and twin[row] not in batch[:position]:
                    assert batch[position + 1] == twin[row]  # a pool row is followed by its twin
        assert set(np.concatenate(first).tolist()) >= {0, 1, 2, 3, 4}  # the first epoch draws every pool row


def test_bundled_tiny_clip_loads_offline_and_reproduces_its_card():
    card = json.loads((clip.TINY_CLIP_DIR / "metrics.json").read_text())
    encoder = clip.ImageEncoder("tiny", progress=False)
    assert (encoder.num_tokens, encoder.token_dim) == ((tiny_clip.IMAGE_SIZE // tiny_clip.PATCH_SIZE) ** 2 + 1, 128)
    assert encoder.embed_dim == card["training"]["config"]["projection_dim"]
    total_bytes = sum(f.stat().st_size for f in clip.TINY_CLIP_DIR.rglob("*") if f.is_file())
    assert total_bytes < 8 * 2**20  # "a few MB"
    stated = card["retrieval"]
    measured = tiny_clip.retrieval(n_images=stated["n_images"], seed=stated["seed"])
    # Each rate counts hits among 500 queries, and another machine's float32 kernels (about 1e-6 apart) change a hit
    # only where the right match and its closest competitor nearly tie. On the card's queries the smallest such
    # margin in cosine similarity is 6.6e-5; 1 query of the 1000 (both directions) lies within 1e-4 of a tie, 11
    # within 1e-3. So a rate may move by 5 queries (0.01): room for differences a hundred times larger than rounding.
    changed_queries = 5 / stated["n_images"]
    for key in ("image_to_caption_top1", "image_to_caption_top5", "caption_to_image_top1", "caption_to_image_top5"):
        assert measured[key] == pytest.approx(stated[key], abs=changed_queries), key
        assert measured[key] > 10 * stated["chance_top5"]
    # Its own caption against the caption with left and right swapped (chance 0.5): what the mirror twins teach.
    assert measured["left_right"] == pytest.approx(stated["left_right"], abs=changed_queries)
    assert stated["left_right"] > 0.95


def test_bundled_model_card_is_written_from_its_metrics(tmp_path):
    (tmp_path / "text").mkdir()
    for name in ("metrics.json", "text/vocab.json"):
        (tmp_path / name).write_bytes((clip.TINY_CLIP_DIR / name).read_bytes())
    card = tiny_clip.write_model_card(tmp_path).read_text()
    assert card == (clip.TINY_CLIP_DIR / "MODEL_CARD.md").read_text()
    metrics = json.loads((clip.TINY_CLIP_DIR / "metrics.json").read_text())
    assert f"| {metrics['retrieval']['draw_size']} px | {metrics['retrieval']['image_to_caption_top1']:.3f} |" in card
    assert f"| colour | 12 | {metrics['linear_probe']['colour']['pooled']:.3f} |" in card
    position = metrics["linear_probe"]["position"]
    assert (f"| position | 7 | {position['pooled']:.3f} | {position['mean_tokens']:.3f} | "
            f"{position['all_tokens']:.3f} | {position['chance']:.3f} |") in card
    texture = metrics["linear_probe"]["properties"]["texture"]
    assert f"| texture | {texture['pooled']:.2f} | {texture['mean_tokens']:.2f} | {texture['all_tokens']:.2f} |" in card


def test_linear_probe_reads_three_views_with_a_cross_validated_penalty():
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    # Small matrices: on a CPU shared with other jobs, two BLAS threads mostly wait for each other.
    with threadpool_limits(1):
        result = tiny_clip.linear_probe(n_train=150, n_test=60, seed=3, progress=False)
    assert (result["n_train"], result["n_test"], result["seed"]) == (150, 60, 3)
    assert result["alphas"] == tiny_clip.PROBE_ALPHAS.tolist()
    for attribute, values in synthetic.ATTRIBUTES.items():
        row = result[attribute]
        assert 1 / len(values) <= row["chance"] <= 1
        assert all(0 <= row[view] <= 1 for view in tiny_clip.PROBE_VIEWS)
        assert set(row["alpha"]) == set(tiny_clip.PROBE_VIEWS) and set(row["alpha"].values()) <= set(result["alphas"])
    from i2b_minimal.world import pictures

    properties = result["properties"]  # one R^2 per brain-relevant property and view, on unseen pictures
    assert list(properties) == list(pictures.image_features([synthetic.sample_attributes(np.random.default_rng(0), 1)[0]]))
    assert all(set(r2) == set(tiny_clip.PROBE_VIEWS) and all(value <= 1 for value in r2.values())
               for r2 in properties.values())
    assert properties["luminance"]["all_tokens"] > 0.5  # the mean brightness of a picture is the easiest to read


def test_short_training_run_beats_chance_by_far(tmp_path):
    config = tiny_clip.TinyCLIPConfig(steps=90, batch_size=64, pool_size=1024, warmup_steps=10, learning_rate=3e-3,
                                      hidden_size=64, vision_layers=2, text_layers=1, projection_dim=32)
    # One thread: a model this small gains nothing from two, and on a CPU shared with other jobs
    # two threads that wait for each other made this run ten times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = tiny_clip.train(tmp_path, config, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert summary["final_loss"] < math.log(config.batch_size) - 1
    result = tiny_clip.retrieval(tmp_path, n_images=50, seed=5)
    for direction in ("image_to_caption", "caption_to_image"):
        assert result[f"{direction}_top1"] > 4 * result["chance_top1"]
        assert result[f"{direction}_top5"] > 5 * result["chance_top5"]


def test_clip_commands_are_wired():
    args = cli.build_parser().parse_args(["clip", "train", "--steps", "5", "--out", "somewhere"])
    assert args.func is cli._cmd_clip_train and args.steps == 5 and str(args.out) == "somewhere"
    assert cli.build_parser().parse_args(["clip", "eval"]).func is cli._cmd_clip_eval

