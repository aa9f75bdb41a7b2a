"""Shared fixtures of the python tests. python/ is on sys.path (pyproject.toml: pythonpath)."""
import os
import shutil

import pytest
import torch

PYTHON_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ROOT = os.path.dirname(PYTHON_DIR)
# The keys and shapes of the official checkpoints' state dicts (HR and LR-with-CReFF networks of
# both backbones, as the official code saves them), listed from the official release: the
# reference every layout in arseg/ is checked against (docs/method.md, "Networks").
OFFICIAL_JSON = os.path.join(PYTHON_DIR, "tests", "fixtures", "official-state-dicts.json")

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
        pytest.skip("node is not installed")
    if not os.path.exists(os.path.join(ROOT, "dist", "index.js")):
        pytest.skip("dist/ is not built (npm run build)")
    return exe
