"""FST training (python/arseg/train.py) on a tiny model and a tiny generated dataset
(arseg.toydata: same layout as the street dataset, x264, GOP 12).

Motion fields come from `ar-seg mvs --dense 1` (dist/cli/index.js) when the package is built;
otherwise the cache is seeded with zero fields, so the training code is still exercised.
"""
import copy
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from arseg import data as data_mod  # noqa: E402
from arseg.creff import creff_reference  # noqa: E402
from arseg.fst import CReFF, normalise  # noqa: E402
from arseg.toydata import make_toy_dataset  # noqa: E402
from arseg.train import ConfigError, load_config, main, train_stage, validate_config  # noqa: E402

STAGE = {"steps": 1, "batch": 2, "lr": 1e-3}


def base_config(root, cache):
    return {"dataset": root, "cache": cache, "seed": 3, "threads": 2, "width": 0.0625, "scale": 0.5,
            "crop": [32, 32], "class_weighting": "sqrt-median-frequency", "checkpoint_every": 1, "log_every": 1,
            "eval_batch": 8,
            "hr": dict(STAGE), "lr": dict(STAGE), "fst": dict(STAGE)}


def _seed_motion(ds_root, cache):
    """Without the built CLI: zero motion fields in the cache, where data.Clip.motion() reads them."""
    if os.path.exists(data_mod.MVS_CLI):
        return
    ds = data_mod.Dataset(ds_root, cache)
    for split in ("train", "val"):
        for clip in ds.clips(split):
            n = clip.frames()
            data_mod._save_atomic(os.path.join(clip.cache, "motion.npy"),
                                  np.zeros((n, 2, clip.height, clip.width), np.float16))


@pytest.fixture(scope="module")
def toy(tmp_path_factory, ffmpeg_clis):
    root = str(tmp_path_factory.mktemp("toy"))
    make_toy_dataset(root, width=64, height=48, frames=24, clips=(2, 1, 0), seed=1)
    cache = os.path.join(root, "_cache")
    _seed_motion(root, cache)
    return root, cache


@pytest.fixture(scope="module")
def trained_lr(toy, tmp_path_factory):
    """A run directory with one step of hr and lr (what fst starts from)."""
    run = str(tmp_path_factory.mktemp("run"))
    cfg = validate_config(base_config(*toy))
    train_stage(cfg, "hr", run, log=lambda m: None, final_eval=False)
    train_stage(cfg, "lr", run, log=lambda m: None, final_eval=False)
    return run, cfg


def _state(path):
    return torch.load(path)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _assert_same(a[k], b[k])
        else:
            assert torch.equal(a[k], b[k]), k


def test_one_step_of_each_stage(toy, tmp_path):
    run = str(tmp_path / "run")
    cfg = validate_config(base_config(*toy))
    logs = []
    log = logs.append
    r = train_stage(cfg, "hr", run, log=log)
    assert set(r) == {"hr"} and len(r["hr"]["per_distance"]) == 12
    hr = _state(os.path.join(run, "hr", "model.pt"))["hr"]
    r = train_stage(cfg, "lr", run, log=log)
    assert set(r) == {"lr"}
    lr = _state(os.path.join(run, "lr", "model.pt"))["lr"]
    # the decoder is the HR network's, frozen
    assert torch.equal(lr["final_conv.weight"], hr["final_conv.weight"])
    r = train_stage(cfg, "fst", run, log=log)
    assert set(r) == {"hr", "lr", "lr-fst", "ar"}
    # at distance 0 AR is the HR network on the keyframe
    assert r["ar"]["per_distance"][0] == r["hr"]["per_distance"][0]
    fst = _state(os.path.join(run, "fst", "model.pt"))
    assert set(fst) == {"lr", "creff"}
    assert torch.equal(fst["lr"]["final_conv.weight"], hr["final_conv.weight"])
    assert not torch.equal(fst["lr"]["up_3.conv.0.weight"], lr["up_3.conv.0.weight"])  # the LR encoder trains
    text = "\n".join(logs)
    assert "class weights (sqrt-median-frequency): sky" in text
    assert "AR recovers" in text
    assert "fst step 1/1 loss" in text and " ce " in text and " mse " in text and "samples/s" in text
    with open(os.path.join(run, "fst", "metrics.json")) as fh:
        assert json.load(fh)["split"] == "val"
    assert os.path.exists(os.path.join(run, "fst", "checkpoint.pt"))


def test_losses_are_finite_and_the_cli_logs(toy, tmp_path):
    cfg = base_config(*toy)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    run = str(tmp_path / "run")
    cfg_hr_only = copy.deepcopy(cfg)
    cfg_hr_only["hr"]["steps"] = 2
    path.write_text(json.dumps(cfg_hr_only))
    assert main(["--config", str(path), "--stage", "hr", "--out", run]) == 0
    log = open(os.path.join(run, "train.log")).read()
    assert "hr step 2/2 loss" in log and "val mIoU after stage hr" in log
    loss = float(log.split("hr step 2/2 loss ")[1].split()[0])
    assert np.isfinite(loss)
    # a second run into the same directory needs --resume
    with pytest.raises(RuntimeError, match="--resume"):
        main(["--config", str(path), "--stage", "hr", "--out", run])


# The kernels a run executes depend on the CPU: PyTorch's own (ATEN_CPU_CAPABILITY) and oneDNN's
# convolutions (ONEDNN_MAX_CPU_ISA, read once per process). Each cap runs the test in a process of
# its own, so that an AVX-512 machine also checks what an AVX2-only or an older CPU executes. The
# host's own, highest kernels are what test_resume_is_exact runs in this process: no cap repeats
# them (an "avx512" cap did, at a ninth of the python suite's time).
KERNEL_CAPS = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


def test_network_input_is_contiguous_nchw():
    """normalise() once returned a channels-last view (a permuted N x H x W x 3 array): the
    networks then ran in channels-last, where Debian's oneDNN 2.6 1x1 strided convolution's
    backward pass on AVX2 reads and writes out of bounds (runs differ, or the heap is corrupted)."""
    x = normalise(np.zeros((2, 8, 6, 3), np.uint8))
    assert x.shape == (2, 3, 8, 6) and x.is_contiguous()
    assert not x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("cap", sorted(KERNEL_CAPS))
def test_resume_is_exact_with_the_kernels_of(cap):
    """The resume tests (both stages) in a fresh process whose kernels are capped at `cap`."""
    env = {**os.environ, **KERNEL_CAPS[cap]}
    here = os.path.dirname(__file__)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"{os.path.join(here, 'test_train.py')}::test_resume_is_exact"],
                          cwd=os.path.dirname(here), env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 passed" in proc.stdout


@pytest.mark.parametrize("stage", ["hr", "fst"])
def test_resume_is_exact(toy, trained_lr, tmp_path, stage):
    """A run stopped after a step and resumed computes exactly what a straight run does (on the
    machine's own kernels; test_resume_is_exact_with_the_kernels_of caps them)."""
    base_run, _ = trained_lr
    cfg = validate_config(base_config(*toy))
    cfg[stage]["steps"] = 2

    def fresh(name):
        run = str(tmp_path / name)
        if stage == "fst":
            for prev in ("hr", "lr"):
                os.makedirs(os.path.join(run, prev))
                shutil.copy(os.path.join(base_run, prev, "model.pt"), os.path.join(run, prev, "model.pt"))
        return run

    quiet = lambda m: None  # noqa: E731
    straight = fresh("straight")
    train_stage(cfg, stage, straight, log=quiet, final_eval=False)
    stopped = fresh("stopped")
    train_stage(cfg, stage, stopped, log=quiet, max_steps=1)
    assert not os.path.exists(os.path.join(stopped, stage, "model.pt"))
    assert _state(os.path.join(stopped, stage, "checkpoint.pt"))["step"] == 1
    train_stage(cfg, stage, stopped, resume=True, log=quiet, final_eval=False)
    a = _state(os.path.join(straight, stage, "checkpoint.pt"))
    b = _state(os.path.join(stopped, stage, "checkpoint.pt"))
    assert a["step"] == b["step"] == 2
    _assert_same(a["modules"], b["modules"])
    _assert_same(_state(os.path.join(straight, stage, "model.pt")), _state(os.path.join(stopped, stage, "model.pt")))
    changed = copy.deepcopy(cfg)
    changed[stage]["lr"] = 0.5
    with pytest.raises(ConfigError, match=f"another configuration \\(differs in {stage}\\)"):
        train_stage(changed, stage, stopped, resume=True, log=quiet, final_eval=False)
    # how often it logs or saves is no part of what it computes
    quieter = copy.deepcopy(cfg)
    quieter["log_every"] = 7
    train_stage(quieter, stage, stopped, resume=True, log=quiet, final_eval=False)
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[k][name], sb[k][name])


def test_export_writes_a_bundle(toy, trained_lr, tmp_path):
    from arseg.train import export_run

    run, cfg = trained_lr
    run2 = str(tmp_path / "run")
    shutil.copytree(run, run2)
    train_stage(cfg, "fst", run2, log=lambda m: None, final_eval=False)
    out = str(tmp_path / "bundle")
    m = export_run(run2, out, name="toy")
    assert [c["name"] for c in m["classes"]][:3] == ["sky", "building", "pole"] and len(m["classes"]) == 11
    assert m["ignoreIndex"] == 255 and m["lrScale"] == 0.5 and m["keyframeInterval"] == 12
    assert m["creff"]["window"] == 7 and m["creff"]["sampling"] == "exact"
    for f in ("arseg.json", "hr_encoder.onnx", "lr_encoder.onnx", "decoder.onnx", "creff/q_weight.npy"):
        assert os.path.exists(os.path.join(out, f)), f
    assert main(["eval", "--run", run2, "--split", "val", "--json", str(tmp_path / "m.json")]) == 0
    table = json.loads((tmp_path / "m.json").read_text())
    assert set(table) == {"split", "hr", "lr", "lr-fst", "ar"} and len(table["ar"]["per_distance"]) == 12
    fst = _state(os.path.join(run2, "fst", "model.pt"))
    assert np.array_equal(np.load(os.path.join(out, "creff", "k_bias.npy")), fst["creff"]["k.bias"].numpy())


def test_fuse_on_the_warped_feature_is_creff():
    g = torch.Generator().manual_seed(0)
    creff = CReFF(5, window=7)
    lr = torch.randn(2, 5, 6, 8, generator=g)
    key = torch.randn(2, 5, 12, 16, generator=g)
    motion = 3 * torch.randn(2, 2, 12, 16, generator=g)
    w = creff.weights()
    ref = creff_reference(lr, key, motion, w["q"], w["k"], w["v"], window=7, sampling="exact")
    assert torch.allclose(creff.fuse(lr, creff.warp(key, motion)), ref, atol=1e-5)
    assert torch.allclose(creff(lr, key, motion), ref, atol=1e-6)
    # warping a crop is cropping the warp
    crop = creff.warp_crop(key, motion[:, :, 3:9, 5:13], 3, 5)
    assert torch.allclose(crop, creff.warp(key, motion)[:, :, 3:9, 5:13], atol=1e-6)
    # and its gradients: the hand-written backward of the attention against autograd's
    # through the reference (float64 gradcheck, then float32 against creff_reference)
    creff64 = CReFF(3, window=5).double()
    a = torch.randn(1, 3, 4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(1, 3, 8, 10, dtype=torch.float64, generator=g, requires_grad=True)
    # fast mode: the Jacobian against a random projection (a few passes, not one per element),
    # which a wrong backward fails as surely; the full check was a minute of the suite under load
    assert torch.autograd.gradcheck(lambda x, y: creff64.fuse(x, y), (a, b), fast_mode=True)
    lr.requires_grad_(True)
    params = [lr] + list(creff.parameters())
    zero = torch.zeros_like(motion)
    g1 = torch.autograd.grad(creff.fuse(lr, key).square().mean(), params)
    g2 = torch.autograd.grad(creff(lr, key, zero).square().mean(), params)
    for x, y in zip(g1, g2):
        assert torch.allclose(x, y, atol=1e-5, rtol=1e-4)


def test_lr_frames_align_with_the_hr_frames(toy):
    """The LR frame (swscale bilinear, as the pipeline) is the HR frame downscaled: the crops of
    the two agree where training cuts them."""
    ds = data_mod.Dataset(*toy)
    clip = ds.clips("train")[0]
    hr = clip.hr()[5].astype(np.float32)
    lr = clip.lr(0.5)[5].astype(np.float32)
    assert hr.shape == (48, 64, 3) and lr.shape == (24, 32, 3)
    box = hr.reshape(24, 2, 32, 2, 3).mean((1, 3))
    assert np.abs(box - lr)[2:-2, 2:-2].mean() < 12
    assert clip.labels().shape == (24, 48, 64)


@pytest.mark.parametrize("change, message", [
    ({"dataset": None}, "'dataset' is required"),
    ({"crop": [30, 32]}, "'crop' must be"),
    ({"crop": [32]}, "'crop' must be"),
    ({"scale": 0.3}, "'scale' must be 1/n"),
    ({"width": 0}, "'width' must be in"),
    ({"window": 6}, "'window' must be a positive odd"),
    ({"bogus": 1}, "unknown key 'bogus'"),
    ({"hr": {"steps": 1, "batch": 2}}, "'hr.lr' is required"),
    ({"hr": {"steps": 0, "batch": 2, "lr": 0.1}}, "'hr.steps' must be at least 1"),
    ({"lr": {"steps": 1, "batch": 2, "lr": 0.1, "optimizer": "rmsprop"}}, "'lr.optimizer' must be 'adam' or 'sgd'"),
    ({"fst": {"steps": 1, "batch": 2, "lr": 0.1, "distances": []}}, "'fst.distances'"),
    ({"fst": {"steps": 1, "batch": 2, "lr": 0.1, "lrr": 2}}, "unknown key 'fst.lrr'"),
    ({"fst": {"steps": 1, "batch": 2, "lr": 0.1, "crop": [24, 32]}}, "'fst.crop' must be"),
    ({"seed": 1.5}, "'seed' must be int"),
    ({"hflip": "yes"}, "'hflip' must be bool"),
    ({"class_weighting": "inverse"}, "'class_weighting' must be one of"),
])
def test_config_validation(change, message):
    cfg = base_config("/nowhere", "/nowhere/cache")
    for k, v in change.items():
        if v is None:
            del cfg[k]
        else:
            cfg[k] = v
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_config_file_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.json"))
    assert main(["--config", str(bad), "--stage", "hr", "--out", str(tmp_path / "run")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_config_checked_against_the_dataset(toy, tmp_path):
    cfg = base_config(*toy)
    cfg["crop"] = [64, 64]  # taller than the 48-pixel frames
    with pytest.raises(ConfigError, match=r"'hr.crop' \[64, 64\] is larger than the dataset's frames"):
        train_stage(validate_config(cfg), "hr", str(tmp_path / "run"), log=lambda m: None)
    cfg = base_config(*toy)
    cfg["fst"]["distances"] = [12]
    with pytest.raises(ConfigError, match="below the dataset's GOP"):
        train_stage(validate_config(cfg), "hr", str(tmp_path / "run2"), log=lambda m: None)
