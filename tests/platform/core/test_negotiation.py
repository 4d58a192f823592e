import pytest
from rest_framework.exceptions import NotAcceptable
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from auralign.core.negotiation import ContentNegotiation

RENDERERS = [JSONRenderer(), BrowsableAPIRenderer()]


def chosen(path: str = "/api/v1/x", **headers):
    request = Request(APIRequestFactory().get(path, **headers))
    renderer, media_type = ContentNegotiation().select_renderer(request, RENDERERS)
    return type(renderer), media_type


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_json_is_answered_for_no_accept_header_any_type_or_json(accept):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    assert chosen(**headers) == (JSONRenderer, "application/json")


def test_a_browser_asking_for_html_still_gets_the_browsable_api():
    assert chosen(HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")[0] is BrowsableAPIRenderer


def test_the_format_query_parameter_still_chooses_the_renderer():
    assert chosen("/api/v1/x?format=api", HTTP_ACCEPT="*/*")[0] is BrowsableAPIRenderer


def test_a_type_no_renderer_makes_is_still_not_acceptable():
    with pytest.raises(NotAcceptable):
        chosen(HTTP_ACCEPT="application/xml")
