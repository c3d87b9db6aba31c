"""Is the tiny CLIP any good? Retrieval and linear probes, on attribute combinations training never saw.

Two kinds of probe read the same features: one classifier per attribute (the six words of a caption), and one
linear regression per **property the simulated brain responds to** (``pictures.image_features``: side, height,
size, contrast, luminance, shape complexity and roundness, hue, saturation, texture energy), scored by R^2.
The second says whether the features carry what a linear read-out of the brain's law would need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from i2b_minimal.method.clip import TINY_CLIP_DIR, ImageEncoder
from i2b_minimal.world import pictures, synthetic

from .mirror_twins import mirror
from .tokenizer import WordTokenizer
from .towers import IMAGE_SIZE
from .world_split import sample_world

PROBE_VIEWS = ("pooled", "mean_tokens", "all_tokens")
PROBE_ALPHAS = 10.0 ** np.arange(-2, 6)  # ridge penalties (powers of ten) the probes choose among by cross-validation


def retrieval(folder=TINY_CLIP_DIR, n_images: int = 500, seed: int = 1, draw_size: int = IMAGE_SIZE) -> dict:
    """Top-1 / top-5 image->caption and caption->image retrieval among ``n_images`` unseen combinations."""
    from transformers import CLIPTextModelWithProjection

    world = sample_world(np.random.default_rng(seed), n_images, held_out=True)
    encoder = ImageEncoder(folder, progress=False)
    _, image_embeds = encoder.encode([synthetic.draw_image(a, draw_size) for a in world])
    text = CLIPTextModelWithProjection.from_pretrained(Path(folder) / "text").float().eval()
    tokenizer = WordTokenizer.load(Path(folder) / "text")

    def embed(captions):
        ids, mask = tokenizer(captions)
        with torch.inference_mode():
            return torch.nn.functional.normalize(text(input_ids=ids, attention_mask=mask).text_embeds, dim=-1)

    image_embeds = torch.nn.functional.normalize(image_embeds, dim=-1)
    similarity = image_embeds @ embed([synthetic.caption(a) for a in world]).T
    truth = torch.arange(n_images)[:, None]
    # Left and right: does a picture with a side match its own caption better than the same caption with left and
    # right swapped (chance 0.5)? The world's other attributes cannot help here.
    sided = [i for i, a in enumerate(world) if mirror(a) is not None]
    mirrored = (image_embeds[sided] * embed([synthetic.caption(mirror(world[i])) for i in sided])).sum(dim=1)
    result = {"n_images": n_images, "seed": seed, "draw_size": draw_size,
              "left_right": round((similarity[sided, sided] > mirrored).float().mean().item(), 4)}
    for direction, scores in (("image_to_caption", similarity), ("caption_to_image", similarity.T)):
        ranked = scores.argsort(dim=1, descending=True)
        for k in (1, 5):
            result[f"{direction}_top{k}"] = round((ranked[:, :k] == truth).any(dim=1).float().mean().item(), 4)
    result.update(chance_top1=round(1 / n_images, 4), chance_top5=round(5 / n_images, 4))
    return result


def _property_probes(features: dict, train_world: list[dict], test_world: list[dict]) -> dict:
    """{property: {view: held-out R^2}}: ridge regression (penalty by leave-one-out CV) per brain-relevant property.

    One fit per view serves all the properties: ``alpha_per_target`` chooses each property's penalty by its own
    leave-one-out error, as a fit of its own would, from one decomposition of the features.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    targets = {split: pictures.image_features(world) for split, world in (("train", train_world), ("test", test_world))}
    names = list(targets["train"])
    train_y, test_y = (np.stack([targets[split][name] for name in names], axis=1) for split in ("train", "test"))
    result = {name: {} for name in names}
    for view in PROBE_VIEWS:
        probe = make_pipeline(StandardScaler(), RidgeCV(alphas=PROBE_ALPHAS, alpha_per_target=True))
        probe.fit(features["train"][view], train_y)
        scores = r2_score(test_y, probe.predict(features["test"][view]), multioutput="raw_values")
        for name, score in zip(names, scores):
            result[name][view] = round(float(score), 4)
    return result


def linear_probe(folder=TINY_CLIP_DIR, n_train: int = 3000, n_test: int = 1000, seed: int = 2,
                 progress: bool = True) -> dict:
    """Held-out accuracy of one linear probe per attribute, on three views of the same image features.

    ``pooled`` (the projected class token: what concat and add see), ``mean_tokens``, and ``all_tokens`` (the
    flattened 65 x 128 = 8320-number sequence that cross-attention reads). Probe: standardised features and a ridge
    classifier whose penalty is chosen among ``PROBE_ALPHAS`` by leave-one-out cross-validation on the training
    images (so 8320 features from 3000 images stay well-posed, and the test images never tune it). Trained on
    training combinations, tested on unseen ones, every picture as the datasets store it; chance is the test set's
    most frequent value. ``properties`` holds the R^2 of a ridge regression per brain-relevant property and view.
    """
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    train_world, test_world = sample_world(rng, n_train, held_out=False), sample_world(rng, n_test, held_out=True)
    encoder, features = ImageEncoder(folder, progress=False), {}
    for split, world in (("train", train_world), ("test", test_world)):
        tokens, pooled = encoder.encode([synthetic.dataset_image(a) for a in world])  # pictures as datasets store them
        features[split] = {"pooled": pooled.numpy(), "mean_tokens": tokens.mean(dim=1).numpy(),
                           "all_tokens": tokens.flatten(1).numpy()}
    result = {"n_train": n_train, "n_test": n_test, "seed": seed, "alphas": [float(a) for a in PROBE_ALPHAS],
              "properties": _property_probes(features, train_world, test_world)}
    for attribute in tqdm(synthetic.ATTRIBUTES, desc="linear probes", disable=not progress):
        y_train, y_test = [a[attribute] for a in train_world], [a[attribute] for a in test_world]
        row = {"chance": round(max(y_test.count(v) for v in set(y_test)) / n_test, 4), "alpha": {}}
        for view in PROBE_VIEWS:
            probe = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=PROBE_ALPHAS))
            probe.fit(features["train"][view], y_train)
            row[view] = round(float(probe.score(features["test"][view], y_test)), 4)
            row["alpha"][view] = float(probe[-1].alpha_)
        result[attribute] = row
    return result
