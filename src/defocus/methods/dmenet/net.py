"""DMENet networks (paper Sec. 4; release ``model.py``): B (:class:`BlurNet`), D
(:class:`Discriminator`), C (:class:`ContentNet`), S (:class:`CalibrationNet`), and B + S as
one module (:class:`DMENetModel`), with their layer widths."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from defocus.methods.backbones import vgg_taps
from defocus.methods.dmenet.layers import (
    LRELU,
    STRIDE,
    AuxHead,
    ResBlock,
    _bn,
    _ch,
    _conv_out_channels,
    _encoder,
    _init_relu,
    _init_sigmoid,
    _normaliser,
    _pad_same,
    conv_bn,
    resize_nearest_tf,
)

#: encoder skips (release ``VGG19_down``: d0..d4 = conv1_2, conv2_2, conv3_4, conv4_4, conv5_4)
SKIPS = ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4")
#: decoder widths of the 1/8, 1/4, 1/2 levels (release ``UNet_up``: u3, u2, u1 c1..c3)
DECODER = (256, 128, 64)
#: convs per decoder level (u3, u2, u1: c1..c3) and width of the full-resolution conv (u0/c_init)
DECODER_CONVS = 3
FULLRES = 64
#: first-conv widths of the aux heads at 1/16, 1/8, 1/4, 1/2, 1/1 (``u4_aux .. u0_aux`` c1)
AUX = (256, 128, 64, 32, 32)
#: residual refinement blocks after the decoder (release: ``for i in np.arange(7)``), 64 wide
N_RES = 7
#: refinement head widths before the 1-channel conv (release ``uf/c1``, ``uf/c2``)
HEAD = (64, 32)
#: discriminator widths, conv 4x4 stride 2 (release ``feature_discriminator`` h0..h4)
DISC = (64, 128, 256, 512)
#: calibration network, 1x1 convs: 3 of each width (release ``Binary_Net`` l1, l2, l3)
CALIB = (64, 32, 16)
CALIB_REPEAT = 3


class BlurNet(nn.Module):
    """Network B (paper Sec. 4.1): VGG19 U-Net + residual refinement, maps in [0, 1].

    Parameters
    ----------
    width : float
        Channel multiplier of every layer (1 = the published network; < 1 for demos and tests).
    aux : bool
        Build the five auxiliary heads (scale-wise auxiliary loss, paper Sec. 4.1).
    vgg_weights, pretrained
        Encoder weights (see :func:`defocus.methods.backbones.vgg_features`).
    vgg_input : {"torchvision", "caffe"}
        Input convention of the encoder's weights (:func:`caffe_normalise` for the release's).
    """

    def __init__(
        self,
        width: float = 1.0,
        aux: bool = True,
        vgg_weights: str | None = "imagenet",
        pretrained: bool = True,
        vgg_input: str = "torchvision",
    ) -> None:
        super().__init__()
        self.normalise = _normaliser(vgg_input)
        self.encoder = _encoder(vgg_weights, pretrained, width)
        taps = vgg_taps("vgg19")
        self.taps = [taps[name] for name in SKIPS]
        skip_ch = [_conv_out_channels(self.encoder[: t + 1]) for t in self.taps]
        # decoder: levels at 1/8, 1/4, 1/2 (3 convs each), then 1/1 (one conv)
        self.up = nn.ModuleList()
        c_prev = skip_ch[4]
        for level, c in enumerate(DECODER):
            c_out = _ch(c, width)
            c_in = c_prev + skip_ch[3 - level]
            convs = [conv_bn(c_in if i == 0 else c_out, c_out) for i in range(DECODER_CONVS)]
            self.up.append(nn.Sequential(*convs))
            c_prev = c_out
        c64 = _ch(FULLRES, width)
        self.up_full = conv_bn(c_prev + skip_ch[0], c64)
        self.feat_channels = c64
        # aux heads on conv5_4 (1/16) and after each decoder level (1/8 .. 1/1)
        self.aux = None
        if aux:
            aux_in = [skip_ch[4], *(_ch(c, width) for c in DECODER), c64]
            self.aux = nn.ModuleList(
                AuxHead(ci, _ch(cm, width)) for ci, cm in zip(aux_in, AUX, strict=True)
            )
        self.refine = nn.Sequential(*(ResBlock(c64) for _ in range(N_RES)))
        last = nn.Conv2d(_ch(HEAD[1], width), 1, 3, padding=1, padding_mode="replicate")
        _init_sigmoid(last)
        self.head = nn.Sequential(
            conv_bn(c64, _ch(HEAD[0], width)),
            conv_bn(_ch(HEAD[0], width), _ch(HEAD[1], width)),
            last,
        )

    def skips(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features d0..d4 (conv1_2 .. conv5_4) of an RGB batch in [0, 1]."""
        h = self.normalise(x)
        out, start = [], 0
        for t in self.taps:
            h = self.encoder[start : t + 1](h)
            out.append(h)
            start = t + 1
        return out

    def forward(self, x: torch.Tensor, with_aux: bool = True) -> dict[str, Any]:
        """``{"map": (N,1,H,W) in [0,1], "aux": [5 maps, 1/16 .. 1/1] or [], "feat": (N,64,H,W)}``.

        ``x``: RGB in [0, 1], sides multiples of 16.
        """
        if x.shape[-2] % STRIDE or x.shape[-1] % STRIDE:
            raise ValueError(f"input sides must be multiples of {STRIDE}, got {tuple(x.shape)}")
        d = self.skips(x)
        use_aux = with_aux and self.aux is not None
        aux = [self.aux[0](d[4])] if use_aux else []
        n = d[4]
        for level, block in enumerate(self.up):
            skip = d[3 - level]
            n = block(torch.cat([resize_nearest_tf(n, skip.shape[-2:]), skip], 1))
            if use_aux:
                aux.append(self.aux[level + 1](n))
        n = self.up_full(torch.cat([resize_nearest_tf(n, d[0].shape[-2:]), d[0]], 1))
        feat = n
        if use_aux:
            aux.append(self.aux[4](n))
        out = torch.sigmoid(self.head(self.refine(n)))
        return {"map": out, "aux": aux, "feat": feat}


class Discriminator(nn.Module):
    """Network D (paper Sec. 4.2; release ``feature_discriminator``): a map of domain logits.

    Five conv 4x4 stride 2 ('SAME', no bias: ``b_init=None``), BN + LReLU 0.2 after the first
    four; logit 1 = synthetic (release: synthetic labelled ``ones_like``, real ``zeros_like``).
    """

    def __init__(self, in_channels: int = 64, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in DISC:
            conv = nn.Conv2d(c_in, _ch(c, width), 4, stride=2, bias=False)
            _init_relu(conv)
            layers.append(nn.Sequential(conv, _bn(conv.out_channels), nn.LeakyReLU(LRELU)))
            c_in = conv.out_channels
        last = nn.Conv2d(c_in, 1, 4, stride=2, bias=False)
        _init_sigmoid(last)
        layers.append(nn.Sequential(last))
        self.layers = nn.ModuleList(layers)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        h = feat
        for layer in self.layers:
            h = layer(_pad_same(h, 4, 2))
        return h


class ContentNet(nn.Module):
    """Network C (paper Sec. 4.3): frozen VGG19 up to conv4_4 (ReLU), on 3-channel maps.

    Its parameters never require gradients and it always runs in eval mode; gradients still
    flow through it into the map it is given.
    """

    def __init__(
        self,
        width: float = 1.0,
        vgg_weights: str | None = "imagenet",
        pretrained: bool = True,
        vgg_input: str = "torchvision",
    ) -> None:
        super().__init__()
        self.normalise = _normaliser(vgg_input)
        feats = _encoder(vgg_weights, pretrained, width)
        self.features = feats[: vgg_taps("vgg19")["conv4_4"] + 1]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ContentNet:
        """Always eval mode (frozen), whatever ``mode`` says."""
        return super().train(False)

    def forward(self, blur_map: torch.Tensor) -> torch.Tensor:
        """conv4_4 features of a (N,1,H,W) map in [0, 1] replicated to RGB (release)."""
        return self.features(self.normalise(blur_map.expand(-1, 3, -1, -1)))


class CalibrationNet(nn.Module):
    """Network S (paper Sec. 4.4; release ``Binary_Net``): per-pixel 1x1 MLP, one logit."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in CALIB:
            for _ in range(CALIB_REPEAT):
                layers.append(conv_bn(c_in, _ch(c, width), k=1))
                c_in = _ch(c, width)
        last = nn.Conv2d(c_in, 1, 1)
        _init_sigmoid(last)
        layers.append(last)
        self.body = nn.Sequential(*layers)

    def forward(self, blur_map: torch.Tensor) -> torch.Tensor:
        return self.body(blur_map)


class DMENetModel(nn.Module):
    """B and S, the networks trained by ``L_g`` (D and C live outside: see :class:`Trainer`).

    ``forward(x, real, binary)`` runs B on each domain's batch separately (batch-norm statistics
    per domain, as the release's three ``UNet_up`` calls) and S on the binary batch's map, so
    one call (one DistributedDataParallel forward) uses every parameter.
    """

    def __init__(
        self,
        width: float = 1.0,
        aux: bool = True,
        calibrate: bool = True,
        vgg_weights: str | None = "imagenet",
        pretrained: bool = True,
        vgg_input: str = "torchvision",
    ) -> None:
        super().__init__()
        self.blur = BlurNet(width, aux, vgg_weights, pretrained, vgg_input)
        self.calib = CalibrationNet(width) if calibrate else None

    def forward(
        self,
        x: torch.Tensor,
        real: torch.Tensor | None = None,
        binary: torch.Tensor | None = None,
    ) -> dict[str, dict[str, Any]]:
        out = {"synthetic": self.blur(x)}
        if real is not None:
            out["real"] = self.blur(real, with_aux=False)
        if binary is not None:
            out["binary"] = self.blur(binary, with_aux=False)
            if self.calib is not None:
                out["binary"]["calib"] = self.calib(out["binary"]["map"])
        return out
