"""What every page carries from the base template."""

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_pages_link_an_icon_that_the_static_files_hold(client):
    """Without a linked icon every page view also asks for /favicon.ico, a 404 in the log."""
    page = client.get("/login/").content.decode()
    href = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', page)
    assert href, "the base template links no icon"
    name = href.group(1).split("/static/", 1)[1]
    assert finders.find(re.sub(r"\.[0-9a-f]{12}\.svg$", ".svg", name))
