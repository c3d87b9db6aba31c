"""Code exercises: each check accepts the library's solution, rejects a plausible wrong one with a useful hint,
waits for a stub, and each notebook shows the library's solution in its collapsed Solution cell."""

import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from i2b_minimal.exercises import NOT_DONE, diagnose, nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09, nb10

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def attention_weights_without_sqrt(q, k):
    return (q @ k.transpose(-2, -1)).softmax(dim=-1)


def attention_weights_transposed(q, k):
    return (k @ q.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)


def res_block_without_skip(block, h, temb):
    silu = torch.nn.functional.silu
    x = block.conv1(silu(block.norm1(h))) + block.time_proj(silu(temb))[:, :, None]
    return block.conv2(silu(block.norm2(x)))


def add_noise_without_square_roots(x0, noise, t, alphas_cumprod):
    a_bar = alphas_cumprod[t][:, None, None]
    return a_bar * x0 + (1 - a_bar) * noise


def regression_target_with_v_of_the_wrong_sign(x0, noise, alpha_bar, prediction_type):
    return noise if prediction_type == "epsilon" else (1 - alpha_bar).sqrt() * x0 - alpha_bar.sqrt() * noise


def guided_prediction_with_w_for_s(eps_cond, eps_uncond, guidance_scale):
    return (1 + guidance_scale) * eps_cond - guidance_scale * eps_uncond


def split_half_ceiling_without_spearman_brown(half_1, half_2):
    a, b = half_1 - half_1.mean(axis=0), half_2 - half_2.mean(axis=0)
    return np.sqrt((a * b).sum(axis=0) / np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0)))


def erp_over_the_images_only(signals):
    return signals.mean(axis=0)


def cosine_similarity_without_lengths(a, b):
    return a @ b.T


def pattern_correlations_uncentred(first, second):
    return first @ second.T / np.outer(np.linalg.norm(first, axis=1), np.linalg.norm(second, axis=1))


def sample_times_in_milliseconds(tmin, sfreq, n_times):
    return 1000 * (tmin + np.arange(n_times) / sfreq)


def bad_value_count_of_nan_only(signals):
    return int(np.isnan(signals).sum())


# (notebook, module, exercise name, a plausible wrong solution, words its hint must contain)
EXERCISES = [
    ("00_welcome", nb00, "sample_times", sample_times_in_milliseconds, "1000 times the expected one"),
    ("01_data_and_simulated_brain", nb01, "erp", erp_over_the_images_only,
     "the shape is (4, 17, 100), expected (17, 100)"),
    ("02_clip_features", nb02, "cosine_similarity", cosine_similarity_without_lengths, "divide by the lengths"),
    ("03_cross_attention", nb03, "attention_weights", attention_weights_without_sqrt, "divide the scores by sqrt(d)"),
    ("03_cross_attention", nb03, "attention_weights", attention_weights_transposed, "last two axes swapped"),
    ("04_unet", nb04, "res_block", res_block_without_skip, "add the skip connection"),
    ("05_ddpm_and_ddim", nb05, "add_noise", add_noise_without_square_roots, "the weights are square roots"),
    ("06_training", nb06, "regression_target", regression_target_with_v_of_the_wrong_sign,
     "for prediction_type='v_prediction': the sign is flipped"),
    ("07_sampling_and_guidance", nb07, "guided_prediction", guided_prediction_with_w_for_s, "s = 1 + w"),
    ("08_evaluation", nb08, "split_half_ceiling", split_half_ceiling_without_spearman_brown, "with Spearman-Brown"),
    ("09_topographies", nb09, "pattern_correlations", pattern_correlations_uncentred, "centre each pattern"),
    ("10_real_data_and_prosthesis", nb10, "bad_value_count", bad_value_count_of_nan_only, "the infinite values too"),
]
EXERCISE_IDS = [f"{module.__name__.rsplit('.', 1)[1]}-{wrong.__name__}" for _, module, _, wrong, _ in EXERCISES]


def solution_body(module, name: str) -> str:
    """The lines between ### BEGIN SOLUTION and ### END SOLUTION of ``module.solution_<name>``, as indented there."""
    source = inspect.getsource(getattr(module, f"solution_{name}"))
    body = source.split("### BEGIN SOLUTION\n", 1)[1].split("### END SOLUTION", 1)[0]
    return body.rstrip(" ")


def cell_sources(notebook: str) -> list[str]:
    cells = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells]


@pytest.mark.parametrize("notebook, module, name, wrong, hint", EXERCISES, ids=EXERCISE_IDS)
def test_the_reference_solution_passes_its_check(capsys, notebook, module, name, wrong, hint):
    assert getattr(module, f"check_{name}")(getattr(module, f"solution_{name}")) is True
    assert capsys.readouterr().out.startswith("Right!")


@pytest.mark.parametrize("notebook, module, name, wrong, hint", EXERCISES, ids=EXERCISE_IDS)
def test_a_wrong_solution_is_rejected_in_one_line_with_its_hint(capsys, notebook, module, name, wrong, hint):
    assert getattr(module, f"check_{name}")(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith("Not quite. Hint:") and out.count("\n") == 1
    assert hint in out


@pytest.mark.parametrize("notebook, module, name", sorted({exercise[:3] for exercise in EXERCISES}))
def test_a_stub_is_not_done_yet_and_returns_none(capsys, notebook, module, name):
    def stub(**inputs):
        raise NotImplementedError

    stub.__name__ = name
    assert getattr(module, f"check_{name}")(stub) is None
    assert capsys.readouterr().out.strip() == NOT_DONE.format(name=name)


@pytest.mark.parametrize("notebook, module, name", sorted({exercise[:3] for exercise in EXERCISES}))
def test_the_notebook_has_the_stub_and_shows_the_library_solution(notebook, module, name):
    sources = cell_sources(notebook)
    check_call = f"{module.__name__.rsplit('.', 1)[1]}.check_{name}({name}"  # the learner's function first
    stub = next(i for i, source in enumerate(sources) if f"def {name}(" in source and check_call in source)
    assert "raise NotImplementedError" in sources[stub]
    solution = sources[stub + 1]
    assert solution.startswith("<details><summary>Solution</summary>")
    assert solution_body(module, name) in solution


def test_diagnose_names_shape_sign_scale_and_values():
    expected = torch.arange(1.0, 7.0).reshape(1, 2, 3)
    assert diagnose(expected.clone(), expected) is None
    assert "last two axes swapped" in diagnose(expected.transpose(1, 2), expected)
    assert "the shape is (2, 3), expected (1, 2, 3)" in diagnose(expected[0], expected)
    assert "sign is flipped" in diagnose(-expected, expected)
    assert "0.5 times the expected" in diagnose(expected / 2, expected)
    bumped = expected.clone()
    bumped[0, 1, 2] += 1
    assert "largest difference 1, at index (0, 1, 2)" in diagnose(bumped, expected)
    assert "NaN" in diagnose(expected * float("nan"), expected)
    assert "not str" in diagnose("a tensor", expected)
    assert diagnose(expected + 1, expected, [(expected + 1, "add nothing")]) == "add nothing"


def test_an_error_in_the_learners_function_is_a_hint_not_a_crash(capsys):
    def attention_weights(q, k):
        return q @ k  # the keys not transposed: the shapes do not fit

    assert nb03.check_attention_weights(attention_weights) is False
    assert "attention_weights raised RuntimeError" in capsys.readouterr().out


def test_nb00_default_time_axis_is_the_loaded_one(tiny_eeg_root):
    from i2b_minimal import data

    times = data.load_things_eeg2(tiny_eeg_root, subject=1, split="test").times
    assert nb00.check_sample_times(nb00.solution_sample_times, times)
    np.testing.assert_allclose(nb00.solution_sample_times(nb00.EEG_TMIN, nb00.EEG_SFREQ, len(times)), times, atol=1e-6)
