"""The local Hub server, exercised through the real huggingface_hub / transformers / datasets clients."""

import json
import os

import numpy as np
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, hf_hub_download, snapshot_download
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.lfs import UploadInfo, post_lfs_batch_info
from huggingface_hub.utils import get_session

# The LFS client passes file objects as `data=`, which httpx2 flags as deprecated: not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

BIG = 11 * 1024 * 1024  # above the 10 MB limit for regular files: must travel through git-LFS


@pytest.fixture
def folder(tmp_path):
    """A small text file plus a >10MB binary file in a subfolder."""
    (tmp_path / "notes.txt").write_text("first version\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(np.random.default_rng(0).bytes(BIG))
    return tmp_path


def _downloads(hub, path_suffix):
    return [r for r in hub.server.requests if r[0] == "GET" and r[1].endswith(path_suffix) and r[2] in (200, 206)]


def test_create_repo_and_info(local_hub, hub_repo_id):
    api = local_hub.api
    url = api.create_repo(hub_repo_id)
    assert url.repo_id == hub_repo_id and url.repo_type == "model"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(hub_repo_id)
    assert err.value.response.status_code == 409
    api.create_repo(hub_repo_id, exist_ok=True)

    info = api.repo_info(hub_repo_id)
    assert info.id == hub_repo_id and len(info.sha) == 40
    assert [s.rfilename for s in info.siblings] == [".gitattributes"]  # the Hub's initial commit
    assert api.list_repo_refs(hub_repo_id).branches[0].target_commit == info.sha

    # dataset and space repos live in their own namespaces
    api.create_repo(hub_repo_id, repo_type="dataset")
    api.create_repo(hub_repo_id, repo_type="space", space_sdk="static")
    assert api.dataset_info(hub_repo_id).id == hub_repo_id
    assert api.space_info(hub_repo_id).sdk == "static"
    api.delete_repo(hub_repo_id, repo_type="space")
    with pytest.raises(RepositoryNotFoundError):
        api.space_info(hub_repo_id)


def test_upload_folder_download_roundtrip(local_hub, hub_repo_id, folder):
    api = local_hub.api
    api.create_repo(hub_repo_id)
    first = api.upload_folder(repo_id=hub_repo_id, folder_path=folder)
    assert sorted(api.list_repo_files(hub_repo_id)) == [".gitattributes", "data/big.bin", "notes.txt"]
    assert any(r[0] == "PUT" and "/_lfs/upload/" in r[1] for r in local_hub.server.requests)

    siblings = {s.rfilename: s for s in api.model_info(hub_repo_id, files_metadata=True).siblings}
    assert siblings["data/big.bin"].lfs is not None and siblings["data/big.bin"].lfs.size == BIG
    assert siblings["notes.txt"].lfs is None and siblings["notes.txt"].size == len("first version\n")
    assert api.file_exists(hub_repo_id, "data/big.bin") and not api.file_exists(hub_repo_id, "nope.txt")
    tree = {e.path for e in api.list_repo_tree(hub_repo_id, recursive=True)}
    assert tree == {".gitattributes", "data", "data/big.bin", "notes.txt"}

    # a second commit changes the text file; the first commit stays downloadable by sha
    (folder / "notes.txt").write_text("second version\n")
    second = api.upload_folder(repo_id=hub_repo_id, folder_path=folder)
    assert second.oid != first.oid and api.repo_info(hub_repo_id).sha == second.oid

    with local_hub.fresh_cache():
        before = len(_downloads(local_hub, "data/big.bin"))
        big = hf_hub_download(hub_repo_id, "data/big.bin")
        assert len(_downloads(local_hub, "data/big.bin")) == before + 1  # really fetched, not cached
        with open(big, "rb") as f:
            assert f.read() == (folder / "data" / "big.bin").read_bytes()
        with open(hf_hub_download(hub_repo_id, "notes.txt")) as f:
            assert f.read() == "second version\n"
        with open(hf_hub_download(hub_repo_id, "notes.txt", revision=first.oid)) as f:
            assert f.read() == "first version\n"
        snapshot = snapshot_download(hub_repo_id, revision=first.oid)
        assert open(os.path.join(snapshot, "notes.txt")).read() == "first version\n"

    api.delete_folder(path_in_repo="data", repo_id=hub_repo_id)
    api.delete_file(path_in_repo="notes.txt", repo_id=hub_repo_id)
    assert api.list_repo_files(hub_repo_id) == [".gitattributes"]
    at_second = sorted(api.list_repo_files(hub_repo_id, revision=second.oid))
    assert at_second == [".gitattributes", "data/big.bin", "notes.txt"]


def test_range_requests(local_hub, hub_repo_id):
    local_hub.api.create_repo(hub_repo_id)
    local_hub.api.upload_file(path_or_fileobj=b"0123456789", path_in_repo="digits.txt", repo_id=hub_repo_id)
    url = f"{local_hub.endpoint}/{hub_repo_id}/resolve/main/digits.txt"
    r = get_session().get(url, headers={"Range": "bytes=2-5"})
    assert r.status_code == 206 and r.content == b"2345" and r.headers["Content-Range"] == "bytes 2-5/10"
    assert get_session().get(url, headers={"Range": "bytes=-3"}).content == b"789"
    assert get_session().get(url, headers={"Range": "bytes=20-"}).status_code == 416
    head = get_session().head(url)
    assert head.headers["X-Repo-Commit"] == local_hub.api.repo_info(hub_repo_id).sha
    assert head.headers["Content-Length"] == "10" and head.headers["ETag"]


def test_branches_tags_history_and_filesystem(local_hub, hub_repo_id):
    from huggingface_hub import HfFileSystem

    api = local_hub.api
    api.create_repo(hub_repo_id)
    api.upload_file(path_or_fileobj=b"main-1", path_in_repo="a.txt", repo_id=hub_repo_id)
    api.create_branch(hub_repo_id, branch="dev")
    api.create_tag(hub_repo_id, tag="v1")
    api.upload_file(path_or_fileobj=b"dev-1", path_in_repo="a.txt", repo_id=hub_repo_id, revision="dev")

    refs = api.list_repo_refs(hub_repo_id)
    assert {b.name for b in refs.branches} == {"main", "dev"}
    assert [t.target_commit for t in refs.tags] == [api.repo_info(hub_repo_id).sha]
    titles = [c.title for c in api.list_repo_commits(hub_repo_id, revision="dev")]
    assert len(titles) == 3 and titles[-1] == "initial commit"
    with local_hub.fresh_cache():
        assert open(hf_hub_download(hub_repo_id, "a.txt", revision="dev")).read() == "dev-1"
        assert open(hf_hub_download(hub_repo_id, "a.txt", revision="v1")).read() == "main-1"

    fs = HfFileSystem(endpoint=local_hub.endpoint, skip_instance_cache=True)
    assert f"{hub_repo_id}/a.txt" in fs.ls(hub_repo_id, detail=False)
    assert fs.cat(f"{hub_repo_id}@dev/a.txt") == b"dev-1"
    assert fs.info(f"{hub_repo_id}/a.txt")["size"] == len(b"main-1")

    api.delete_branch(hub_repo_id, branch="dev")
    assert [b.name for b in api.list_repo_refs(hub_repo_id).branches] == ["main"]


def test_missing_repo_revision_and_file(local_hub, hub_repo_id):
    api = local_hub.api
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info("user/does-not-exist")
    with local_hub.fresh_cache():
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download("user/does-not-exist", "config.json")
        api.create_repo(hub_repo_id)
        with pytest.raises(RemoteEntryNotFoundError) as err:
            hf_hub_download(hub_repo_id, "missing.json")
        assert isinstance(err.value, EntryNotFoundError)
        with pytest.raises(RevisionNotFoundError):
            hf_hub_download(hub_repo_id, ".gitattributes", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        api.repo_info(hub_repo_id, revision="no-such-branch")


def test_offline_reload_from_cache(local_hub, hub_repo_id, monkeypatch):
    api = local_hub.api
    api.create_repo(hub_repo_id)
    api.upload_file(path_or_fileobj=b'{"a": 1}', path_in_repo="config.json", repo_id=hub_repo_id)
    with local_hub.fresh_cache():
        online = hf_hub_download(hub_repo_id, "config.json")
        served = len(local_hub.server.requests)
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        offline = hf_hub_download(hub_repo_id, "config.json")
        assert offline == online and json.load(open(offline)) == {"a": 1}
        with pytest.raises(LocalEntryNotFoundError):
            hf_hub_download(hub_repo_id, "never-downloaded.json")
        assert len(local_hub.server.requests) == served  # nothing reached the server


def test_interrupted_commit_leaves_repo_consistent(local_hub, hub_repo_id, folder):
    api, server = local_hub.api, local_hub.server
    api.create_repo(hub_repo_id)
    api.upload_file(path_or_fileobj=b"v1", path_in_repo="notes.txt", repo_id=hub_repo_id)
    head = api.repo_info(hub_repo_id).sha

    # the connection drops after the server received the whole commit (LFS data included)
    server.fail_next("commit", mode="disconnect")
    with pytest.raises(Exception):  # noqa: B017 - the client's error type for a dropped connection varies by release
        api.upload_folder(repo_id=hub_repo_id, folder_path=folder)
    server.fail_next("commit", mode="error")
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_folder(repo_id=hub_repo_id, folder_path=folder)
    assert err.value.response.status_code == 500
    assert api.repo_info(hub_repo_id).sha == head
    assert sorted(api.list_repo_files(hub_repo_id)) == [".gitattributes", "notes.txt"]

    # a failed LFS PUT (of a not yet stored object) is retried by the client; then the commit lands in full
    (folder / "data" / "more.bin").write_bytes(np.random.default_rng(1).bytes(BIG))
    server.fail_next("lfs_upload", mode="error")
    info = api.upload_folder(repo_id=hub_repo_id, folder_path=folder)
    puts = [r[2] for r in server.requests if r[0] == "PUT" and "/_lfs/upload/" in r[1]]
    assert puts[-2:] == [500, 200]
    assert api.repo_info(hub_repo_id).sha == info.oid != head
    assert sorted(api.list_repo_files(hub_repo_id)) == [".gitattributes", "data/big.bin", "data/more.bin", "notes.txt"]
    with local_hub.fresh_cache():
        for name in ("big.bin", "more.bin"):
            with open(hf_hub_download(hub_repo_id, f"data/{name}"), "rb") as f:
                assert f.read() == (folder / "data" / name).read_bytes()


def test_commit_is_all_or_nothing(local_hub, hub_repo_id):
    api = local_hub.api
    api.create_repo(hub_repo_id)
    head = api.repo_info(hub_repo_id).sha
    ops = [
        CommitOperationAdd(path_in_repo="new.txt", path_or_fileobj=b"new"),
        CommitOperationDelete(path_in_repo="not-there.txt"),
    ]
    with pytest.raises(EntryNotFoundError):
        api.create_commit(hub_repo_id, operations=ops, commit_message="half valid")
    assert api.repo_info(hub_repo_id).sha == head and not api.file_exists(hub_repo_id, "new.txt")

    # a stale parent commit is refused (412) instead of silently overwriting
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=hub_repo_id)
    add = CommitOperationAdd(path_in_repo="y.txt", path_or_fileobj=b"y")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(hub_repo_id, operations=[add], commit_message="stale", parent_commit=head)
    assert err.value.response.status_code == 412


def test_corrupt_lfs_upload_is_rejected(local_hub, hub_repo_id):
    local_hub.api.create_repo(hub_repo_id)
    data = b"payload" * 1000
    actions, errors, _ = post_lfs_batch_info(
        upload_infos=[UploadInfo.from_bytes(data)],
        repo_id=hub_repo_id,
        repo_type="model",
        endpoint=local_hub.endpoint,
        token=None,
    )
    assert not errors
    upload = actions[0]["actions"]["upload"]["href"]
    corrupt = data[:-1] + b"!"
    assert get_session().put(upload, content=corrupt).status_code == 400
    verify = actions[0]["actions"]["verify"]["href"]
    assert get_session().post(verify, json={"oid": actions[0]["oid"], "size": len(data)}).status_code == 404

    # a commit pointing at the never-stored object is refused
    lines = [
        {"key": "header", "value": {"summary": "bad lfs", "description": ""}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": actions[0]["oid"], "size": len(data)}},
    ]
    r = get_session().post(
        f"{local_hub.endpoint}/api/models/{hub_repo_id}/commit/main",
        content=b"".join(json.dumps(line).encode() + b"\n" for line in lines),
        headers={"Authorization": "Bearer x", "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 400 and not local_hub.api.file_exists(hub_repo_id, "w.bin")

    # the intact upload is accepted, also when streamed with chunked transfer-encoding
    assert get_session().put(upload, content=iter([data[:100], data[100:]])).status_code == 200
    assert get_session().post(verify, json={"oid": actions[0]["oid"], "size": len(data)}).status_code == 200


def test_transformers_push_and_load(local_hub, hub_repo_id):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32, n_positions=16)
    model = transformers.GPT2LMHeadModel(config).eval()
    vocab = {w: i for i, w in enumerate(["[UNK]", "alpha", "beta", "gamma"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")

    model.push_to_hub(hub_repo_id)
    tokenizer.push_to_hub(hub_repo_id)
    ids = torch.tensor([[1, 2, 3, 0, 5]])
    with local_hub.fresh_cache():
        loaded = transformers.AutoModelForCausalLM.from_pretrained(hub_repo_id).eval()
        loaded_tok = transformers.AutoTokenizer.from_pretrained(hub_repo_id)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert loaded_tok("alpha gamma delta")["input_ids"] == [1, 3, 0]


def test_datasets_push_and_load(local_hub, hub_repo_id):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(1)
    features = datasets.Features({"x": datasets.List(datasets.Value("float32")), "label": datasets.Value("int64")})

    def split(n):
        return datasets.Dataset.from_dict(
            {"x": rng.standard_normal((n, 6)).astype(np.float32).tolist(), "label": list(range(n))}, features=features
        )

    dsd = datasets.DatasetDict({"train": split(7), "test": split(3)})
    dsd.push_to_hub(hub_repo_id)
    assert any(f.endswith(".parquet") for f in local_hub.api.list_repo_files(hub_repo_id, repo_type="dataset"))

    with local_hub.fresh_cache():
        loaded = datasets.load_dataset(hub_repo_id)
        streamed = datasets.load_dataset(hub_repo_id, streaming=True)
        streamed_rows = {name: list(streamed[name]) for name in ("train", "test")}
    for name in ("train", "test"):
        assert loaded[name].features == features
        assert loaded[name].to_list() == dsd[name].to_list()
        assert streamed_rows[name] == dsd[name].to_list()
        np.testing.assert_array_equal(np.asarray(loaded[name]["x"], dtype=np.float32), np.asarray(dsd[name]["x"]))
