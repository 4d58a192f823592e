import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import reverse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Build the URL resolver's reverse tables now: under `gunicorn --preload` this happens once
# before the workers fork, not in every worker while it serves its first requests (about half
# a second of CPU each, which showed as a latency spike in bench/annotate_load.py).
reverse("healthz")
# Move everything loaded so far (~180,000 objects: Django, DRF, numpy, the URL tables...) into
# the collector's permanent generation. These objects live as long as the process, yet every
# full (generation 2) collection walked them all: under load that took 250-380 ms, during
# which the worker answered nobody (bench/annotate_load.py's p99; a trivial endpoint's p99 fell
# from ~230 to ~55 ms with it). Under `gunicorn --preload` the master freezes before forking,
# so the workers also keep these pages shared instead of copying them when the collector
# writes its bookkeeping into them. Garbage from start-up is collected first, not frozen.
gc.collect()
gc.freeze()
