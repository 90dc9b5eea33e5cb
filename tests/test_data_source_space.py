"""Source-space projection (spec 1.5.2) on a real Neuromag recording and a tiny offline template
(tests/source_template.py): parcel time courses, a simulated source found in its parcel, the scaled-
template fallback, the pipeline wiring and clear errors for missing anatomy or digitisation."""

import uuid

import numpy as np
import pytest

from tests.conftest import SHARED, require_shared
from tests.source_template import build_template, parcel_names

mne = pytest.importorskip("mne")
datasets = pytest.importorskip("datasets")

from brain_gen_hf.data.config import BuildConfig  # noqa: E402
from brain_gen_hf.data.shards import DatasetBuilder  # noqa: E402
from brain_gen_hf.data.source_space import SourceSpaceConfig, project_to_parcels  # noqa: E402

REAL = SHARED / "data" / "real" / "neuromag"
DIGITISED = "sample_audvis_trunc_raw_sss.fif"  # 3 fiducials, 78 head-shape points
UNDIGITISED = "141027_cropped_90Hz_raw.fif"


@pytest.fixture(scope="module")
def subjects_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subjects")
    build_template(folder)
    return folder


def _magnetometers(name=DIGITISED):
    raw = mne.io.read_raw_fif(require_shared(REAL / name), preload=True, verbose="error")
    return raw.pick("mag")  # 102 channels keep the inverse cheap; the projection uses whatever MEG is there


def _config(subjects_dir, **overrides):
    return SourceSpaceConfig(enabled=True, subjects_dir=str(subjects_dir), **overrides)


def test_simulated_source_is_strongest_in_its_parcel(subjects_dir):
    raw = _magnetometers()
    coreg = mne.coreg.Coregistration(raw.info, "fsaverage", subjects_dir=subjects_dir)
    coreg.fit_fiducials(verbose="error")
    src = mne.read_source_spaces(subjects_dir / "fsaverage" / "bem" / "fsaverage-ico-5-src.fif", verbose="error")
    surfaces = mne.read_bem_surfaces(subjects_dir / "fsaverage" / "bem" / "fsaverage-inner_skull-bem.fif")
    bem = mne.make_bem_solution(surfaces, verbose="error")
    forward = mne.make_forward_solution(raw.info, coreg.trans, src, bem, meg=True, eeg=False, verbose="error")
    forward = mne.convert_forward_solution(forward, surf_ori=True, force_fixed=True, verbose="error")
    target = "parietal-rh"
    label = mne.read_label(subjects_dir / "fsaverage" / "label" / "rh.aparc.parietal.label", subject="fsaverage")
    used = forward["src"][1]["vertno"]
    columns = len(forward["src"][0]["vertno"]) + np.flatnonzero(np.isin(used, label.vertices))
    times = raw.times
    amplitude = 20e-9 * np.sin(2 * np.pi * 11.0 * times)  # 20 nAm at 11 Hz on every vertex of the parcel
    signal = forward["sol"]["data"][:, columns].sum(axis=1, keepdims=True) * amplitude
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=0.05 * signal.std(), size=signal.shape)
    simulated = mne.io.RawArray(signal + noise, raw.info, verbose="error")

    parcels = project_to_parcels(simulated, _config(subjects_dir))
    assert parcels.channels.names == parcel_names() and parcels.data.shape == (8, raw.n_times)
    assert np.isfinite(parcels.data).all()
    power = parcels.data.std(axis=1)
    order = np.argsort(power)[::-1]
    assert parcels.channels.names[order[0]] == target, dict(zip(parcels.channels.names, power.round(2)))
    assert power[order[0]] > 1.5 * power[order[1]]


def test_projection_of_a_real_recording(subjects_dir):
    raw = _magnetometers()
    parcels = project_to_parcels(raw, _config(subjects_dir, sfreq=100.0))
    channels = parcels.channels
    assert channels.names == parcel_names() and set(channels.types) == {"parcel"}
    assert parcels.sfreq == 100.0 and parcels.data.shape[0] == 8
    assert abs(parcels.data.shape[1] - round(raw.n_times * 100.0 / raw.info["sfreq"])) <= 1
    assert np.isfinite(parcels.data).all() and parcels.data.std(axis=1).min() > 0
    np.testing.assert_allclose(parcels.data.mean(axis=1), 0.0, atol=0.5 * parcels.data.std())  # detrended
    # the 2-D layout spans [0, 1] on both axes and separates the hemispheres
    assert channels.pos_2d.min() == 0.0 and channels.pos_2d.max() == 1.0
    left = np.array([n.endswith("-lh") for n in channels.names])
    assert channels.pos_3d[left, 0].max() < 0 < channels.pos_3d[~left, 0].min()  # template x: left is negative
    assert any("coregistered to fsaverage" in note for note in parcels.notes)


def test_poor_fit_uses_a_scaled_template(subjects_dir):
    raw = _magnetometers()
    nasion, lpa, rpa, shape = (np.array(p) for p in _digitisation(raw.info))
    montage = mne.channels.make_dig_montage(
        nasion=1.35 * nasion, lpa=1.35 * lpa, rpa=1.35 * rpa, hsp=1.35 * shape, coord_frame="head"
    )
    raw.set_montage(montage, verbose="error")  # a head 35% larger than fsaverage: most points off
    with pytest.raises(ValueError, match="coregistration to the template fsaverage is poor"):
        project_to_parcels(raw.copy(), _config(subjects_dir, scaled_template_fallback=False))
    parcels = project_to_parcels(raw, _config(subjects_dir))
    scaled = [p.name for p in subjects_dir.iterdir() if p.name.startswith("fsaverage_scale_")]
    assert len(scaled) == 1 and 1.15 <= float(scaled[0].rsplit("_", 1)[1]) <= 1.35, scaled
    assert any(f"coregistered to {scaled[0]}" in note for note in parcels.notes), parcels.notes
    assert parcels.channels.names == parcel_names() and np.isfinite(parcels.data).all()


def _digitisation(info):
    from mne.io.constants import FIFF

    cardinal = {d["ident"]: d["r"] for d in info["dig"] if d["kind"] == FIFF.FIFFV_POINT_CARDINAL}
    shape = [d["r"] for d in info["dig"] if d["kind"] == FIFF.FIFFV_POINT_EXTRA]
    return cardinal[FIFF.FIFFV_POINT_NASION], cardinal[FIFF.FIFFV_POINT_LPA], cardinal[FIFF.FIFFV_POINT_RPA], shape


def test_build_writes_parcels_as_channels(subjects_dir, tmp_path):
    from brain_gen_hf.data.layouts import build_canonical_layout

    path = require_shared(REAL / DIGITISED)
    config = BuildConfig.from_dict(
        {
            "preprocessing": {"picks": "mag", "filter_phase": "zero", "bad_channel_action": "zero"},
            "source_space": {"enabled": True, "subjects_dir": str(subjects_dir)},
            "cleaning": {"window_seconds": 0.25, "min_segment_seconds": 0.25, "std_threshold": 5.0},
            "splits": {"val_ratio": 0.0, "test_ratio": 0.0},
        }
    )
    assert (
        config.content_fingerprint() != BuildConfig.from_dict({"preprocessing": {"picks": "mag"}}).content_fingerprint()
    )
    out = tmp_path / f"parcels_{uuid.uuid4().hex[:8]}"
    report = DatasetBuilder(out, config).build([str(path)], progress=False, finalize=False)
    assert not report.failed, report.failed
    (written,) = (out / ".build" / "recordings").rglob("*.parquet")
    ds = datasets.Dataset.from_parquet(str(written))
    row = ds[0]
    assert row["ch_names"] == parcel_names() and set(row["ch_types"]) == {"parcel"} and row["n_channels"] == 8
    assert row["sfreq"] == 100.0 and row["bad_channels"] == []
    assert np.asarray(row["data"], dtype=np.float32).shape == (8, row["n_samples"])
    layout = build_canonical_layout(ds)
    assert layout.names == parcel_names() and layout.pos_2d.shape == (8, 2)


def test_missing_anatomy_and_digitisation_are_clear_errors(subjects_dir, tmp_path):
    raw = _magnetometers()
    with pytest.raises(FileNotFoundError, match=r"template folder .*nowhere.*fetch_template"):
        project_to_parcels(raw.copy(), _config(tmp_path / "nowhere"))
    partial = tmp_path / "partial"
    root = build_template(partial, n_sources=20, n_bem=42)
    (root / "bem" / "fsaverage-ico-5-src.fif").unlink()
    for label in (root / "label").glob("*.label"):
        label.unlink()
    with pytest.raises(FileNotFoundError, match=r"source space .*parcellation 'aparc'"):
        project_to_parcels(raw.copy(), _config(partial))
    bare = _magnetometers(UNDIGITISED)
    with pytest.raises(ValueError, match=r"no digitisation points .* set source_space.enabled: false"):
        project_to_parcels(bare, _config(subjects_dir))
    eeg = mne.io.RawArray(np.zeros((2, 10)), mne.create_info(["a", "b"], 100.0, "eeg"), verbose="error")
    with pytest.raises(ValueError, match="needs MEG channels"):
        project_to_parcels(eeg, _config(subjects_dir))
    with pytest.raises(ValueError, match="source_space.method"):
        BuildConfig.from_dict({"source_space": {"method": "beamformer"}})


def test_unset_subjects_dir_names_the_fix(monkeypatch):
    raw = _magnetometers()
    monkeypatch.delenv("SUBJECTS_DIR", raising=False)
    monkeypatch.setattr(mne, "get_config", lambda key, *args, **kwargs: None)
    with pytest.raises(OSError, match=r"subjects_dir is not set .*fetch_template: true"):
        project_to_parcels(raw, SourceSpaceConfig(enabled=True))


def test_freesurfer_files_without_nibabel_name_the_install(tmp_path, monkeypatch):
    import importlib.util

    from brain_gen_hf.data.source_space import template_assets

    root = build_template(tmp_path, n_sources=20, n_bem=42)
    (root / "bem" / "fsaverage-ico-5-src.fif").unlink()
    for hemi in ("lh", "rh"):
        (root / "surf" / f"{hemi}.white").write_bytes(b"\xff\xff\xfe")  # a FreeSurfer surface mne reads with nibabel
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nibabel" else real_find_spec(name, *a)
    )
    with pytest.raises(ImportError, match=r"lh.white .*pip install nibabel"):
        template_assets(str(tmp_path), "fsaverage", "ico5", 4, 0.3, "aparc")
