"""Bad inputs to the data pipeline: nothing lost, nothing silent (tiny SIMULATED recordings).

Every case either works (the damage is repaired) or is one clear ValueError/OSError that names
the file and what to do; through the CLI that is one `error:` line on stderr and exit code 2.
"""

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
pytest.importorskip("mne")

from brain_gen_hf.cli import main  # noqa: E402
from brain_gen_hf.data.cleaning import CleaningConfig, clean_recording  # noqa: E402
from brain_gen_hf.data.config import BuildConfig  # noqa: E402
from brain_gen_hf.data.readers import RecordingSource, discover_recordings, safe_name  # noqa: E402
from brain_gen_hf.data.shards import DatasetBuilder, build_dataset  # noqa: E402
from brain_gen_hf.data.simulate import simulate_meg_raw  # noqa: E402
from brain_gen_hf.data.windows import load_segments, load_window_datasets  # noqa: E402
from tests.conftest import SHARED, require_shared  # noqa: E402
from tests.datasets_fixtures import PARQUET_DAMAGE, damage_parquet  # noqa: E402

# 4 s, 102 magnetometers at 100 Hz, no resampling or notch: well under a second per recording.
FAST = {
    "preprocessing": {
        "picks": "mag",
        "detect_bad_channels": False,
        "filter_phase": "zero",
        "sfreq": None,
        "h_freq": 40.0,
        "notch_freqs": [],
    },
    "cleaning": {"window_seconds": 1.0, "min_segment_seconds": 1.0, "std_threshold": 3.0},
    "splits": {"val_ratio": 0.0, "test_ratio": 0.0},
}


def _config(**overrides) -> BuildConfig:
    return BuildConfig.from_dict({**FAST, **overrides})


def _simulate(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    simulate_meg_raw(duration_seconds=4.0, sfreq=100.0, seed=seed).save(path, overwrite=True, verbose="error")
    return path


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    """a/rec_raw.fif and b/rec_raw.fif: two recordings with the same file name."""
    root = tmp_path_factory.mktemp("bad_inputs_raw")
    _simulate(root / "a" / "rec_raw.fif", seed=1)
    _simulate(root / "b" / "rec_raw.fif", seed=2)
    return root


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad_inputs_config") / "fast.yaml"
    _config().save_yaml(path)
    return path


@pytest.fixture(scope="module")
def built_once(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad_inputs_built") / "ds"
    build_dataset([str(raw_dir / "a" / "rec_raw.fif")], out, _config(), progress=False)
    return out


@pytest.fixture
def built(built_once, tmp_path):
    """A fresh copy of a one-recording dataset (unique name: datasets caches by folder name)."""
    out = tmp_path / f"ds_{uuid.uuid4().hex[:8]}"
    shutil.copytree(built_once, out)
    return out


def _cli(capsys, *args) -> tuple[int, str]:
    """Run `brain-gen-hf preprocess ...`; returns (exit code, stderr) after checking the one-line contract."""
    capsys.readouterr()  # drop what earlier steps of the test printed
    code = main(["preprocess", *map(str, args), "--no-progress"])
    err = capsys.readouterr().err.strip()
    if code == 2:
        assert len(err.splitlines()) == 1 and err.startswith("error: "), err
        assert "Traceback" not in err
    return code, err


def _rows(out: Path) -> list[dict]:
    return [row for split in load_segments(str(out)).values() for row in split]


def _manifest(out: Path) -> dict:
    return json.loads((out / ".build" / "manifest.json").read_text())


# -- 2. --overwrite never destroys what it did not write -----------------------------------------
def test_overwrite_refuses_a_folder_that_is_not_a_dataset(raw_dir, config_file, tmp_path, capsys):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    code, err = _cli(capsys, "--overwrite", tmp_path / "typo.fif", "-o", folder)
    assert code == 2 and "typo.fif" in err
    code, err = _cli(capsys, "--overwrite", raw_dir / "a" / "rec_raw.fif", "-o", folder, "--config", config_file)
    assert code == 2 and "not a brain_gen_hf dataset" in err and str(folder) in err
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_build_into_a_foreign_folder_is_refused_without_overwrite(raw_dir, config_file, tmp_path, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("my notes")
    code, err = _cli(capsys, raw_dir / "a" / "rec_raw.fif", "-o", folder, "--config", config_file)
    assert code == 2 and "not empty" in err
    assert (folder / "README.md").read_text() == "my notes" and not (folder / ".build").exists()


def test_overwrite_checks_inputs_first_and_keeps_the_old_build_when_nothing_replaces_it(
    built, tmp_path, capsys, config_file
):
    before = _rows(built)
    code, err = _cli(capsys, "--overwrite", tmp_path / "typo.fif", "-o", built, "--config", config_file)
    assert code == 2 and "typo.fif" in err
    empty = tmp_path / "empty_raw.fif"
    empty.write_bytes(b"")
    code, err = _cli(capsys, "--overwrite", empty, "-o", built, "--config", config_file)
    assert code == 2 and str(empty) in err and "empty" in err
    assert len(_rows(built)) == len(before) and _manifest(built)["recordings"]


def test_overwrite_removes_only_the_pipelines_own_files(built, raw_dir, config_file, capsys):
    (built / "keep.txt").write_text("mine")
    (built / "data" / "notes.txt").write_text("mine too")
    code, _ = _cli(capsys, "--overwrite", raw_dir / "b" / "rec_raw.fif", "-o", built, "--config", config_file)
    assert code == 0
    assert (built / "keep.txt").read_text() == "mine" and (built / "data" / "notes.txt").read_text() == "mine too"
    assert [e["source"] for e in _manifest(built)["recordings"].values()] == [str(raw_dir / "b" / "rec_raw.fif")]


# -- 3. identity: path plus content, whatever the order ------------------------------------------
def test_name_clashes_resolve_the_same_whatever_the_input_order(raw_dir):
    a, b = str(raw_dir / "a" / "rec_raw.fif"), str(raw_dir / "b" / "rec_raw.fif")
    forward = {str(s.path): s.session for s in discover_recordings([a, b], "X")}
    backward = {str(s.path): s.session for s in discover_recordings([b, a], "X")}
    assert forward == backward == {a: "rec_raw", b: "rec_raw-01"}


def test_interrupted_build_resumed_in_another_order_processes_each_recording_once(raw_dir, tmp_path):
    a, b = str(raw_dir / "a" / "rec_raw.fif"), str(raw_dir / "b" / "rec_raw.fif")
    out = tmp_path / "ds"
    builder = DatasetBuilder(out, _config(dataset_name="X"))
    builder.add_recording(discover_recordings([a, b], "X")[0])  # killed after the first recording
    report = build_dataset([b, a], out, _config(dataset_name="X"), progress=False)
    assert report.processed == [b] and report.skipped_done == [a]
    sources = sorted(e["source"] for e in _manifest(out)["recordings"].values())
    assert sources == [a, b]
    assert sorted(row["session"] for row in _rows(out)) == ["rec_raw", "rec_raw-01"]


def test_a_file_listed_twice_is_one_recording(raw_dir):
    a = raw_dir / "a" / "rec_raw.fif"
    sources = discover_recordings([str(a), str(raw_dir / "a"), str(raw_dir / "a" / "*.fif")])
    assert [s.path.resolve() for s in sources] == [a.resolve()]
    with pytest.raises(ValueError, match="listed under two dataset names"):  # its rows would be there twice
        discover_recordings([f"A={a}", f"B={a}"])


def test_a_replaced_source_is_processed_again(raw_dir, tmp_path):
    source = _simulate(tmp_path / "src" / "rec_raw.fif", seed=3)
    out = tmp_path / "ds"
    build_dataset([str(source)], out, _config(), progress=False)
    old = np.asarray(_rows(out)[0]["data"], dtype=np.float32)
    _simulate(source, seed=4)  # same name, same size, other content
    report = build_dataset([str(source)], out, _config(), progress=False)
    assert report.processed == [str(source)] and "changed since it was processed" in report.repaired[str(source)]
    rows = _rows(out)
    assert len(rows) == 1 and not np.array_equal(np.asarray(rows[0]["data"], dtype=np.float32), old)
    os.utime(source, ns=(1, 1))  # touched, same bytes: still done
    assert build_dataset([str(source)], out, _config(), progress=False).skipped_done == [str(source)]


def test_a_moved_or_renamed_source_is_not_duplicated(tmp_path):
    source = _simulate(tmp_path / "src" / "rec_raw.fif", seed=5)
    out = tmp_path / "ds"
    build_dataset([f"A={source}"], out, _config(), progress=False)
    renamed = build_dataset([f"B={source}"], out, _config(), progress=False)  # another dataset name
    assert renamed.processed == [str(source)] and "was A/rec_raw" in renamed.repaired[str(source)]
    moved = tmp_path / "moved" / "rec_raw.fif"
    moved.parent.mkdir()
    source.rename(moved)
    report = build_dataset([f"B={moved}"], out, _config(), progress=False)
    assert report.skipped_done == [str(moved)] and not report.processed
    assert [(row["dataset"], row["session"]) for row in _rows(out)] == [("B", "rec_raw")]


# -- 4. nothing written or read outside the output folder ----------------------------------------
@pytest.mark.parametrize("flag", ["--dataset-name", "NAME="])
def test_dataset_names_with_path_parts_are_refused(raw_dir, config_file, tmp_path, capsys, flag):
    out = tmp_path / "deep" / "er" / "ds"
    source = raw_dir / "a" / "rec_raw.fif"
    args = ["--dataset-name", "../../../ESC", source] if flag == "--dataset-name" else [f"../../../ESC={source}"]
    code, err = _cli(capsys, *args, "-o", out, "--config", config_file)
    assert code == 2 and "'../../../ESC'" in err and "not a plain name" in err
    assert not list(tmp_path.rglob("*ESC*")) and not out.exists()


def test_a_session_name_that_leaves_the_folder_is_refused(raw_dir, tmp_path):
    source = RecordingSource(raw_dir / "a" / "rec_raw.fif", "X", "../../../escaped", "s", "")
    with pytest.raises(ValueError, match="would write outside"):
        DatasetBuilder(tmp_path / "ds", _config()).add_recording(source)
    assert not list(tmp_path.rglob("escaped*"))
    assert safe_name("../a/b\\c") == "__a_b_c" and safe_name("..") == "_" and safe_name(".") == "recording"


def test_a_manifest_entry_pointing_outside_is_refused(built, raw_dir, config_file, tmp_path, capsys):
    outside = tmp_path / "outside.parquet"
    shutil.copy(next((built / ".build" / "recordings").rglob("*.parquet")), outside)
    manifest = _manifest(built)
    for entry in manifest["recordings"].values():
        entry["file"] = os.path.relpath(outside, built)
    (built / ".build" / "manifest.json").write_text(json.dumps(manifest))
    code, err = _cli(capsys, raw_dir / "a" / "rec_raw.fif", "-o", built, "--config", config_file)
    assert code == 2 and "manifest.json" in err and "points outside" in err


# -- 5. damage is repaired or named --------------------------------------------------------------
@pytest.mark.parametrize("damage", ["lost", "truncated", "zeroed"])
def test_a_damaged_recording_file_is_processed_again(built, raw_dir, damage):
    recording = next((built / ".build" / "recordings").rglob("*.parquet"))
    if damage == "lost":
        recording.unlink()
    else:
        size = recording.stat().st_size
        recording.write_bytes(recording.read_bytes()[: size // 2] if damage == "truncated" else bytes(size))
    source = str(raw_dir / "a" / "rec_raw.fif")
    report = build_dataset([source], built, _config(), progress=False)
    assert report.processed == [source] and str(recording) in report.repaired[source]
    assert len(_rows(built)) == 1


def test_a_lost_recording_file_is_rebuilt_from_its_source_even_when_not_listed(built, raw_dir):
    next((built / ".build" / "recordings").rglob("*.parquet")).unlink()
    other = str(raw_dir / "b" / "rec_raw.fif")
    report = build_dataset([f"other={other}"], built, _config(), progress=False)
    assert sorted(report.processed) == sorted([other, str(raw_dir / "a" / "rec_raw.fif")])
    assert len(_rows(built)) == 2


@pytest.mark.parametrize("damage", PARQUET_DAMAGE)
@pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])
def test_a_damaged_shard_is_named(built, damage, streaming):
    shard = next((built / "data").glob("*.parquet"))
    damage_parquet(shard, damage)
    with pytest.raises(ValueError, match="damaged Parquet shard") as info:
        windows = load_window_datasets(str(built), 1.0, 0.0, streaming=streaming)["train"]
        list(windows) if streaming else windows[0]
    assert str(shard) in str(info.value) and "brain-gen-hf preprocess" in str(info.value)


def test_unreadable_recordings_are_one_line_errors(tmp_path, config_file, capsys):
    empty = tmp_path / "empty_raw.fif"
    empty.write_bytes(b"")
    text = tmp_path / "notes_raw.fif"
    text.write_text("not a recording\n" * 20)
    for path, problem in ((empty, "empty (0 bytes)"), (text, "could not read")):
        code, err = _cli(capsys, path, "-o", tmp_path / f"out_{path.stem}", "--config", config_file)
        assert code == 2 and str(path) in err and problem in err


def test_an_output_that_is_a_file_is_refused(raw_dir, config_file, tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("keep me")
    for extra in ([], ["--overwrite"]):
        code, err = _cli(capsys, raw_dir / "a" / "rec_raw.fif", "-o", target, "--config", config_file, *extra)
        assert code == 2 and str(target) in err and "is an existing file" in err
    assert target.read_text() == "keep me"


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "not JSON"),
        ('{"version": 2, "fingerprint": "FP", "recordings": [1, 2]}', "'recordings' mapping"),
        ('{"version": 2, "fingerprint": "FP", "recordings": {"a/x": {"file": 3}}}', "lacks a valid 'file'"),
    ],
    ids=["not-json", "recordings-list", "entry-without-file"],
)
def test_an_invalid_manifest_is_a_one_line_error(built, raw_dir, config_file, capsys, content, problem):
    manifest = built / ".build" / "manifest.json"
    manifest.write_text(content.replace("FP", _config().content_fingerprint()))
    code, err = _cli(capsys, raw_dir / "a" / "rec_raw.fif", "-o", built, "--config", config_file)
    assert code == 2 and str(manifest) in err and problem in err and "--overwrite" in err


@pytest.mark.parametrize(
    "content, problem",
    [
        ("cleaning: {window_seconds: [1\n", "not valid YAML"),
        ("- cleaning\n", "a build config is a mapping"),
        ("cleaning: {window_seconds: five}\n", "cleaning.window_seconds must be a number, got 'five'"),
        ("cleaning: 5\n", "section 'cleaning' must be a mapping"),
    ],
    ids=["yaml-syntax", "yaml-list", "wrong-type", "section-scalar"],
)
def test_an_invalid_build_config_is_a_one_line_error(raw_dir, tmp_path, capsys, content, problem):
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    code, err = _cli(capsys, raw_dir / "a" / "rec_raw.fif", "-o", tmp_path / "ds", "--config", config)
    assert code == 2 and str(config) in err and problem in err
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("damage", ["lost", "stale"])
def test_a_lost_or_stale_shard_is_named_not_silently_skipped(built, damage):
    data = built / "data"
    shard = next(data.glob("*.parquet"))
    if damage == "lost":  # one of two shards gone: half the rows would vanish
        shard.rename(data / "train-00001-of-00002.parquet")
    else:  # a shard of an earlier build left beside the new one: rows twice
        shutil.copy(shard, data / "train-00000-of-00002.parquet")
    with pytest.raises(ValueError, match="incomplete or mixed") as info:
        load_window_datasets(str(built), 1.0, 0.0)
    assert str(data) in str(info.value) and "brain-gen-hf preprocess" in str(info.value)


def test_a_partly_failed_build_exits_nonzero_and_lists_the_failure(raw_dir, config_file, tmp_path, capsys):
    empty = tmp_path / "src" / "empty_raw.fif"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    code = main(
        [
            "preprocess",
            str(raw_dir / "a" / "rec_raw.fif"),
            str(empty),
            "-o",
            str(tmp_path / "ds"),
            "--config",
            str(config_file),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and f"FAILED {empty}" in out and "1 processed" in out


def test_a_truncated_edf_is_read_with_a_note_not_silently(tmp_path, capsys):
    edf = require_shared(SHARED / "data" / "real" / "eeg" / "test_reduced.edf")
    truncated = tmp_path / "cut.edf"
    truncated.write_bytes(edf.read_bytes()[: edf.stat().st_size // 3])
    config = BuildConfig.from_dict(
        {
            "preprocessing": {"missing_positions": "zeros", "bad_channel_action": "zero", "filter_phase": "zero"},
            "cleaning": {
                "window_seconds": 0.5,
                "min_segment_seconds": 0.5,
                "max_bad_pct": 100.0,
                "std_threshold": 100.0,
            },
        }
    )
    report = build_dataset([str(truncated)], tmp_path / "ds", config, progress=False)
    assert any("does not match the file size" in note for note in report.notes[str(truncated)])
    assert f"NOTE {truncated}: mne: Number of records" in report.summary()


# -- 11. a missing dataset says how to build one --------------------------------------------------
def test_a_missing_dataset_says_how_to_build_one(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # no network in tests: fail fast
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for name in ("my_dataset", str(tmp_path / "not" / "there")):
        with pytest.raises(FileNotFoundError, match="brain-gen-hf preprocess") as info:
            load_window_datasets(name, 1.0, 0.0)
        assert name in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "no_shards").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no Parquet shards"):
        load_segments(str(tmp_path / "no_shards"))


# -- 12. rejections name real keys and the fix ----------------------------------------------------
def test_cleaning_rejections_name_the_key_and_the_fix(tmp_path):
    summary = clean_recording(np.zeros((2, 100), dtype=np.float32), 100.0, CleaningConfig()).summary
    assert "cleaning.window_seconds" in summary.message and "session_cleaning" not in summary.message
    source = _simulate(tmp_path / "short_raw.fif", seed=6)
    report = DatasetBuilder(tmp_path / "ds", _config(cleaning={"window_seconds": 5.0})).build(
        [str(source)], progress=False, finalize=False
    )
    message = report.failed[str(source)]
    assert "too_short" in message and "cleaning.window_seconds" in message
    assert "--config training_scripts/configs/preprocess_short_recordings.yaml" in message
    assert (
        Path(__file__)
        .resolve()
        .parents[1]
        .joinpath("training_scripts/configs/preprocess_short_recordings.yaml")
        .is_file()
    )


def test_a_missing_dataset_fails_fast_when_online(local_hub, monkeypatch):
    """Without HF_HUB_OFFLINE: a bare name never reaches the Hub, `org/name` is asked once (no retry loop)."""
    import time

    import huggingface_hub.constants

    before = len(local_hub.server.requests)
    with pytest.raises(FileNotFoundError, match="dataset folder my_dataset does not exist") as info:
        load_segments("my_dataset")
    assert "brain-gen-hf preprocess" in str(info.value) and len(local_hub.server.requests) == before
    with pytest.raises(FileNotFoundError, match="the Hub has no dataset repo user/no-such-dataset") as info:
        load_segments("user/no-such-dataset")
    assert "brain-gen-hf preprocess" in str(info.value) and "\n" not in str(info.value)

    unreachable = "http://127.0.0.1:9"  # the discard port: nothing listens, as when there is no network
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", unreachable)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", unreachable)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="the Hub could not be reached") as info:
        load_segments("user/elsewhere")
    assert time.monotonic() - start < 10, "retried instead of failing fast"
    assert "user/elsewhere" in str(info.value) and "HF_HUB_OFFLINE=1" in str(info.value)


@pytest.mark.parametrize(
    ("section", "values", "problem"),
    [
        ("preprocessing", {"h_freq": 80.0, "sfreq": 100.0}, "above the Nyquist frequency of sfreq=100.0"),
        ("preprocessing", {"l_freq": -1.0}, "l_freq must be positive"),
        ("preprocessing", {"notch_freqs": [-50.0]}, "notch_freqs must be positive"),
        ("preprocessing", {"crop_seconds": 0.0}, "crop_seconds must be positive"),
        ("preprocessing", {"bad_channel_alpha": 2.0}, "bad_channel_alpha must lie in (0, 1)"),
        ("preprocessing", {"gradient_compensation": 7}, "gradient_compensation must be a CTF grade"),
        ("preprocessing", {"resample_method": "foo"}, "resample_method must be"),
        ("cleaning", {"min_segment_seconds": 10.0, "max_segment_seconds": 5.0}, "max_segment_seconds (5.0) is below"),
        ("cleaning", {"std_threshold": -1.0}, "std_threshold must be positive"),
        ("shards", {"compression": "foo"}, "shards.compression must be one of"),
        (None, {"example_seconds": -1.0}, "example_seconds must be positive"),
    ],
)
def test_impossible_build_settings_are_refused_before_any_recording_is_read(
    raw_dir, tmp_path, capsys, section, values, problem
):
    # Before: per-recording mne errors (l_freq, crop, resample), a misleading cleaning rejection, or a build that
    # silently ignored the setting (h_freq above Nyquist, alpha, example_seconds) while the card claimed it.
    path = tmp_path / "config.yaml"
    overrides = {section: {**FAST.get(section, {}), **values}} if section else values
    path.write_text(json.dumps({**FAST, **overrides}), encoding="utf-8")
    code, err = _cli(capsys, raw_dir / "a" / "rec_raw.fif", "--output", tmp_path / "out", "--config", path)
    assert code == 2 and problem in err and str(path) in err, err
    assert not (tmp_path / "out").exists()


def test_an_output_under_a_file_is_refused(raw_dir, config_file, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    code, err = _cli(
        capsys, raw_dir / "a" / "rec_raw.fif", "--output", tmp_path / "notes.txt" / "ds", "--config", config_file
    )
    assert code == 2 and "lies under" in err and "is a file" in err, err
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_skipped_filter_step_is_in_the_build_summary():
    from brain_gen_hf.data.shards import BuildReport

    report = BuildReport(
        "out",
        processed=["a.fif"],
        notes={"a.fif": ["notch at [150.0] Hz skipped: above Nyquist (100 Hz)", "GESD bad mag: X"]},
    )
    summary = report.summary()
    assert "NOTE a.fif: notch at [150.0] Hz skipped" in summary and "GESD" not in summary


def test_an_invalid_hub_repo_id_is_refused_before_the_build(raw_dir, config_file, tmp_path, capsys):
    code, err = _cli(
        capsys,
        raw_dir / "a" / "rec_raw.fif",
        "--output",
        tmp_path / "out",
        "--config",
        config_file,
        "--push-to-hub",
        "bad id!!",
    )
    assert code == 2 and "--push-to-hub 'bad id!!' is not a Hub repo id" in err, err
    assert not (tmp_path / "out").exists()


def test_a_failed_upload_is_one_line_and_keeps_the_build(built, raw_dir, config_file, capsys, monkeypatch):
    from huggingface_hub import HfApi

    try:
        import httpx2 as httpx  # huggingface_hub's HTTP client here; its errors are not OSErrors
    except ImportError:
        import httpx

    def offline(*args, **kwargs):
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(HfApi, "create_repo", offline)
    code, err = _cli(
        capsys, raw_dir / "a" / "rec_raw.fif", "--output", built, "--config", config_file, "--push-to-hub", "org/name"
    )
    assert code == 2 and "uploading" in err and "org/name" in err and "kept locally" in err, err
    assert (built / "README.md").is_file() and list((built / "data").glob("*.parquet"))


def test_a_negative_window_length_says_it_must_be_positive(built):
    # Was: "gives a zero-length window" for -1 s.
    with pytest.raises(ValueError, match=r"example_seconds=-1.0 gives a window of -100 samples .* positive"):
        load_window_datasets(str(built), -1.0)
