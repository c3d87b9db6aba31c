"""Tests of viz.py, sensors.py and widgets.py on small hand-made arrays.

Sensor positions are checked against MNE's own montage files; plotted data against numpy.
"""

import ipywidgets
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mne  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from i2b_minimal import erp, sensors, viz, widgets  # noqa: E402

# THINGS-EEG2 channel order (Gifford et al. 2022), written out here rather than imported from data.py.
EEG = "Pz P3 P7 O1 Oz O2 P4 P8 P1 P5 PO7 PO3 POz PO4 PO8 P6 P2".split()
EEG_TIMES = -0.2 + np.arange(100) / 100
MEG_TIMES = -0.1 + np.arange(281) / 200


@pytest.fixture(scope="module")
def meg_names():
    """271 CTF names with a THINGS-MEG style serial suffix (MNE's canonical file uses another one)."""
    canonical = mne.channels.read_meg_canonical_info("ctf275", verbose=False)
    return [name.split("-")[0] + "-4408" for name in canonical.ch_names[:271]]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def erp_like(rng, n=6, c=17, t=100, times=EEG_TIMES):
    bump = np.exp(-(((times - 0.15) / 0.05) ** 2))
    return rng.normal(size=(c, 1)) * bump + 0.2 * rng.normal(size=(n, c, t))


# --------------------------------------------------------------------------- sensors


def test_eeg_positions_are_the_montage_positions_in_head_frame():
    info = sensors.make_info(EEG, 100.0, "eeg")
    montage = mne.channels.make_standard_montage("colin27_1020")
    to_head = mne.channels.compute_native_head_t(montage)
    positions = montage.get_positions()["ch_pos"]
    assert info.ch_names == EEG
    for ch in info["chs"]:
        expected = mne.transforms.apply_trans(to_head, positions[ch["ch_name"]])
        np.testing.assert_allclose(ch["loc"][:3], expected, atol=1e-9)
        assert ch["coord_frame"] == mne.io.constants.FIFF.FIFFV_COORD_HEAD


def test_topomap_draws_each_electrode_at_its_projected_montage_position():
    fig = viz.plot_topomap(np.arange(17.0), EEG, "eeg", names=True)
    drawn = {text.get_text(): np.array(text.get_position()) for text in fig.axes[0].texts}
    montage = mne.channels.make_standard_montage("colin27_1020")
    to_head = mne.channels.compute_native_head_t(montage)
    sphere = np.array(sensors.topomap_sphere(sensors.make_info(EEG)))
    for name in EEG:
        # Azimuthal equidistant projection about the sphere centre: angle from the vertex -> radius.
        p = mne.transforms.apply_trans(to_head, montage.get_positions()["ch_pos"][name]) - sphere[:3]
        polar, azimuth = np.arccos(p[2] / np.linalg.norm(p)), np.arctan2(p[1], p[0])
        expected = np.linalg.norm(p) * polar / (np.pi / 2) * np.array([np.cos(azimuth), np.sin(azimuth)])
        np.testing.assert_allclose(drawn[name], expected + sphere[:2], atol=1e-6)
    centre = sphere[:2]
    # Anatomy: all posterior; left to right P7 < P3 < Pz < P4 < P8; Pz nearer the vertex than POz and Oz.
    assert all(drawn[n][1] < centre[1] for n in EEG)
    assert drawn["P7"][0] < drawn["P3"][0] < drawn["Pz"][0] < drawn["P4"][0] < drawn["P8"][0]
    radius = {n: np.linalg.norm(drawn[n] - centre) for n in ("Pz", "POz", "Oz")}
    assert radius["Pz"] < radius["POz"] < radius["Oz"] < sphere[3]


def test_meg_info_has_271_ctf_magnetometers_at_canonical_positions(meg_names):
    info = sensors.make_info(meg_names, 200.0)  # ch_type inferred from the names
    canonical = mne.channels.read_meg_canonical_info("ctf275", verbose=False)
    by_base = {ch["ch_name"].split("-")[0]: ch for ch in canonical["chs"]}
    assert info.ch_names == meg_names and info["sfreq"] == 200.0
    assert set(info.get_channel_types()) == {"mag"} and len(info.ch_names) == 271
    for ch in info["chs"]:
        source = by_base[ch["ch_name"].split("-")[0]]
        np.testing.assert_array_equal(ch["loc"], source["loc"])
        assert ch["coil_type"] == source["coil_type"]


@pytest.mark.parametrize("names, ch_type, bad", [(EEG[:3] + ["XYZ1", "Cz9"], "eeg", "XYZ1"),
                                                 (["MLC11-4408", "MQQ99-4408"], "mag", "MQQ99-4408")])
def test_unknown_channel_names_are_named_in_the_error(names, ch_type, bad):
    with pytest.raises(ValueError, match=bad):
        sensors.make_info(names, 100.0, ch_type)


def test_bad_ch_type_is_rejected():
    with pytest.raises(ValueError, match="ch_type"):
        sensors.make_info(EEG, 100.0, "grad")


def test_to_evoked_round_trips_data_times_and_info():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(17, 100))
    evoked = sensors.to_evoked(x, EEG, EEG_TIMES)
    assert isinstance(evoked, mne.EvokedArray)
    np.testing.assert_allclose(evoked.data / sensors.signal_scale(x, "eeg"), x)
    np.testing.assert_allclose(evoked.data, x * 1e-6)  # the documented EEG scale
    np.testing.assert_allclose(evoked.times, EEG_TIMES, atol=1e-9)
    assert evoked.info["sfreq"] == pytest.approx(100.0) and evoked.ch_names == EEG
    reference = sensors.make_info(EEG)
    for ours, theirs in zip(evoked.info["chs"], reference["chs"]):
        np.testing.assert_array_equal(ours["loc"], theirs["loc"])
    same = sensors.to_evoked(torch.tensor(x, dtype=torch.float64), EEG, sfreq=100.0, tmin=-0.2, scale=2.0)
    np.testing.assert_allclose(same.data, 2 * x)
    np.testing.assert_allclose(same.times, EEG_TIMES, atol=1e-9)


def test_to_epochs_round_trips_meg_with_metadata(meg_names):
    rng = np.random.default_rng(1)
    tesla = rng.normal(size=(3, 271, 281)) * 1e-13
    metadata = __import__("pandas").DataFrame({"concept": ["a", "b", "c"]})
    epochs = sensors.to_epochs(tesla, meg_names, MEG_TIMES, metadata=metadata)
    assert isinstance(epochs, mne.EpochsArray) and len(epochs) == 3
    np.testing.assert_allclose(epochs.get_data(), tesla)  # tesla passes through unscaled
    np.testing.assert_allclose(epochs.times, MEG_TIMES, atol=1e-9)
    assert list(epochs.metadata["concept"]) == ["a", "b", "c"]
    femto = sensors.to_epochs(tesla * 1e15, meg_names, MEG_TIMES)  # fT are recognised and converted
    np.testing.assert_allclose(femto.get_data(), tesla)


def test_export_rejects_bad_shapes_and_times():
    x = np.zeros((17, 100))
    with pytest.raises(ValueError, match="99 values"):
        sensors.to_evoked(x, EEG, EEG_TIMES[:99])
    with pytest.raises(ValueError, match="evenly"):
        sensors.to_evoked(x, EEG, np.r_[EEG_TIMES[:50], EEG_TIMES[50:] + 0.003])
    with pytest.raises(ValueError, match="n_epochs"):
        sensors.to_epochs(x, EEG, EEG_TIMES)
    with pytest.raises(ValueError, match="sfreq"):
        sensors.to_evoked(x, EEG)


# --------------------------------------------------------------------------- figures


def _topomap_images(fig):
    return [im for ax in fig.axes for im in ax.get_images()]


def test_topomap_figures_share_one_symmetric_colour_scale():
    rng = np.random.default_rng(2)
    real, generated = erp_like(rng), 3 * erp_like(rng)
    fig = viz.compare_topomaps(real, generated, EEG_TIMES, EEG, latencies=(0.1, 0.15, 0.2))
    assert isinstance(fig, plt.Figure)
    images = _topomap_images(fig)
    assert len(images) == 6
    vmax = max(np.abs(g.mean(0)[:, np.argmin(np.abs(EEG_TIMES - t))]).max()
               for g in (real, generated) for t in (0.1, 0.15, 0.2))
    assert all(im.get_clim() == pytest.approx((-vmax, vmax)) for im in images)
    assert len(_topomap_images(viz.plot_topomaps(real, EEG_TIMES, EEG, latencies=(0.1, 0.2)))) == 2


def test_plot_topomap_accepts_torch_and_an_axes():
    fig, ax = plt.subplots()
    assert viz.plot_topomap(torch.randn(17, dtype=torch.bfloat16), EEG, ax=ax, colorbar=False) is fig
    with pytest.raises(ValueError, match="16 entries"):
        viz.plot_topomap(np.zeros(16), EEG)
    with pytest.raises(ValueError, match="ch_names"):
        viz.plot_topomap(np.zeros(17))


def test_latency_outside_epoch_is_an_error():
    with pytest.raises(ValueError, match="outside the epoch"):
        viz.plot_topomaps(np.zeros((17, 100)), EEG_TIMES, EEG, latencies=(1.5,))


def test_subject_grid_eeg_real_and_generated():
    rng = np.random.default_rng(3)
    real = {s: erp_like(rng) for s in range(1, 11)}
    generated = {s: erp_like(rng) for s in range(1, 11)}
    fig = viz.plot_subject_grid(real, EEG_TIMES, EEG, latency=[0.1, 0.17], generated=generated)
    images = _topomap_images(fig)
    assert len(images) == 10 * 2 * 2
    assert len({im.get_clim() for im in images}) == 1
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles[:10] == [f"sub-{s:02d}" for s in range(1, 11)]
    with pytest.raises(ValueError, match="generated has subjects"):
        viz.plot_subject_grid(real, EEG_TIMES, EEG, generated={1: real[1]})


def test_subject_grid_meg(meg_names):
    rng = np.random.default_rng(4)
    per_subject = {s: rng.normal(size=(271, 281)) * 1e-13 for s in range(1, 5)}
    fig = viz.plot_subject_grid(per_subject, MEG_TIMES, meg_names, latency=0.1, ch_type="mag")
    assert isinstance(fig, plt.Figure) and len(_topomap_images(fig)) == 4


def test_erp_lines_are_the_roi_mean_and_components_are_marked():
    rng = np.random.default_rng(5)
    real, generated = erp_like(rng), erp_like(rng)
    fig = viz.plot_erp(real, generated, EEG_TIMES, EEG, channels=["O1", "Oz", "O2"])
    ax = fig.axes[0]
    roi = [EEG.index(c) for c in ("O1", "Oz", "O2")]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), real[:, roi].mean(axis=(0, 1)))
    np.testing.assert_allclose(ax.lines[1].get_ydata(), generated[:, roi].mean(axis=(0, 1)))
    assert {t.get_text() for t in ax.texts} == set(erp.ERP_WINDOWS)
    with pytest.raises(ValueError, match="Cz"):
        viz.plot_erp(real, None, EEG_TIMES, EEG, channels=["Cz"])


def test_butterfly_draws_every_channel_and_the_gfp():
    rng = np.random.default_rng(6)
    real = erp_like(rng)
    fig = viz.plot_butterfly(real, erp_like(rng), EEG_TIMES)
    assert len(fig.axes) == 2
    lines = fig.axes[0].lines
    assert len(lines) == 17 + 1
    np.testing.assert_allclose(lines[-1].get_ydata(), real.mean(0).std(axis=0))
    assert len(viz.plot_butterfly(real, None, EEG_TIMES).axes) == 1


def test_trajectory_panels_show_the_chosen_steps_and_channel():
    rng = np.random.default_rng(7)
    trajectory = [torch.tensor(rng.normal(size=(2, 17, 100))) for _ in range(11)]
    fig = viz.plot_trajectory(trajectory, EEG_TIMES, "Oz", ch_names=EEG, steps_to_show=[0, 5, -1], sample_index=1)
    panels = [ax for ax in fig.axes if ax.lines]
    assert [ax.get_title() for ax in panels] == ["step 0 / 10", "step 5 / 10", "step 10 / 10"]
    for ax, step in zip(panels, (0, 5, 10)):
        np.testing.assert_allclose(ax.lines[0].get_ydata(), trajectory[step][1, EEG.index("Oz")].numpy())
    heat = [ax for ax in fig.axes if ax.get_images()][0].get_images()[0]
    assert heat.get_array().shape == (11, 100)


def test_attention_heatmap_averages_heads_and_maps_patches():
    rng = np.random.default_rng(8)
    weights = rng.dirichlet(np.ones(1 + 16), size=(4, 25))  # 4 heads, 25 queries, CLS + 4x4 patches
    image = Image.fromarray(rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8))
    fig = viz.plot_attention(torch.tensor(weights), image, times=EEG_TIMES, time_points=[0.0, 0.3])
    heat = fig.axes[0].get_images()[0]
    np.testing.assert_allclose(heat.get_array(), weights.mean(axis=0).T)
    maps = [ax for ax in fig.axes[1:] if len(ax.get_images()) == 2]  # image + overlay
    assert len(maps) == 2
    query = int(np.argmin(np.abs(np.linspace(-0.2, 0.79, 25) - 0.3)))
    np.testing.assert_allclose(maps[1].get_images()[1].get_array(), weights.mean(0)[query, 1:].reshape(4, 4))
    with pytest.raises(ValueError, match="patch_grid"):
        viz.plot_attention(weights, patch_grid=(3, 4))
    with pytest.raises(ValueError, match="T_q, L"):
        viz.plot_attention(np.zeros((2, 3, 4, 5)))


# --------------------------------------------------------------------------- widgets


def test_sliders_offer_the_given_values():
    slider = widgets.time_slider(EEG_TIMES, value=0.171)
    assert isinstance(slider, ipywidgets.SelectionSlider)
    assert slider.value == pytest.approx(0.17) and slider.label == "170 ms"
    assert widgets.guidance_slider(value=3.0).value == 3.0
    assert widgets.guidance_slider(value=0.0).label == "0.0"  # the first option keeps its label
    assert widgets.steps_slider((10, 50), value=10).options == (10, 50)
    assert widgets.subject_slider(range(1, 5)).label == "sub-01"
    assert isinstance(widgets.conditioning_buttons(), ipywidgets.ToggleButtons)
    with pytest.raises(ValueError, match="precomputed"):
        widgets.guidance_slider((1.0, 3.0), value=2.0)
    with pytest.raises(ValueError, match="subjects"):
        widgets.subject_slider([1, 2], value=7)


def test_interactive_figure_redraws_with_the_control_values():
    calls = []

    def draw(t, mode):
        calls.append((t, mode))
        return viz.plot_topomap(np.zeros(17) + t, EEG, colorbar=False, title=mode)

    t, mode = widgets.time_slider(EEG_TIMES, 0.1), widgets.conditioning_buttons()
    box = widgets.interactive_figure(draw, t=t, mode=mode)
    assert isinstance(box, ipywidgets.VBox) and isinstance(box.children[1], ipywidgets.Output)
    assert calls == [(pytest.approx(0.1), "cross_attention")]
    mode.value = "concat"
    assert calls[-1] == (pytest.approx(0.1), "concat")
    assert plt.get_fignums() == []  # each drawn figure was closed after display
    with pytest.raises(ValueError, match="not ipywidgets"):
        widgets.interactive_figure(draw, t=0.1)


def test_precomputed_grid_has_one_axes_per_setting():
    settings = [{"scale": s} for s in (0.0, 1.0, 2.0, 0.1 + 0.2, 5.0)]
    fig = widgets.precomputed_grid(lambda ax, scale: ax.plot(EEG_TIMES, scale * EEG_TIMES), settings, ncols=3)
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 5
    assert [ax.get_title() for ax in fig.axes] == ["scale=0", "scale=1", "scale=2", "scale=0.3", "scale=5"]
    with pytest.raises(ValueError, match="empty"):
        widgets.precomputed_grid(lambda ax: None, [])
