"""Maxwell filtering with a site calibration file (spec 1.4) and BIDS input through mne-bids, on real FIFs."""

import numpy as np
import pytest

from tests.conftest import SHARED, require_shared

mne = pytest.importorskip("mne")

from brain_gen_hf.data.config import BuildConfig  # noqa: E402
from brain_gen_hf.data.preprocessing import PreprocessingConfig, apply_maxwell_filter  # noqa: E402
from brain_gen_hf.data.readers import discover_recordings, read_recording  # noqa: E402

REAL = SHARED / "data" / "real" / "neuromag"


def _raw():
    raw = mne.io.read_raw_fif(require_shared(REAL / "141027_cropped_90Hz_raw.fif"), preload=True, verbose="error")
    return raw.crop(tmax=2.0)


def _identity_calibration(info, path):
    """A fine-calibration file that changes no gain: magnetometer factor 1, gradiometer imbalance 0."""
    meg = mne.pick_types(info, meg=True, exclude=[])
    calibration = {
        "ch_names": [info["ch_names"][i] for i in meg],
        "locs": np.array([info["chs"][i]["loc"] for i in meg]),
        "imb_cals": [np.array([1.0 if info["chs"][i]["unit"] == 112 else 0.0]) for i in meg],
    }
    mne.preprocessing.write_fine_calibration(path, calibration)
    return path


def test_maxwell_with_and_without_calibration(tmp_path):
    plain = apply_maxwell_filter(_raw(), 10.0)
    cal_file = _identity_calibration(plain.info, tmp_path / "sss_cal.dat")
    calibrated = apply_maxwell_filter(_raw(), 10.0, calibration=str(cal_file))
    for raw in (plain, calibrated):
        data = raw.get_data(picks="meg")
        assert np.isfinite(data).all() and data.std() > 0
    assert not plain.info["proc_history"][0]["max_info"]["sss_cal"]  # mne's defaults: no fine calibration
    assert calibrated.info["proc_history"][0]["max_info"]["sss_cal"]  # the file was applied
    # an identity calibration keeps the signal close to the uncalibrated filter
    difference = np.abs(calibrated.get_data(picks="mag") - plain.get_data(picks="mag")).max()
    assert difference < 0.5 * np.abs(plain.get_data(picks="mag")).max()


def test_missing_maxwell_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"maxwell_calibration .*sss_cal.dat does not exist"):
        PreprocessingConfig(maxwell=True, maxwell_calibration=str(tmp_path / "sss_cal.dat"))
    with pytest.raises(FileNotFoundError, match="maxwell_cross_talk"):
        BuildConfig.from_dict({"preprocessing": {"maxwell_cross_talk": str(tmp_path / "ct_sparse.fif")}})


def test_bids_root_in_entities_out(tmp_path):
    mne_bids = pytest.importorskip("mne_bids")
    raw = mne.io.read_raw_fif(require_shared(REAL / "sample_audvis_trunc_raw_sss.fif"), verbose="error")
    root = tmp_path / "bids"
    for subject, session, run in (("01", "a", "1"), ("02", "b", "2")):
        path = mne_bids.BIDSPath(subject=subject, session=session, task="rest", run=run, root=root, datatype="meg")
        mne_bids.write_raw_bids(raw, path, overwrite=True, verbose="error")
    (root / "derivatives" / "sub-99" / "meg").mkdir(parents=True)  # not a recording of the raw dataset
    sources = sorted(discover_recordings([str(root)], "bids_ds", layout="bids"), key=lambda s: s.session)
    assert [s.session for s in sources] == ["sub-01_ses-a_task-rest_run-1", "sub-02_ses-b_task-rest_run-2"]
    assert [s.subject for s in sources] == ["sub-01", "sub-02"] and {s.task for s in sources} == {"rest"}
    back = read_recording(sources[0].path)
    assert back.ch_names == raw.ch_names and back.n_times == raw.n_times
