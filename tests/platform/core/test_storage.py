import httpx
import pytest

from auralign.core import storage


def test_local_url_serves_byte_ranges(client):
    storage.put("audio/ab/abc.wav", b"0123456789")
    url = storage.url("audio/ab/abc.wav")
    full = client.get(url)
    assert full.status_code == 200
    assert b"".join(full.streaming_content) == b"0123456789"
    part = client.get(url, HTTP_RANGE="bytes=2-5")
    assert part.status_code == 206
    assert part["Content-Range"] == "bytes 2-5/10"
    assert b"".join(part.streaming_content) == b"2345"


def test_local_url_suffix_range_returns_the_tail(client):
    storage.put("audio/ab/tail.wav", b"0123456789")
    part = client.get(storage.url("audio/ab/tail.wav"), HTTP_RANGE="bytes=-3")
    assert b"".join(part.streaming_content) == b"789"


def test_local_url_unsatisfiable_range_is_416(client):
    storage.put("audio/ab/x.wav", b"0123")
    assert client.get(storage.url("audio/ab/x.wav"), HTTP_RANGE="bytes=10-20").status_code == 416


def test_local_url_with_tampered_signature_is_404(client):
    storage.put("audio/ab/y.wav", b"0123")
    url = storage.url("audio/ab/y.wav")
    assert client.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB")).status_code == 404


def test_local_url_for_another_key_is_404(client):
    storage.put("audio/ab/one.wav", b"1")
    storage.put("audio/ab/two.wav", b"2")
    url = storage.url("audio/ab/one.wav").replace("one.wav", "two.wav")
    assert client.get(url).status_code == 404


def test_local_url_expires(client, settings):
    storage.put("audio/ab/z.wav", b"0123")
    url = storage.url("audio/ab/z.wav", ttl=-10)
    assert client.get(url).status_code == 404


@pytest.mark.services
def test_s3_presigned_url_serves_ranges_and_rejects_tampering(s3_settings):
    storage.put("audio/cd/obj.wav", b"abcdefghij")
    url = storage.url("audio/cd/obj.wav", ttl=60)
    assert httpx.get(url).content == b"abcdefghij"
    part = httpx.get(url, headers={"Range": "bytes=3-4"})
    assert part.status_code == 206 and part.content == b"de"
    tampered = url.replace("obj.wav", "obx.wav")
    assert httpx.get(tampered).status_code == 403
