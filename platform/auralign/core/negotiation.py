"""The API's content negotiation (settings: DEFAULT_CONTENT_NEGOTIATION_CLASS). Its own module:
DRF imports it while `rest_framework.views` is still loading, so it must not import that."""

from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, minus the work for what nearly every request asks: no `Accept` header,
    `*/*` or exactly the view's first renderer's media type (JSON; the task page, scripts and
    trainers) with no `?format=`. DRF parses the header and walks every renderer for each
    request; here that is answered at once, with the same choice DRF makes for it."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        first = renderers[0]
        if not format_suffix and not request.META.get("QUERY_STRING") and accept in ("*/*", first.media_type):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
