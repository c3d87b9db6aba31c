"""One network for many subjects: the subject embedding, its data, training and scoring within and across subjects."""

import json

import numpy as np
import pytest
import torch

from i2b_minimal import data, diffusion, unet
from i2b_minimal.datasets.brain_dataset import BrainDataset, SubjectsDataset
from i2b_minimal.method import readouts
from i2b_minimal.method.subjects import SubjectEmbedding
from i2b_minimal.training import export, train
from test_train import clip_dir, make_config  # noqa: F401  (a fixture and a helper; tests/ is on sys.path)

COND_DIM = 12


def three_subject_unet(seed: int = 0) -> unet.UNet1D:
    torch.manual_seed(seed)
    model = unet.UNet1D(5, cond_dim=COND_DIM, base_channels=16, channel_mults=(1, 2), n_subjects=3).eval()
    with torch.no_grad():  # trained rows: each subject away from the zero start
        model.subjects.table.weight.normal_()
    return model


def inputs(batch: int = 4):
    generator = torch.Generator().manual_seed(1)
    return (torch.randn(batch, 5, 24, generator=generator), torch.randint(0, 1000, (batch,), generator=generator),
            torch.randn(batch, 3, COND_DIM, generator=generator))


def test_rows_start_equal_and_the_unseen_subject_reads_the_mean_row():
    torch.manual_seed(0)
    fresh = unet.UNet1D(5, cond_dim=COND_DIM, base_channels=16, channel_mults=(1, 2), n_subjects=3).eval()
    x, t, cond = inputs()
    with torch.no_grad():
        at_start = [fresh(x, t, cond, torch.full((4,), row)) for row in range(3)]
    for out in at_start[1:] + [fresh(x, t, cond, None)]:
        torch.testing.assert_close(out, at_start[0])  # zero rows: every subject is the average one

    model = three_subject_unet()
    with torch.no_grad():
        per_subject = [model(x, t, cond, torch.full((4,), row)) for row in range(3)]
        unseen = model(x, t, cond, None)
        # The same network with row 0 set to the mean of the three rows: what None must mean.
        mean_row = model.subjects.table.weight.mean(0)
        model.subjects.table.weight[0] = mean_row
        torch.testing.assert_close(unseen, model(x, t, cond, torch.zeros(4, dtype=torch.long)))
    assert (per_subject[0] - per_subject[1]).abs().max() > 1e-3  # the subject changes the output
    mixed = torch.tensor([2, 0, 1, 2])
    with torch.no_grad():
        model = three_subject_unet()
        torch.testing.assert_close(model(x, t, cond, mixed),
                                   torch.stack([per_subject[r][i] for i, r in enumerate(mixed.tolist())]))


def test_subject_arguments_are_checked():
    model, (x, t, cond) = three_subject_unet(), inputs()
    with pytest.raises(ValueError, match=r"rows must lie in 0..2, got \[3\]"):
        model(x, t, cond, torch.full((4,), 3))
    with pytest.raises(ValueError, match=r"subject of shape \(4,\)"):
        model(x, t, cond, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="int64 tensor"):
        model(x, t, cond, torch.zeros(4))
    one_subject = unet.UNet1D(5, cond_dim=COND_DIM, base_channels=16, channel_mults=(1, 2))
    with pytest.raises(ValueError, match="trained on one subject"):
        one_subject(x, t, cond, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_subjects must be 0"):
        unet.UNet1D(5, cond_dim=COND_DIM, n_subjects=1)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        SubjectEmbedding(1, 8)


def test_guidance_and_the_conditional_mean_keep_each_row_with_its_subject():
    model, (x, _, cond) = three_subject_unet(), inputs()
    subject = torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        guided = diffusion.guided_model_output(model, x, 500, cond, guidance_scale=3.0, subject=subject)
        t = torch.full((4,), 500)
        conditional = model(x, t, cond, subject)
        unconditional = model(x, t, model.null_condition(cond), subject)
    torch.testing.assert_close(guided, unconditional + 3.0 * (conditional - unconditional))  # eq. 6, per subject

    schedule = diffusion.NoiseSchedule(1000, "linear", "v_prediction")
    together = readouts.conditional_mean(model, schedule, cond, (4, 5, 24), num_draws=3, batch_size=6,
                                         subject=subject)
    # Image i draws its x_T from (seed, i): image 0 alone, with its subject, is image 0 of the batch.
    alone = readouts.conditional_mean(model, schedule, cond[:1], (1, 5, 24), num_draws=3, subject=subject[:1])
    torch.testing.assert_close(alone, together[:1])
    per_subject = [readouts.conditional_mean(model, schedule, cond, (4, 5, 24), num_draws=3,
                                             subject=torch.full((4,), row)) for row in range(3)]
    for i, row in enumerate(subject.tolist()):
        torch.testing.assert_close(together[i], per_subject[row][i])


def test_subjects_dataset_concatenates_subjects_and_resumes_their_draws(tiny_eeg_root):
    brains = [data.load_things_eeg2(tiny_eeg_root, subject=s, split="train") for s in (1, 2)]
    alone = BrainDataset(brains[0], trials="single", seed=3)
    together = SubjectsDataset([BrainDataset(b, trials="single", seed=3) for b in brains])
    n = brains[0].n_images
    assert len(together) == 2 * n
    for i in (0, 5, n - 1):  # subject 1's items are drawn exactly as subject 1 alone draws them
        condition, signal, row = together[i]
        expected_condition, expected_signal = alone[i]
        assert (condition, row) == (expected_condition, 0)
        torch.testing.assert_close(signal, expected_signal)
    condition, signal, row = together[n + 2]
    assert row == 1 and condition == str(brains[1].image_paths[2])
    reps = [signal.numpy() == brains[1].signals[2, r] for r in range(brains[1].n_repetitions)]
    assert any(match.all() for match in reps)  # one of subject 2's own trials of that image
    state = together.state_dict()
    assert state["draws"].sum() == 4 and state["draws"][n + 2] == 1
    fresh = SubjectsDataset([BrainDataset(b, trials="single", seed=3) for b in brains])
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh[n + 2][1], together[n + 2][1])  # the second draw of that item, on both
    with pytest.raises(ValueError, match="draws of 3 images"):
        fresh.load_state_dict({"draws": np.zeros(3)})


def test_a_model_of_two_subjects_trains_and_scores_within_and_across_subjects(tiny_eeg_root, clip_dir, tmp_path,
                                                                              capsys):
    from i2b_minimal.app import pipeline, report

    config = make_config(tiny_eeg_root, clip_dir, tmp_path / "run", subjects=(2, 1), steps=4)
    prepared = train.prepare_data(config, progress=False)
    brains = [data.load_things_eeg2(tiny_eeg_root, subject=s, split="train") for s in (2, 1)]
    pooled = np.concatenate([b.signals for b in brains])  # one normalisation for both subjects
    np.testing.assert_allclose(prepared.info["normalisation"]["mean"], pooled.mean(axis=(0, 1, 3)), atol=1e-5)
    np.testing.assert_allclose(prepared.info["normalisation"]["std"], pooled.std(axis=(0, 1, 3)), rtol=1e-5)
    _, _, rows = train.global_batch(prepared.dataset, 0, 1, 64)
    assert set(rows.tolist()) == {0, 1}

    result = train.train(config, progress=False)
    meta = export.read_meta(result.model_dir)
    assert meta["subjects"] == [2, 1] and export.trained_subjects(meta) == [2, 1]
    trained = pipeline.load_model(result.model_dir, progress=False)
    assert trained.network.config.n_subjects == 2 and trained.subjects == [2, 1]
    settings = dict(samples_per_image=2, num_inference_steps=3, ridge=False, num_draws=2, progress=False)
    within = pipeline.evaluate(trained, subject=1, return_signals=True, **settings)
    first = pipeline.evaluate(trained, **settings)  # the default: the model's first subject
    across = pipeline.evaluate(trained, subject=3, return_signals=True, **settings)
    assert (within[0]["subject_relation"], first["subject"], across[0]["subject_relation"]) == ("within", 2, "cross")
    assert across[0]["trained_subjects"] == [2, 1]
    assert "cross-subject: the model was trained on subjects [2, 1]" in report.markdown(across[0])
    from i2b_minimal import cli

    argv = ["evaluate", "--checkpoint", str(result.model_dir), "--subject", "1-3", "--no-ridge", "--steps", "2",
            "--samples-per-image", "2"]
    assert cli.main(argv) == 0
    table = capsys.readouterr().out
    assert "| 3 | no (cross-subject) |" in table and "| 1 | yes |" in table
    assert "| mean, within-subject (2) |" in table and "| mean, cross-subject (1) |" in table
    assert cli.main(argv + ["--json"]) == 0
    by_subject = json.loads(capsys.readouterr().out)["subjects"]
    assert {s: r["subject_relation"] for s, r in by_subject.items()} == {"1": "within", "2": "within", "3": "cross"}
    # Subject 1 is generated with its own row; subject 3 with the mean row, so the two differ.
    assert not np.allclose(within[1]["generated"], across[1]["generated"])
    mean_row = trained.network.subjects.table.weight.mean(0)
    with torch.no_grad():
        trained.network.subjects.table.weight[1] = mean_row  # subject 1's row made the average
    again = pipeline.evaluate(trained, subject=1, return_signals=True, **settings)
    np.testing.assert_allclose(again[1]["generated"], across[1]["generated"], rtol=1e-5, atol=1e-6)


def test_training_refuses_subjects_that_saw_other_images(tiny_eeg_root, clip_dir, tmp_path, monkeypatch):
    real_load = data.load

    def load(modality, root, subject=1, split="train"):
        brain = real_load(modality, root, subject=subject, split=split)
        return brain.subset(np.arange(brain.n_images - 1)) if subject == 2 else brain

    monkeypatch.setattr("i2b_minimal.datasets.loaders.load", load)
    with pytest.raises(ValueError, match=r"subjects \[2\] .* differ from subject 1 in their training images"):
        train.prepare_data(make_config(tiny_eeg_root, clip_dir, tmp_path / "run", subjects=(1, 2)), progress=False)
