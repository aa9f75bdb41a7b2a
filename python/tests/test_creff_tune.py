"""arseg.creff_tune on a tiny bundle and a tiny generated dataset (arseg.toydata, x264, GOP 12):
a tiny FST run (train.py, one step per stage) is exported to a bundle; the bundle's networks,
imported back (bundle_import.py), must compute what the run's networks compute in eval mode
(folded batch norms with real statistics); CReFF fine-tuning then changes CReFF and nothing
else, resumes exactly, samples every dataset equally, and `export` writes a bundle that differs
from the source only in creff/*.npy. Motion fields come from `ar-seg mvs --dense 1` (dist/).
"""
import filecmp
import json
import os

import numpy as np
import pytest
import torch

from arseg import creff_tune
from arseg.bundle_import import load_bundle
from arseg.toydata import make_toy_dataset
from arseg.train import export_run, load_run, train_stage, validate_config

STAGE = {"steps": 1, "batch": 2, "lr": 1e-3}


@pytest.fixture(scope="module")
def toy(tmp_path_factory, ffmpeg_clis, node):
    root = str(tmp_path_factory.mktemp("toy"))
    make_toy_dataset(root, width=64, height=48, frames=24, clips=(2, 1, 0), seed=1)
    run = str(tmp_path_factory.mktemp("run"))
    cfg = validate_config({"dataset": root, "cache": os.path.join(root, "_cache"), "seed": 3, "threads": 1,
                           "width": 0.0625, "scale": 0.5, "crop": [32, 32], "checkpoint_every": 1, "log_every": 1,
                           "hr": dict(STAGE), "lr": dict(STAGE), "fst": dict(STAGE)})
    for stage in ("hr", "lr", "fst"):
        train_stage(cfg, stage, run, log=lambda m: None, final_eval=False)
    bundle = str(tmp_path_factory.mktemp("b") / "bundle")
    export_run(run, bundle, name="toy")
    return root, run, bundle


def _args(bundle, out, data, **kw):
    argv = ["train", "--bundle", bundle, "--out", out, "--crop", "32,32", "--batch", "3", "--steps", "2",
            "--log-every", "1", "--checkpoint-every", "1"]
    for d in data:
        argv += ["--data", d]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return argv


def test_imported_bundle_computes_what_the_run_computes(toy):
    _, run, bundle = toy
    _, hr0, lr0, creff0 = load_run(run)
    _, hr, lr, creff = load_bundle(bundle)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 48, 64, generator=g)
    motion = torch.randn(2, 2, 48, 64, generator=g) * 3
    with torch.no_grad():
        for a, b in ((hr0, hr), (lr0, lr)):
            np.testing.assert_allclose(b(x).numpy(), a(x).numpy(), atol=1e-4)
        key = hr0.encode(x)
        lrf = lr0.encode(x[:, :, ::2, ::2].contiguous())
        np.testing.assert_allclose(creff(lrf, key, motion).numpy(), creff0(lrf, key, motion).numpy(), atol=1e-5)
    # the run's batch norms had real statistics: the import is not trivially right
    bn = next(m for m in hr0.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert float(bn.running_var.sub(1).abs().max()) > 1e-3


def test_tune_changes_creff_only_and_exports(toy, tmp_path):
    root, _, bundle = toy
    out = str(tmp_path / "tune")
    assert creff_tune.main(_args(bundle, out, [root + ":1-11", root + ":11"])) == 0
    log = open(os.path.join(out, "train.log")).read()
    assert "step 2/2" in log and "loss" in log
    assert " 44 pairs at d = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]" in log  # 2 clips x 22 non-key frames
    assert " 4 pairs at d = [11]" in log
    new = str(tmp_path / "new")
    assert creff_tune.main(["export", "--run", out, "--bundle", bundle, "--out", new]) == 0
    same, diff, _ = filecmp.cmpfiles(bundle, new, ["arseg.json", "hr_encoder.onnx", "lr_encoder.onnx", "decoder.onnx"],
                                     shallow=False)
    assert len(same) == 4 and not diff
    with open(os.path.join(bundle, "arseg.json")) as fh:
        spec = json.load(fh)["creff"]
    changed = 0
    for name in "qkv":
        for part in ("weight", "bias"):
            a = np.load(os.path.join(bundle, spec[name][part]))
            b = np.load(os.path.join(new, spec[name][part]))
            assert a.shape == b.shape and b.dtype == np.float32 and np.isfinite(b).all()
            changed += int(not np.array_equal(a, b))
    assert changed == 6
    _, _, _, creff = load_bundle(new)
    tuned = torch.load(os.path.join(out, "creff.pt"))
    assert torch.equal(creff.q.weight, tuned["q.weight"])
    with pytest.raises(FileExistsError):
        creff_tune.export(out, bundle, new)
    # the last checkpoint (step 2 of 2) holds the same weights
    assert creff_tune.export(out, bundle, str(tmp_path / "from-checkpoint"), checkpoint=True) == 2
    for name in "qkv":
        assert filecmp.cmp(os.path.join(new, spec[name]["weight"]),
                           os.path.join(tmp_path / "from-checkpoint", spec[name]["weight"]), shallow=False)


def test_resume_is_exact(toy, tmp_path):
    root, _, bundle = toy
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    assert creff_tune.main(_args(bundle, full, [root + ":3,5"], steps=3)) == 0
    a = torch.load(os.path.join(full, "creff.pt"))
    argv = _args(bundle, part, [root + ":3,5"], steps=3)
    assert creff_tune.train(creff_tune.parser().parse_args(argv), max_steps=1) is None  # stopped after step 1
    assert not os.path.exists(os.path.join(part, "creff.pt"))
    assert creff_tune.main(argv + ["--resume"]) == 0
    assert "resumed at step 1" in open(os.path.join(part, "train.log")).read()
    b = torch.load(os.path.join(part, "creff.pt"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # a checkpoint of another configuration is refused, and so is a second run without --resume
    assert creff_tune.main(_args(bundle, part, [root + ":3,5"], steps=4) + ["--resume"]) == 2
    assert creff_tune.main(argv) == 2


def test_sampling_is_balanced_and_deterministic():
    class P:
        def __init__(self, n):
            self.index = list(range(n))

    m = creff_tune.MultiPairs([P(40), P(4)], seed=0)
    idx = [k for step in range(10) for k, _ in m.indices(step, 4)]
    assert idx.count(0) == idx.count(1) == 20
    assert m.indices(3, 4) == creff_tune.MultiPairs([P(40), P(4)], seed=0).indices(3, 4)
    # every pair of the small source is seen once per epoch
    small = [i for step in range(2) for k, i in m.indices(step, 4) if k == 1]
    assert sorted(small) == [0, 1, 2, 3]


@pytest.mark.parametrize("spec, message", [("x:0-3", "at least 1"), ("x:5-3", "increasing"), ("x:a", "like 1-11")])
def test_bad_distances(spec, message):
    with pytest.raises(ValueError, match=message):
        creff_tune.parse_data(spec)


def test_distances_parse():
    assert creff_tune.parse_data("d") == ("d", [11])
    assert creff_tune.parse_data("d:1-3,7") == ("d", [1, 2, 3, 7])
