"""Dataset-specific discovery rules (spec 1.3, 7.4) on synthetic folder trees of empty recordings."""

import pytest

from brain_gen_hf.data.config import BuildConfig
from brain_gen_hf.data.readers import discover_recordings


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def _sessions(root, layout):
    return {s.session: s for s in discover_recordings([str(root)], "ds", layout=layout)}


def test_omega_keeps_rest_recordings_and_names_them_by_subject_session_task(tmp_path):
    for name in ("sub-0001_ses-01_task-rest_run-01_meg.ds", "sub-0001_ses-01_task-restafter_meg.ds"):
        (tmp_path / "sub-0001" / "ses-01" / "meg" / name).mkdir(parents=True)
    (tmp_path / "sub-0001" / "ses-01" / "meg" / "sub-0001_ses-01_task-noise_meg.ds").mkdir()
    (tmp_path / "sub-0001" / "ses-01" / "meg" / "sub-0001_ses-01_task-other_meg.ds").mkdir()
    (tmp_path / "sub-0001" / "ses-01" / "meg" / "sub-0001_ses-01_task-rest_run-02_meg.ds").mkdir()
    sessions = _sessions(tmp_path, "omega")
    assert sorted(sessions) == ["sub-0001_ses-01_rest", "sub-0001_ses-01_rest-01", "sub-0001_ses-01_restaftertask"]
    assert {s.task for s in sessions.values()} == {"rest", "restaftertask"}
    assert {s.subject for s in sessions.values()} == {"sub-0001"}


def test_mous_takes_the_task_from_the_entry_name(tmp_path):
    for name in ("sub-A2002_task-auditory_meg.ds", "sub-A2002_task-rest_meg.ds"):
        (tmp_path / "sub-A2002" / "meg" / name).mkdir(parents=True)
    (tmp_path / "README").write_text("not a subject")
    sessions = _sessions(tmp_path, "mous")
    assert sorted(sessions) == ["sub-A2002_ses-auditory_meg", "sub-A2002_ses-rest_meg"]
    assert sessions["sub-A2002_ses-auditory_meg"].task == "auditory"


def test_camcan_finds_both_cohorts_and_skips_cross_talk(tmp_path):
    _touch(tmp_path / "cc700" / "meg" / "sub-CC7001" / "ses-001" / "meg" / "sub-CC7001_task-rest_run-01_meg.fif")
    _touch(tmp_path / "cc280" / "rest" / "sub-CC2801" / "meg" / "sub-CC2801_task-rest_meg.fif")
    _touch(tmp_path / "cc280" / "rest" / "sub-CC2801" / "meg" / "sub-CC2801_crosstalk_meg.fif")
    _touch(tmp_path / "cc280" / "rest" / "sub-CC2801" / "meg" / "sub-CC2801_task-rest_events.tsv")
    sessions = _sessions(tmp_path, "camcan")
    assert sorted(sessions) == ["cc280_sub-CC2801_task-rest", "cc700_sub-CC7001_ses-001_task-rest_run-01"]
    assert sessions["cc280_sub-CC2801_task-rest"].subject == "sub-CC2801"


def test_layout_errors_are_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no CamCAN subject folders"):
        discover_recordings([str(tmp_path / "empty")], layout="camcan")
    with pytest.raises(FileNotFoundError, match="no recording found .* omega layout"):
        discover_recordings([str(tmp_path / "empty")], layout="omega")
    with pytest.raises(FileNotFoundError, match="not a BIDS root"):
        discover_recordings([str(tmp_path / "empty")], layout="bids")
    with pytest.raises(ValueError, match="layout must be one of"):
        BuildConfig.from_dict({"layout": "hcp"})
    assert BuildConfig.from_dict({"layout": "mous"}).content_fingerprint() == BuildConfig().content_fingerprint()
