"""Local media: signed, expiring URLs (see storage.url) served with HTTP Range so browsers can seek."""

from __future__ import annotations

import mimetypes
import re

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from auralign.core import storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@require_GET
def media_object(request, key: str):
    if storage.is_s3() or not storage.verify_local_signature(key, request.GET.get("e"), request.GET.get("s")):
        raise Http404("no such media object")  # never reveal whether the key exists
    if ".." in key.split("/") or not storage.exists(key):
        raise Http404("no such media object")
    total = storage.size(key)
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    start, end, status = 0, total - 1, 200
    header = request.headers.get("Range")
    if header:
        m = _RANGE.match(header.strip())
        if not m or (not m.group(1) and not m.group(2)):
            return _unsatisfiable(total)
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
        else:  # suffix range: the last N bytes
            start = max(0, total - int(m.group(2)))
        if start > end or start >= total:
            return _unsatisfiable(total)
        status = 206
    length = end - start + 1
    response = StreamingHttpResponse(storage.iter_range(key, start, length), status=status, content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{total}"
    return response


def _unsatisfiable(total: int) -> HttpResponse:
    response = HttpResponse(status=416)
    response["Content-Range"] = f"bytes */{total}"
    return response


def healthz(request):
    """Liveness for load balancers and compose: the database answers."""
    from django.db import connection
    from django.http import JsonResponse

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})
