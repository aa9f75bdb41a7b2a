"""Shared fixtures of the python tests. python/ is on sys.path (pyproject.toml: pythonpath)."""
import os
import re
import shutil

import pytest
import torch

PYTHON_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ROOT = os.path.dirname(PYTHON_DIR)
# The keys and shapes of the official checkpoints' state dicts (HR and LR-with-CReFF networks of
# both backbones, as the official code saves them), listed from the official release: the
# reference every layout in arseg/ is checked against (docs/method.md, "Networks").
OFFICIAL_JSON = os.path.join(PYTHON_DIR, "tests", "fixtures", "official-state-dicts.json")
# What a test may skip for: a GPU, which no set-up can provide. Everything else a test needs is
# installed by `bash scripts/setup.sh --python`; a missing one fails the test, saying what to run.
GPU_SKIP = re.compile(r"CUDA|GPU")
SETUP = "run `bash scripts/setup.sh --python`"

# One intra-op thread by default: the test models are small, and on a shared 2-core machine
# PyTorch's thread pool waits on busy cores (10x slower per forward under load, measured).
torch.set_num_threads(int(os.environ.get("ARSEG_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def node():
    """The node binary and the built package (dist/), which the round-trip tests drive."""
    exe = shutil.which("node")
    if exe is None:
        pytest.fail(f"node is not installed (Node.js >= 20.17; then {SETUP})")
    if not os.path.exists(os.path.join(ROOT, "dist", "index.js")):
        pytest.fail(f"dist/ is not built: {SETUP} (or npm run build)")
    return exe


@pytest.fixture(scope="session")
def ffmpeg_clis():
    """The ffmpeg and ffprobe command-line tools (the ffmpeg package), which make test videos."""
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not installed: {SETUP}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (.ci/run sets ARSEG_CI), a skip for anything but a GPU is a failure: set-up installs
    every other prerequisite."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("ARSEG_CI") and report.skipped and not GPU_SKIP.search(str(report.longrepr)):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where set-up installed every prerequisite: {report.longrepr}"
