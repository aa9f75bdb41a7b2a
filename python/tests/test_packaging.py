"""python/pyproject.toml: the package installs whole (every module of arseg/, subpackages included),
and, once `bash scripts/setup.sh --python` has installed it, `python3 -m arseg.export` runs from
the repository root without PYTHONPATH, as the docs write it."""
import os
import shutil
import subprocess
import sys

from conftest import PYTHON_DIR, ROOT


def modules(top):
    """The .py files under top/arseg, relative to top."""
    found = set()
    for d, _, files in os.walk(os.path.join(top, "arseg")):
        found.update(os.path.relpath(os.path.join(d, f), top) for f in files if f.endswith(".py"))
    return found


def clean_env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def test_pyproject_installs_every_module(tmp_path):
    # Built from a copy, so that the build leaves nothing in python/.
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(os.path.join(PYTHON_DIR, "pyproject.toml"), src)
    shutil.copytree(os.path.join(PYTHON_DIR, "arseg"), src / "arseg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
                        "--quiet", "--target", str(target), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert modules(str(target)) == modules(PYTHON_DIR)
    env = dict(clean_env(), PYTHONPATH=str(target))
    r = subprocess.run([sys.executable, "-c", "import arseg.export, arseg.street, arseg.train; print(arseg.__file__)"],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(target))


def test_module_commands_run_from_the_repository_root():
    r = subprocess.run([sys.executable, "-m", "arseg.export", "--help"], capture_output=True, text=True,
                       env=clean_env(), cwd=ROOT)
    assert r.returncode == 0, (
        "python3 -m arseg.export does not run from the repository root without PYTHONPATH: "
        "bash scripts/setup.sh --python installs python/ (pip install --user -e python)\n" + r.stderr)
    assert "--hr" in r.stdout
