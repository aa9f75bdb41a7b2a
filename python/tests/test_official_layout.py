"""The networks of arseg.official against the official checkpoints' keys and shapes
(tests/fixtures/official-state-dicts.json), strict loading of checkpoints in that layout, and where each
network is split into encoder and decoder."""
import json

import pytest
import torch

from arseg.creff import creff_reference
from arseg.fuse import FuseAttention
from arseg.official import CheckpointError, build, load_checkpoint, official_state_dict
from arseg.pspnet import randomise_batchnorm
from conftest import OFFICIAL_JSON

with open(OFFICIAL_JSON) as fh:
    OFFICIAL = {title.split(":")[0]: keys for title, keys in json.load(fh).items()}


def expected_layout(arch, role):
    """The json's keys and shapes for a network, in order. The Cityscapes PSPNet18 HR network has
    the LR network's keys minus the fuse module."""
    if arch == "psp18-semseg":
        keys = OFFICIAL["cityscapes-psp18-LR"]
        if role == "hr":
            keys = {k: v for k, v in keys.items() if not k.startswith("module.fuse_attention.")}
        return keys
    return OFFICIAL[{"psp18": "camvid-psp18", "bise18": "camvid-bise18"}[arch] + "-" + role.upper()]


CASES = [(arch, role) for arch in ("psp18", "bise18", "psp18-semseg") for role in ("hr", "lr")]
CLASSES = {"psp18": 12, "bise18": 12, "psp18-semseg": 19}
# modules the official code holds under two names (the same tensors, both keys saved)
ALIASES = {
    "psp18": {},
    "bise18": {"module.final_conv.": "module.conv_out.conv_out.", "module.feat_conv_out.": "module.conv_out.conv."},
    "psp18-semseg": {"module.final_conv.": "module.cls.4."},
}


def json_state_dict(arch, role, seed=0):
    """A state dict with exactly the json's keys and shapes, random values (aliases equal)."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in expected_layout(arch, role).items():
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(int(torch.randint(0, 1000, (1,), generator=gen)))
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            sd[key] = torch.randn(shape, generator=gen) * 0.1
    for alias, target in ALIASES[arch].items():
        for key in sd:
            if key.startswith(alias):
                sd[key] = sd[target + key[len(alias):]].clone()
    return sd


@pytest.mark.parametrize("arch,role", CASES)
def test_state_dict_has_exactly_the_official_keys_and_shapes(arch, role):
    net = build(arch, role, CLASSES[arch])
    mine = {k: list(v.shape) for k, v in official_state_dict(net).items()}
    expected = expected_layout(arch, role)
    assert sorted(set(expected) - set(mine)) == [], "missing"
    assert sorted(set(mine) - set(expected)) == [], "unexpected"
    assert {k: v for k, v in mine.items() if v != expected[k]} == {}, "shapes"
    assert list(mine) == list(expected), "the official order"


@pytest.mark.parametrize("arch,role", CASES)
def test_strict_load_of_the_official_keys(arch, role, tmp_path):
    sd = json_state_dict(arch, role)
    stripped = {k[len("module."):]: v for k, v in sd.items()}
    # load_state_dict(strict=True): prefixed into a DataParallel wrapper (as the official code
    # loads), and with the `module.` prefix stripped into the bare network
    net = build(arch, role, CLASSES[arch])
    torch.nn.DataParallel(net).load_state_dict(sd, strict=True)
    net.load_state_dict(stripped, strict=True)
    # and through load_checkpoint: prefixed or not, bare or wrapped, from memory or a file
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "wrapped.pth")
    sources = {"prefixed": sd, "model-wrapped, stripped": {"model": stripped, "optimizer": {}},
               "file, state_dict-wrapped, prefixed": str(tmp_path / "wrapped.pth")}
    for name, source in sources.items():
        with torch.no_grad():
            for v in net.state_dict().values():
                v.zero_()
        load_checkpoint(net, source)
        loaded = net.state_dict()
        for k, v in stripped.items():
            assert torch.equal(loaded[k], v), f"{name}: {k} not loaded"


def test_load_errors_list_missing_unexpected_and_mismatched_keys():
    sd = json_state_dict("bise18", "hr")
    del sd["module.cp.arm16.conv.bn.running_mean"]
    sd["module.extra.weight"] = torch.zeros(3)
    sd["module.sp.conv1.conv.weight"] = torch.zeros(64, 3, 5, 5)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(build("bise18", "hr"), sd, what="bise18 HR network")
    msg = str(err.value)
    assert "1 missing key(s)" in msg and "cp.arm16.conv.bn.running_mean" in msg
    assert "1 unexpected key(s)" in msg and "extra.weight" in msg
    assert "1 shape mismatch(es)" in msg
    assert "sp.conv1.conv.weight: checkpoint [64, 3, 5, 5], bise18 HR network [64, 3, 7, 7]" in msg


def test_load_errors_name_a_swapped_hr_and_lr():
    unexpected = r"(?s)6 unexpected key\(s\).*fuse_attention\.hr_key_conv\.bias.*pass it as --lr"
    with pytest.raises(CheckpointError, match=unexpected):
        load_checkpoint(build("psp18", "hr"), json_state_dict("psp18", "lr"))
    with pytest.raises(CheckpointError, match=r"(?s)6 missing key\(s\).*pass it as --hr"):
        load_checkpoint(build("psp18-semseg", "lr"), json_state_dict("psp18-semseg", "hr"))


def test_aliases_must_agree_and_other_files_are_refused(tmp_path):
    sd = json_state_dict("psp18-semseg", "hr")
    sd["module.final_conv.bias"] = sd["module.final_conv.bias"] + 1
    with pytest.raises(CheckpointError, match="name the same module but differ"):
        load_checkpoint(build("psp18-semseg", "hr"), sd)
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_checkpoint(build("psp18", "hr"), str(tmp_path / "list.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="torch.load cannot read it"):
        load_checkpoint(build("psp18", "hr"), str(tmp_path / "junk.pth"))
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(build("psp18", "hr"), str(tmp_path / "missing.pth"))


def small(arch, role, seed):
    torch.manual_seed(seed)
    net = build(arch, role, CLASSES[arch], width=0.125)
    randomise_batchnorm(net, torch.Generator().manual_seed(seed))
    return net.eval()


@pytest.mark.parametrize("arch,stride,channels", [("psp18", 1, 8), ("bise18", 8, 32), ("psp18-semseg", 8, 64)])
def test_encoder_decoder_split_gives_the_official_output(arch, stride, channels):
    net = small(arch, "hr", 1)
    assert net.feature_stride == stride and net.feature_channels == channels
    x = torch.randn(1, 3, 96, 128)  # a multiple of every size_multiple
    with torch.no_grad():
        feature = net.encode(x)
        assert tuple(feature.shape) == (1, channels, 96 // stride, 128 // stride)
        logits = net.decode(feature)
        assert tuple(logits.shape) == (1, CLASSES[arch], 96 // stride, 128 // stride)
        up = net.upsample_logits(logits, x.shape[2:])
        if arch == "psp18":
            up = torch.log_softmax(up, 1)  # the official PSPNet returns log-probabilities
        torch.testing.assert_close(net.official_forward(x), up, rtol=0, atol=0)
        if arch == "bise18":
            # the x8 upsampling is align_corners=False (nn.Upsample's default), not True
            corners = torch.nn.functional.interpolate(logits, size=(96, 128), mode="bilinear", align_corners=True)
            assert not torch.allclose(up, corners)
        if hasattr(net, "aux_forward"):
            outputs = net.aux_forward(x)
            torch.testing.assert_close(outputs[0], net.official_forward(x))
            torch.testing.assert_close(outputs[-1], feature)


def test_bisenet_feature_is_one_eighth_for_multiples_of_16():
    net = small("bise18", "hr", 2)
    with torch.no_grad():
        for h, w in ((48, 80), (16, 16), (112, 144)):
            assert tuple(net.encode(torch.randn(1, 3, h, w)).shape[2:]) == (h // 8, w // 8)


@pytest.mark.parametrize("arch", ["psp18", "bise18", "psp18-semseg"])
def test_lr_network_fuses_with_creff(arch):
    lr = small(arch, "lr", 3)
    c = lr.feature_channels
    for conv in (lr.fuse_attention.lr_query_conv, lr.fuse_attention.hr_key_conv, lr.fuse_attention.hr_value_conv):
        assert tuple(conv.weight.shape) == (c, 1, 3, 3) and conv.groups == c
    gen = torch.Generator().manual_seed(4)
    lr_feat, key = torch.randn(1, c, 6, 8, generator=gen), torch.randn(1, c, 12, 16, generator=gen)
    motion = torch.randn(1, 2, 12, 16, generator=gen) * 3
    w = lr.fuse_attention.weights()
    with torch.no_grad():
        for sampling in ("exact", "official"):
            expected = creff_reference(lr_feat, key, motion, w["q"], w["k"], w["v"], 7, sampling=sampling)
            torch.testing.assert_close(lr.fuse(lr_feat, key, motion, sampling), expected, rtol=1e-5, atol=1e-5)


def test_fuse_attention_is_the_official_module_signature():
    """forward(warped HR feature, LR feature) = U + A; zero motion leaves the key unwarped."""
    fa = FuseAttention(4, window=3)
    gen = torch.Generator().manual_seed(5)
    lr_feat, key = torch.randn(1, 4, 3, 5, generator=gen), torch.randn(1, 4, 5, 9, generator=gen)
    w = fa.weights()
    with torch.no_grad():
        expected = creff_reference(lr_feat, key, torch.zeros(1, 2, 5, 9), w["q"], w["k"], w["v"], 3)
        torch.testing.assert_close(fa(key, lr_feat), expected, rtol=1e-5, atol=1e-5)
