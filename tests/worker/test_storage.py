import pytest

from worker.storage import LocalStore, ObjectMissing, S3Store, download_s3, s3_client, store_from_env


def test_local_store_round_trips_bytes(tmp_path):
    store = LocalStore(tmp_path)
    store.put("audio/ab/abc.wav", b"RIFF...")
    assert store.exists("audio/ab/abc.wav")
    assert store.get("audio/ab/abc.wav") == b"RIFF..."


def test_local_store_refuses_keys_that_escape_its_folder(tmp_path):
    with pytest.raises(ValueError, match="invalid object key"):
        LocalStore(tmp_path / "media").put("../outside.wav", b"x")


def test_local_store_names_a_missing_key(tmp_path):
    with pytest.raises(ObjectMissing, match="audio/zz/none.wav"):
        LocalStore(tmp_path).get("audio/zz/none.wav")


def test_store_from_env_uses_the_media_root(tmp_path, monkeypatch):
    monkeypatch.setenv("AURALIGN_STORAGE", "local")
    monkeypatch.setenv("AURALIGN_MEDIA_ROOT", str(tmp_path))
    store_from_env().put("audio/aa/k.wav", b"1")
    assert (tmp_path / "audio/aa/k.wav").read_bytes() == b"1"


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.mark.services
def test_s3_store_round_trips_bytes(s3_env):
    store = store_from_env()
    assert isinstance(store, S3Store)
    store.put("audio/cd/worker-test.wav", b"12345")
    assert store.exists("audio/cd/worker-test.wav")
    assert store.get("audio/cd/worker-test.wav") == b"12345"
    assert not store.exists("audio/cd/absent.wav")


@pytest.mark.services
def test_s3_prefix_downloads_once_into_a_folder(s3_env, tmp_path):
    client = s3_client()
    client.put_object(Bucket=s3_env.bucket, Key="ckpt/tiny/config.json", Body=b"{}")
    client.put_object(Bucket=s3_env.bucket, Key="ckpt/tiny/sub/weights.bin", Body=b"w")
    folder = download_s3(f"s3://{s3_env.bucket}/ckpt/tiny", tmp_path / "cache")
    assert (folder / "config.json").read_bytes() == b"{}"
    assert (folder / "sub/weights.bin").read_bytes() == b"w"
    client.delete_object(Bucket=s3_env.bucket, Key="ckpt/tiny/config.json")
    assert download_s3(f"s3://{s3_env.bucket}/ckpt/tiny", tmp_path / "cache") == folder  # cached, not refetched


@pytest.mark.services
def test_s3_single_object_downloads_as_a_file(s3_env, tmp_path):
    s3_client().put_object(Bucket=s3_env.bucket, Key="ckpt/model.gguf", Body=b"GGUF")
    path = download_s3(f"s3://{s3_env.bucket}/ckpt/model.gguf", tmp_path / "one")
    assert path.name == "model.gguf" and path.read_bytes() == b"GGUF"


@pytest.mark.services
def test_s3_prefix_with_nothing_under_it_is_missing(s3_env, tmp_path):
    with pytest.raises(ObjectMissing, match="nothing found"):
        download_s3(f"s3://{s3_env.bucket}/no/such/prefix", tmp_path / "none")
