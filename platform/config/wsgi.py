import os

from django.core.wsgi import get_wsgi_application
from django.urls import reverse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Build the URL resolver's reverse tables now: under `gunicorn --preload` this happens once
# before the workers fork, not in every worker while it serves its first requests (about half
# a second of CPU each, which showed as a latency spike in bench/annotate_load.py).
reverse("healthz")
