"""`i2b evaluate --json` prints the shape of issue 11: three readouts, two baselines, two ceilings, single trials.

Other programs read this JSON, so its keys are a contract: the keys of before
(``model``, ``model_single_sample``, ``ridge``, ``noise_ceiling``...) stay,
and nothing in it may be NaN or Infinity, which ``json`` writes but strict
readers refuse. The perfect-sampler bound (a mean of K samples is capped, the
conditional mean is not) is tested in ``tests/test_readouts.py``.
"""

import json
import math

from i2b_minimal import cli

M_KEYS = {"mse", "pcc", "corr_across_images", "identification_2way", "identification_top1"}
S_KEYS = {"dispersion_ratio_min", "dispersion_ratio_max", "covariance_distance", "psd_distance", "c2st_accuracy",
          "c2st_ci_low", "c2st_ci_high"}
READOUTS = {"conditional_mean", "mean_of_k", "single"}


def refuse_constant(name):
    raise AssertionError(f"the JSON holds {name}, which is not JSON")


def assert_evaluation_shape(text: str, true_ceiling: bool = True) -> dict:
    """Parse ``text`` strictly and check the keys and finite values of the evaluation JSON; return it."""
    result = json.loads(text, parse_constant=refuse_constant)
    assert isinstance(result["conditioning"], str)
    scores = [result["model"], result["ridge"], result["generative_baseline"], result["model_single_sample"],
              *result["readouts"].values(), *result["generative_baseline_readouts"].values()]
    assert set(result["readouts"]) == set(result["generative_baseline_readouts"]) == READOUTS
    for score in scores:
        assert M_KEYS <= set(score)
        assert all(math.isfinite(score[key]) for key in M_KEYS)
    assert result["model"] == result["readouts"]["conditional_mean"]  # the headline readout
    assert result["model_single_sample"] == result["readouts"]["single"]
    assert result["generative_baseline"] == result["generative_baseline_readouts"]["mean_of_k"]
    # The baseline's conditional mean is ridge's prediction exactly.
    assert {key: result["generative_baseline_readouts"]["conditional_mean"][key] for key in M_KEYS} == {
        key: result["ridge"][key] for key in M_KEYS}
    assert math.isfinite(result["noise_ceiling"])
    assert set(result["noise_ceiling_gifford"]) == {"lower", "upper"}
    assert result["noise_ceiling_gifford"]["lower"] <= result["noise_ceiling_gifford"]["upper"]
    assert ("true_noise_ceiling" in result) == true_ceiling
    for generator in ("model", "generative_baseline"):
        checks = result["single_trial"][generator]
        assert S_KEYS <= set(checks)
        assert all(math.isfinite(checks[key]) for key in S_KEYS)
        assert 0 <= checks["c2st_ci_low"] <= checks["c2st_accuracy"] <= checks["c2st_ci_high"] <= 1
    assert "nulls" not in result  # every number of this run is a number
    return result


def test_evaluate_json_has_every_key_and_only_finite_values(tiny_eeg_root, capsys):
    code = cli.main(["evaluate", "--checkpoint", "bundled", "--data-root", str(tiny_eeg_root), "--steps", "5",
                     "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = assert_evaluation_shape(out)
    assert result["samples_per_image"] == 4 and result["num_draws"] == 16
    assert 0 < result["true_noise_ceiling"] <= 1


def test_without_two_samples_per_image_the_single_trial_checks_say_why(tiny_eeg_root, capsys):
    code = cli.main(["evaluate", "--checkpoint", "bundled", "--data-root", str(tiny_eeg_root), "--steps", "2",
                     "--samples-per-image", "1", "--no-ridge", "--json"])
    result = json.loads(capsys.readouterr().out, parse_constant=refuse_constant)
    assert code == 0
    assert result["single_trial"]["model"] is None
    assert "at least 2 samples" in result["single_trial"]["reason"]
    assert "ridge" not in result and "generative_baseline" not in result
