"""Shared fixtures of the python tests. python/ is on sys.path (pytest.ini: pythonpath)."""
import os
import shutil

import pytest
import torch

PYTHON_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ROOT = os.path.dirname(PYTHON_DIR)
# A verbatim copy of ../shared/docs/official-state-dicts.json (the keys and shapes of the official
# checkpoints), so that the tests run where ../shared is absent.
OFFICIAL_JSON = os.path.join(PYTHON_DIR, "tests", "fixtures", "official-state-dicts.json")
SHARED_JSON = os.path.join(ROOT, "..", "shared", "docs", "official-state-dicts.json")

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
