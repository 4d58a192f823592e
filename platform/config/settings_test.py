"""The test suite's settings: config.settings (still env-driven) with test-only defaults."""

import os

os.environ.setdefault("AURALIGN_TESTING", "1")

from config.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins; tests only
