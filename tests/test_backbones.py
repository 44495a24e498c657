"""VGG backbones: torchvision layout, taps, weights from a local file / the hub / nowhere.

No test touches the network: the ImageNet download is monkeypatched.
"""

import urllib.error

import pytest
import torch

from defocus.methods import backbones
from defocus.methods.backbones import (
    VGG_MEAN,
    VGG_STD,
    BackboneWeightsError,
    imagenet_weights_file,
    vgg_features,
    vgg_normalise,
    vgg_taps,
)


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_layout_is_torchvisions(arch):
    """Same module indices and shapes as torchvision's ``features`` (so weights load as is)."""
    import torchvision

    ref = getattr(torchvision.models, arch)().features
    mine = vgg_features(arch, pretrained=False)
    assert [type(m) for m in mine] == [type(m) for m in ref]
    a, b = ref.state_dict(), mine.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)


def test_taps_follow_the_caffe_names():
    # torchvision vgg16().features: ReLU after conv1_2 at 3, ..., conv5_3 at 29, pool5 at 30
    assert vgg_taps("vgg16") == {
        "conv1_2": 3,
        "conv2_2": 8,
        "conv3_3": 15,
        "conv4_3": 22,
        "conv5_3": 29,
        "pool5": 30,
    }
    assert vgg_taps("vgg19")["conv5_4"] == 35 and vgg_taps("vgg19")["pool5"] == 36
    feats = vgg_features("vgg16", pretrained=False, width=1 / 16)
    x = torch.rand(1, 3, 64, 64)
    sizes = {n: feats[: i + 1](x).shape[-1] for n, i in vgg_taps("vgg16").items()}
    assert sizes == {"conv1_2": 64, "conv2_2": 32, "conv3_3": 16, "conv4_3": 8, "conv5_3": 4,
                     "pool5": 2}  # fmt: skip
    with pytest.raises(ValueError, match="unknown VGG"):
        vgg_taps("vgg11")


def test_normalise():
    x = torch.tensor(VGG_MEAN).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    assert torch.allclose(vgg_normalise(x), torch.zeros(2, 3, 4, 4))
    y = vgg_normalise(torch.ones(1, 3, 2, 2))
    assert torch.allclose(y[0, :, 0, 0], (1 - torch.tensor(VGG_MEAN)) / torch.tensor(VGG_STD))
    with pytest.raises(ValueError, match="RGB batch"):
        vgg_normalise(torch.ones(3, 2, 2))


@pytest.fixture(scope="module")
def vgg16_state():
    torch.manual_seed(5)
    return vgg_features("vgg16", pretrained=False).state_dict()


@pytest.mark.parametrize("form", ["whole", "features"])
def test_local_file(tmp_path, vgg16_state, form):
    """A whole torchvision VGG state dict (classifier ignored) or its features alone."""
    if form == "whole":
        state = {f"features.{k}": v for k, v in vgg16_state.items()}
        state["classifier.0.weight"] = torch.zeros(2, 2)
    else:
        state = vgg16_state
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    feats = vgg_features("vgg16", weights=str(path))
    for k, v in feats.state_dict().items():
        assert torch.equal(v, vgg16_state[k]), k


def test_local_file_errors(tmp_path, vgg16_state):
    with pytest.raises(FileNotFoundError, match="vgg_weights"):
        vgg_features("vgg16", weights=str(tmp_path / "absent.pth"))
    path = tmp_path / "vgg16.pth"
    torch.save(vgg16_state, path)
    with pytest.raises(ValueError, match="does not fit a vgg19"):
        vgg_features("vgg19", weights=str(path))
    torch.save({"fc.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no VGG feature weights"):
        vgg_features("vgg16", weights=str(tmp_path / "other.pth"))
    with pytest.raises(ValueError, match="width 1"):
        vgg_features("vgg16", weights=str(path), width=0.5)


def test_imagenet_from_cache(monkeypatch, vgg16_state):
    """``weights='imagenet'`` takes torchvision's state dict (here: a stand-in, no network)."""
    whole = {f"features.{k}": v for k, v in vgg16_state.items()}
    monkeypatch.setattr(backbones, "_download_imagenet", lambda arch: whole)
    feats = vgg_features("vgg16", weights="imagenet")
    assert torch.equal(feats[0].weight, vgg16_state["0.weight"])


def test_imagenet_unreachable_stops_with_where_to_put_the_file(monkeypatch, tmp_path):
    def offline(arch):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(backbones, "_download_imagenet", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(BackboneWeightsError) as info:
        vgg_features("vgg16", weights="imagenet")
    msg = str(info.value)
    # the file torchvision expects, its cache path, the URL and the config keys
    assert "vgg16-397923af.pth" in msg
    assert str(tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth") in msg
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in msg
    assert "vgg_weights" in msg and "pretrained: false" in msg
    url, name, cached = imagenet_weights_file("vgg19")
    assert name == "vgg19-dcbb9e9d.pth" and cached.parent.name == "checkpoints"


def test_init_records_what_was_loaded(monkeypatch, tmp_path, vgg16_state):
    assert vgg_features("vgg16", pretrained=False, width=0.25).init == "random"
    whole = {f"features.{k}": v for k, v in vgg16_state.items()}
    monkeypatch.setattr(backbones, "_download_imagenet", lambda arch: whole)
    assert vgg_features("vgg16", weights="imagenet").init == "imagenet"
    path = tmp_path / "v.pth"
    torch.save(vgg16_state, path)
    assert vgg_features("vgg16", weights=str(path)).init == f"file:{path}"


def test_not_pretrained_never_downloads(monkeypatch):
    def boom(arch):
        raise AssertionError("must not be called")

    monkeypatch.setattr(backbones, "_download_imagenet", boom)
    feats = vgg_features("vgg19", weights="imagenet", pretrained=False, width=0.25)
    assert feats.init == "random"


@pytest.mark.parametrize("method", ["defusionnet", "dmenet"])
def test_pretrained_method_without_imagenet_weights_stops(monkeypatch, tmp_path, method):
    """A paper-default learned method (pretrained: true) offline stops when its network is
    built at the start of training, naming the file; it never trains from random weights."""
    from defocus.methods.registry import get_method

    def offline(arch):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(backbones, "_download_imagenet", offline)
    m = get_method(method)
    assert m.params["pretrained"] is True and m.backbone_init() == "imagenet"
    with pytest.raises(BackboneWeightsError, match=r"vgg1[69]-\w+\.pth"):
        if method == "defusionnet":
            m.build()
        else:
            from defocus.methods.dmenet import Trainer

            Trainer(dict(m.params))
    # random init only where the config says so, and the row then says so
    assert get_method(method, {"pretrained": False}).backbone_init() == "random"
