"""`python -m arseg.export` selects the official pipeline by default, per dataset and backbone,
and each option overrides one choice (docs/conversion.md). Manifests only: the end-to-end
behaviour is test_official_end_to_end.py's."""
import json

import pytest
import torch

from arseg.export import main as export_main
from arseg.official import CAMVID_STATS, CITYSCAPES_BISENET_STATS, IMAGENET_STATS, build, official_state_dict

WIDTHS = {"psp18": 0.1, "bise18": 0.125, "psp18-semseg": 0.0625}


def checkpoints(tmp_path, arch, classes, distinct_decoder):
    torch.manual_seed(3)
    hr, lr = build(arch, "hr", classes, WIDTHS[arch]), build(arch, "lr", classes, WIDTHS[arch])
    with torch.no_grad():
        if not distinct_decoder:
            lr.final_conv.weight.copy_(hr.final_conv.weight)
            lr.final_conv.bias.copy_(hr.final_conv.bias)
    torch.save(official_state_dict(hr), tmp_path / "hr.pth")
    torch.save(official_state_dict(lr), tmp_path / "lr.pth")


def export(tmp_path, arch, dataset, *options, distinct_decoder=True):
    checkpoints(tmp_path, arch, 12 if dataset == "camvid" else 19, distinct_decoder)
    out = tmp_path / "bundle"
    code = export_main(["--hr", str(tmp_path / "hr.pth"), "--lr", str(tmp_path / "lr.pth"), "--arch", arch,
                        "--classes", dataset, "--out", str(out), "--width", str(WIDTHS[arch]), *options])
    assert code == 0
    with open(out / "arseg.json") as fh:
        return json.load(fh), out


@pytest.mark.parametrize("arch,dataset,stats,labels", [
    ("psp18", "camvid", CAMVID_STATS, "align-corners-via-input"),
    ("bise18", "camvid", CAMVID_STATS, "half-pixel-via-stride"),
    ("bise18", "cityscapes", CITYSCAPES_BISENET_STATS, "half-pixel-via-stride"),
    ("psp18-semseg", "cityscapes", IMAGENET_STATS, "align-corners-via-input"),
])
def test_official_by_default_per_dataset_and_backbone(tmp_path, capsys, arch, dataset, stats, labels):
    m, out = export(tmp_path, arch, dataset)
    assert m["input"]["mean"] == pytest.approx(list(stats[0])) and m["input"]["std"] == pytest.approx(list(stats[1]))
    assert m["input"]["lrInput"] == "hr-tensor-align-corners"
    assert m["motion"] == {"composition": "official", "resize": "align-corners"}
    assert m["creff"]["sampling"] == "official"
    assert m["logitsUpsampling"] == labels
    assert m["networks"]["lrDecoder"] == "lr_decoder.onnx" and (out / "lr_decoder.onnx").is_file()
    captured = capsys.readouterr()
    assert "exported as lr_decoder.onnx" in captured.err and "official pipeline" in captured.out


def test_tied_decoders_export_one(tmp_path):
    m, out = export(tmp_path, "bise18", "camvid", distinct_decoder=False)
    assert "lrDecoder" not in m["networks"] and not (out / "lr_decoder.onnx").exists()


def test_project_pipeline_is_what_bundles_had(tmp_path, capsys):
    m, out = export(tmp_path, "bise18", "camvid", "--pipeline", "project")
    assert m["input"]["mean"] == pytest.approx(list(IMAGENET_STATS[0]))
    assert m["input"]["lrInput"] == "frame-swscale"
    assert m["motion"] == {"composition": "bilinear", "resize": "cell-centres"}
    assert m["creff"]["sampling"] == "exact"
    assert m["logitsUpsampling"] == "half-pixel"
    assert "lrDecoder" not in m["networks"] and not (out / "lr_decoder.onnx").exists()
    assert "not used (--lr-decoder shared)" in capsys.readouterr().err


def test_each_option_overrides_one_choice(tmp_path):
    m, _ = export(tmp_path, "psp18", "camvid", "--normalisation", "imagenet", "--motion-resize", "nearest",
                  "--lr-decoder", "shared", "--logits-upsampling", "align-corners")
    assert m["input"]["mean"] == pytest.approx(list(IMAGENET_STATS[0]))
    assert m["motion"] == {"composition": "official", "resize": "nearest"}
    assert m["logitsUpsampling"] == "align-corners"
    assert "lrDecoder" not in m["networks"]
    # the rest stays official
    assert m["input"]["lrInput"] == "hr-tensor-align-corners" and m["creff"]["sampling"] == "official"
    m, _ = export(tmp_path, "psp18", "camvid", "--pipeline", "project", "--normalisation", "dataset",
                  "--logits-upsampling", "official", "--motion-composition", "official")
    assert m["input"]["mean"] == pytest.approx(list(CAMVID_STATS[0]))
    assert m["logitsUpsampling"] == "align-corners-via-input"
    assert m["motion"] == {"composition": "official", "resize": "cell-centres"}


def test_bad_choices_are_usage_errors(tmp_path):
    checkpoints(tmp_path, "psp18", 12, True)
    base = ["--hr", str(tmp_path / "hr.pth"), "--lr", str(tmp_path / "lr.pth"), "--arch", "psp18",
            "--classes", "camvid", "--out", str(tmp_path / "b"), "--width", "0.1"]
    for bad in (["--pipeline", "mine"], ["--motion-resize", "bicubic"], ["--lr-input", "frame"],
                ["--normalisation", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            export_main(base + bad)
        assert exit_info.value.code == 2
