"""Layout guards (DESIGN.md): platform/ is a source root, worker/ and training are Django-free."""

import subprocess
import sys
import sysconfig
from pathlib import Path

from tests import services

REPO = services.REPO


def test_stdlib_platform_module_is_the_one_imported():
    import platform

    assert Path(platform.__file__).parent == Path(sysconfig.get_paths()["stdlib"])
    assert callable(platform.python_version)


def test_platform_folder_is_not_a_package():
    assert not (REPO / "platform" / "__init__.py").exists()


def _modules(package: str) -> list[str]:
    root = REPO / package.replace(".", "/")
    mods = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__":
            continue
        mods.append(".".join(parts))
    return mods


def _assert_django_free(package: str) -> None:
    modules = _modules(package)
    assert modules, f"no modules found under {package}"
    # Block the imports instead of inspecting sys.modules afterwards: kombu probes for Django
    # (falling back when it is missing), which is fine; our code importing it is not.
    code = (
        "import importlib, importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in {'django', 'auralign', 'config', 'rest_framework'}:\n"
        "            raise ImportError(f'{name} is blocked: this code must stay Django-free')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=services.django_free_env(), cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


def test_worker_imports_no_django():
    _assert_django_free("worker")


def test_training_imports_no_django():
    _assert_django_free("rlhf_export/training")
