"""Trainer-side access to export snapshots over HTTP: pull a snapshot to a folder (resumable,
checksummed, optionally with its audio) and load it with `datasets`.

Django-free on purpose (httpx, tqdm, pyarrow): `python -m rlhf_export pull` runs on any machine
that can reach the API. docs/export.md describes the folder it writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

CHUNK = 1024 * 1024
AUDIO_BATCH = 100  # keys per audio-URL request (the API takes up to 200)


class PullError(Exception):
    """Something the user must fix or retry; the message is one readable line."""


class AuralignClient:
    """The export API with a token. Object-storage URLs are fetched WITHOUT the token: they carry
    their own short-lived signature, and the token must never leave for another host."""

    def __init__(self, url: str, token: str, *, http: httpx.Client | None = None) -> None:
        if not url:
            raise PullError("no server URL: pass --url or set AURALIGN_URL")
        if not token:
            raise PullError("no API token: pass --token or set AURALIGN_TOKEN")
        self.base = url.rstrip("/")
        self.http = http or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True)
        self._auth = {"Authorization": f"Token {token}"}

    def api(self, path: str, params: dict | list | None = None):
        try:
            response = self.http.get(f"{self.base}/api/v1/{path}", params=params, headers=self._auth)
        except httpx.HTTPError as exc:
            raise PullError(f"cannot reach {self.base}: {exc}") from exc
        if response.status_code >= 400:
            raise PullError(f"{path}: HTTP {response.status_code}: {_detail(response)}")
        return response.json()

    def snapshots(self) -> list[dict]:
        return self.api("exports")

    def snapshot(self, snapshot_id: str) -> dict:
        return self.api(f"exports/{snapshot_id}")

    def audio_urls(self, snapshot_id: str, keys: list[str]) -> dict[str, str]:
        return self.api(f"exports/{snapshot_id}/audio", params=[("key", k) for k in keys])["urls"]


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase  # an HTML error page: not worth showing
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return json.dumps(body)[:300]


def pull(client: AuralignClient, snapshot_id: str, dest: Path, *, with_audio: bool = False, progress: bool = True) -> dict:
    """Download a succeeded snapshot into `dest` (files resumed where a previous pull stopped,
    every file checked against its sha256). manifest.json is written last: a folder with a
    manifest is complete. Returns the manifest."""
    try:
        snapshot_id = str(uuid.UUID(snapshot_id))
    except ValueError:
        raise PullError(f"'{snapshot_id}' is not a snapshot id (a uuid)") from None
    info = client.snapshot(snapshot_id)
    if info["status"] != "succeeded":
        reason = f": {info['error']}" if info.get("error") else f" ({info['progress']:.0%} done)"
        raise PullError(f"snapshot {snapshot_id} is {info['status']}{reason}; only a succeeded snapshot can be pulled")
    manifest = info["manifest"]
    dest.mkdir(parents=True, exist_ok=True)
    with tqdm(total=sum(f["bytes"] for f in manifest["files"]), unit="B", unit_scale=True, desc=f"pull {snapshot_id[:8]}",
              disable=not progress) as bar:
        for entry in manifest["files"]:
            if _complete(dest / entry["path"], entry["bytes"], entry["sha256"]):
                bar.update(entry["bytes"])
                continue
            url = client.snapshot(snapshot_id)["urls"][entry["path"]]  # fresh: URLs are short-lived
            _download(client.http, url, dest / entry["path"], size=entry["bytes"], sha256=entry["sha256"], bar=bar)
    if with_audio:
        pull_audio(client, snapshot_id, dest, manifest, progress=progress)
    (dest / "manifest.json").write_bytes(_get(client.http, client.snapshot(snapshot_id)["urls"]["manifest.json"]))
    return manifest


def _get(http: httpx.Client, url: str) -> bytes:
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        raise PullError(f"download failed: {exc}") from exc
    if response.status_code != 200:
        raise PullError(f"download failed: HTTP {response.status_code} for {url.split('?')[0]}")
    return response.content


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _complete(path: Path, size: int, sha256: str) -> bool:
    return path.exists() and path.stat().st_size == size and _sha256_of(path) == sha256


def _download(http: httpx.Client, url: str, path: Path, *, size: int, sha256: str, bar: tqdm) -> None:
    """GET `url` into `path`, resuming a `.part` file with an HTTP Range request, then verify."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        have = 0
    headers = {"Range": f"bytes={have}-"} if 0 < have < size else {}
    digest = hashlib.sha256()
    if have and headers:
        with open(part, "rb") as f:
            while block := f.read(CHUNK):
                digest.update(block)
    try:
        with http.stream("GET", url, headers=headers) as response:
            if response.status_code == 206:
                mode = "ab"
                bar.update(have)
            elif response.status_code == 200:
                mode, digest = "wb", hashlib.sha256()
            else:
                raise PullError(f"download of {path.name} failed: HTTP {response.status_code}")
            with open(part, mode) as out:
                for block in response.iter_bytes(CHUNK):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
    except httpx.HTTPError as exc:
        raise PullError(f"download of {path.name} interrupted ({exc}); run the same pull again to resume") from exc
    if digest.hexdigest() != sha256:
        part.unlink()
        raise PullError(f"checksum mismatch for {path.name}: the download was corrupted; run the pull again")
    os.replace(part, path)


def audio_keys(folder: Path, manifest: dict) -> set[str]:
    """Every audio key the snapshot's Parquet files reference (manifest audio.key_fields)."""
    keys: set[str] = set()
    fields = manifest["audio"]["key_fields"]
    columns = sorted({f.split(".")[0] for f in fields})
    for entry in manifest["files"]:
        if entry["format"] != "parquet":
            continue
        for batch in pq.ParquetFile(folder / entry["path"]).iter_batches(columns=columns):
            for spec in fields:
                keys.update(k for k in _strings(batch, spec) if k)
    return keys


def _strings(batch: pa.RecordBatch, spec: str) -> Iterator[str | None]:
    """Values of a key field: a string column, a list of strings, or `list_column.struct_field`."""
    column, _, inner = spec.partition(".")
    values = batch.column(column)
    if pa.types.is_list(values.type):
        values = pc.list_flatten(values)
    if inner:
        values = pc.struct_field(values, inner)
    return iter(values.to_pylist())


def pull_audio(client: AuralignClient, snapshot_id: str, dest: Path, manifest: dict, *, progress: bool = True) -> int:
    """Download the referenced audio to `dest/<key>`; the file name is its sha256, so each file is verified."""
    keys = sorted(audio_keys(dest, manifest))
    missing = [k for k in keys if not _audio_ok(dest / k)]
    with tqdm(total=len(keys), initial=len(keys) - len(missing), unit="file", desc="audio", disable=not progress) as bar:
        for start in range(0, len(missing), AUDIO_BATCH):
            chunk = missing[start : start + AUDIO_BATCH]
            for key, url in client.audio_urls(snapshot_id, chunk).items():
                data = _get(client.http, url)
                if hashlib.sha256(data).hexdigest() != Path(key).stem:
                    raise PullError(f"checksum mismatch for audio {key}")
                target = dest / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                bar.update(1)
    return len(keys)


def _audio_ok(path: Path) -> bool:
    return path.exists() and _sha256_of(path) == path.stem


def load_snapshot(folder: str | Path):
    """A pulled snapshot as a `datasets.DatasetDict` with one split per non-empty split."""
    import datasets  # noqa: PLC0415 (heavy; only loaders need it, not `pull`)

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    data_files: dict[str, list[str]] = {}
    for entry in manifest["files"]:
        if entry["format"] == "parquet" and entry["rows"]:
            data_files.setdefault(entry["split"], []).append(str(folder / entry["path"]))
    return datasets.load_dataset("parquet", data_files=data_files, cache_dir=str(folder / ".hf-cache"))
