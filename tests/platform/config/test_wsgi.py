"""The WSGI entry point gunicorn loads."""

import subprocess
import sys

from tests import services
from tests.platform.test_config import PROD_ENV


def test_loading_the_wsgi_app_puts_the_startup_heap_out_of_the_collectors_reach():
    # Full collections would otherwise walk every module object on each pass (a long pause under load).
    probe = "import gc, config.wsgi; print(gc.get_freeze_count(), len(gc.get_objects()))"
    env = services.platform_env({**PROD_ENV, "DATABASE_URL": "sqlite:////tmp/auralign-wsgi-probe.sqlite3"})
    result = subprocess.run([sys.executable, "-c", probe], cwd=services.REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    frozen, tracked = map(int, result.stdout.split())
    assert frozen > 50_000 and frozen > 10 * tracked, (frozen, tracked)
