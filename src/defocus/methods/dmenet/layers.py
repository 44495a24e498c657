"""DMENet building blocks (release ``model.py``): conv + BN blocks with the release's
initialisers, TF1 nearest resize and 'SAME' padding, and the VGG19 encoder with its input
conventions."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from defocus.methods.backbones import vgg_features, vgg_normalise

#: LeakyReLU slope everywhere (release: ``tf.nn.leaky_relu(x, 0.2)``)
LRELU = 0.2
#: input sides must be multiples of the encoder's stride at conv5_4 (4 poolings of 2)
STRIDE = 16
#: Caffe VGG mean in BGR order, 0-255 (release ``model.py`` ``VGG19_down``: ``VGG_MEAN``)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
#: input conventions of the VGG19 encoder: torchvision's weights or the Caffe / release ones
VGG_INPUTS = ("torchvision", "caffe")


def caffe_normalise(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> BGR in [0, 255] minus :data:`CAFFE_MEAN_BGR` (release ``VGG19_down``:
    ``rgb * 255``, channels split and re-stacked as blue, green, red, each minus its mean)."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an RGB batch of shape (N, 3, H, W), got {tuple(x.shape)}")
    mean = torch.tensor(CAFFE_MEAN_BGR, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x.flip(1) * 255.0 - mean


def _normaliser(vgg_input: str):
    if vgg_input not in VGG_INPUTS:
        raise ValueError(f"vgg_input must be one of {VGG_INPUTS}, got {vgg_input!r}")
    return caffe_normalise if vgg_input == "caffe" else vgg_normalise


def _ch(c: int, width: float) -> int:
    return max(1, round(c * width))


def _init_relu(conv: nn.Conv2d) -> None:
    """TF ``variance_scaling_initializer()`` (factor 2, fan-in, truncated normal), bias 0.

    TF's truncated normal draws from N(0, s^2) cut at 2 s with s = sqrt(1.3 * 2 / fan_in) (the
    1.3 corrects the truncation); release ``w_init_relu``.
    """
    fan_in = conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]
    std = math.sqrt(1.3 * 2.0 / fan_in)
    nn.init.trunc_normal_(conv.weight, std=std, a=-2 * std, b=2 * std)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _init_sigmoid(conv: nn.Conv2d) -> None:
    """TF ``xavier_initializer()`` (Glorot uniform), bias 0; release ``w_init_sigmoid``."""
    nn.init.xavier_uniform_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _bn(c: int) -> nn.BatchNorm2d:
    # TensorLayer BatchNormLayer defaults: decay 0.9 (= PyTorch momentum 0.1), epsilon 1e-5
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)


def conv_bn(c_in: int, c_out: int, k: int = 3, act: bool = True) -> nn.Sequential:
    """Conv k x k (stride 1, size kept) + BN (+ LeakyReLU 0.2), He-initialised.

    The release pads every 3x3 conv with a 1-px TF ``"Symmetric"`` pad, which for a 1-px pad is
    edge replication (``padding_mode="replicate"``).
    """
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, padding_mode="replicate" if k > 1 else "zeros")
    _init_relu(conv)
    layers: list[nn.Module] = [conv, _bn(c_out)]
    if act:
        layers.append(nn.LeakyReLU(LRELU))
    return nn.Sequential(*layers)


def resize_nearest_tf(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize as TF1 ``resize_nearest_neighbor(align_corners=True)``.

    Output pixel ``i`` takes input ``round(i * (n_in - 1) / (n_out - 1))`` (rounding half away
    from zero, ``roundf``). The release uses it for the decoder's x2 upsampling
    (``UpSampling2dLayer(method=1, align_corners=True)``) and for the aux targets
    (``DownSampling2dLayer(method=1, align_corners=True)``).
    """

    def index(n_in: int, n_out: int) -> torch.Tensor:
        if n_out == 1:
            return torch.zeros(1, dtype=torch.long, device=x.device)
        scale = (n_in - 1) / (n_out - 1)
        i = torch.arange(n_out, dtype=torch.float64, device=x.device)
        return torch.floor(i * scale + 0.5).clamp_(max=n_in - 1).long()

    h, w = int(size[0]), int(size[1])
    x = x.index_select(-2, index(x.shape[-2], h))
    return x.index_select(-1, index(x.shape[-1], w))


class ResBlock(nn.Module):
    """Refinement block (release ``u0/c{i}_1, c{i}_2`` + shortcut ``u0/c_res{i}``).

    ``out = LReLU(BN(conv3(LReLU(BN(conv3(x)))))) + LReLU(BN(conv1(x)))``.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(c, c, 3), conv_bn(c, c, 3))
        self.shortcut = conv_bn(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class AuxHead(nn.Module):
    """Auxiliary map head: conv3x3 + BN + LReLU, conv3x3 to 1 + BN + sigmoid (``u*_aux``)."""

    def __init__(self, c_in: int, c_mid: int) -> None:
        super().__init__()
        self.body = conv_bn(c_in, c_mid, 3)
        out = nn.Conv2d(c_mid, 1, 3, padding=1, padding_mode="replicate")
        _init_sigmoid(out)
        self.out = nn.Sequential(out, _bn(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.body(x)))


def _encoder(weights: str | None, pretrained: bool, width: float) -> nn.Sequential:
    """VGG19 features (torchvision layout) with the release's edge-replicating 3x3 padding.

    ``weights`` may name the release's Caffe ``vgg19.npy`` (converted by
    :func:`defocus.methods.dmenet.release.vgg19_npy_state_dict`; input ``vgg_input="caffe"``).
    """
    if pretrained and str(weights) == "release":
        raise FileNotFoundError(
            "vgg_weights: release names the authors' vgg19.npy, which the workflow fetches "
            "(rule fetch_vgg19); outside it, give the path to vgg19.npy"
        )
    if pretrained and weights is not None and str(weights).lower().endswith(".npy"):
        from defocus.methods.dmenet.release import vgg19_npy_state_dict

        if width != 1.0:
            raise ValueError(f"vgg19.npy holds the full VGG19: width must be 1, got {width}")
        if not Path(weights).is_file():
            raise FileNotFoundError(f"VGG weights file not found: {weights} (vgg_weights)")
        feats = vgg_features("vgg19", None, False, width)
        feats.load_state_dict(vgg19_npy_state_dict(weights, feats))
        feats.init = f"file:{weights}"
    else:
        feats = vgg_features("vgg19", weights, pretrained, width)
    for m in feats.modules():
        if isinstance(m, nn.Conv2d):
            # same weights; only the border changes (release pads with TF "Symmetric", 1 px)
            m.padding_mode = "replicate"
    return feats


def _conv_out_channels(seq: nn.Sequential) -> int:
    return [m for m in seq if isinstance(m, nn.Conv2d)][-1].out_channels


def _pad_same(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """TF 'SAME' padding for a k x k, stride s conv (extra pixel at the bottom / right)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)
