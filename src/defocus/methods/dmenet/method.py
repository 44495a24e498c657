"""DMENet: deep defocus map estimation using domain adaptation (Lee, Lee, Cho & Lee, CVPR 2019).

A PyTorch re-implementation of the authors' TensorFlow 1 / TensorLayer release
(github.com/codeslake/DMENet, ``model.py``, ``main.py``, ``config.py``, ``utils.py``; cited
below as "release"). Nothing is copied; every architectural and training fact is cited to the
file it comes from. The paper's own statements are cited as "paper" (Sec. 4-5).

Subnetworks (paper Sec. 4; release ``model.py``)
-------------------------------------------------------
* **B, blur estimation** (:class:`BlurNet`): a U-Net whose encoder is VGG19 conv1_1 .. conv5_4
  (ImageNet weights) with skips from conv1_2, conv2_2, conv3_4, conv4_4 and conv5_4
  (``VGG19_down``: ``d0 .. d4``). Decoder (``UNet_up``) per level: nearest x2 upsampling, concat
  with the skip, then 3 x (conv 3x3 + BN + LeakyReLU 0.2) of 256 / 128 / 64 channels; the last
  (full-resolution) level has a single 64-channel conv; its output is the feature the
  discriminator sees (``gan_feat``). Then 7 residual blocks (two 3x3-64 conv+BN+LReLU; the
  shortcut is a 1x1-64 conv+BN+LReLU) and a head 3x3-64, 3x3-32 (conv+BN+LReLU) and 3x3-1,
  sigmoid. Five auxiliary heads (``u4_aux .. u0_aux``) at 1/16 .. 1/1 of the input: conv 3x3
  (256 / 128 / 64 / 32 / 32) + BN + LReLU, conv 3x3 to 1 + BN + sigmoid.
* **D, domain adaptation** (:class:`Discriminator`, ``feature_discriminator``): on the 64-channel
  ``gan_feat``: 5 x conv 4x4 stride 2 ('SAME' padding, no bias) of 64 / 128 / 256 / 512 / 1
  channels, BN + LReLU 0.2 after the first four; a map of logits.
* **C, content preservation** (:class:`ContentNet`): a second, frozen VGG19; MSE between its
  conv4_4 features (paper: "l = 4", release ``perceptual_synthetic_out = d3``) of the predicted
  map and of the GT map, each replicated to 3 channels.
* **S, sharpness calibration** (:class:`CalibrationNet`, ``Binary_Net``): 1x1 convs 3 x 64,
  3 x 32, 3 x 16 (each + BN + LReLU 0.2) and a 1x1 conv to one logit, applied to B's
  predicted map of a real image with a binary blur mask; sigmoid cross-entropy.

Losses and updates (release ``main.py``; paper Sec. 4)
-------------------------------------------------------
``L_g = L_B + lambda_aux sum_k L_aux,k + lambda_C L_C + lambda_S L_S + lambda_adv L_adv`` trains
B and S; ``L_d`` trains D; each iteration runs one D update, then one B/S update on the same
batch (release: ``sess.run(optim_d)`` then ``sess.run(optim_main)``). With ``r`` the real
batches (the unlabelled ``real`` images and the ``binary``-labelled ones; release feeds both,
"Flickr" and "CUHK", to D):

* ``L_B``: MSE of B's map against the normalised GT defocus map of a synthetic image;
* ``L_aux,k``: MSE of aux head k against the GT nearest-downsampled (TF ``align_corners``) to
  its size;
* ``L_adv = mean_r BCE(D(f_r), 1)``; ``L_d = lambda_adv (BCE(D(f_syn), 1) + mean_r BCE(D(f_r), 0))``
  (release: ``(2 L_syn + L_real + L_real_no_label) / 2 * lambda_adv``; z = 1 for synthetic);
* ``L_C``: MSE on VGG19 conv4_4; ``L_S``: BCE of S's logits against the binary mask.

GT normalisation (parameter ``target``): ``"sigma"`` trains on ``sigma / sigma_max`` (release
``utils.get_images`` mode 'DEPTH', the variant for the new SYNDOF generator). Our SYNDOF
renderer writes sigma = (CoC - 1) / 4 px with max CoC 29 px, so ``sigma_max = (29 - 1) / 4 =
7`` (release README / ``utils.py``: "sigma = (max_coc-1)/4, when max_coc = 29, max_sigma =
7"). ``"coc"`` trains on ``CoC / max_coc`` with ``max_coc = 15``, as the release does with its
own released SYNDOF (``utils.py`` lines 38-43, ``config.TRAIN.max_coc``; the manifest's ``coc``
column, see :mod:`defocus.datasets.dmenet_release`), and is what the authors' checkpoint
outputs. :meth:`DMENet.predict_raw` returns sigma in px: ``map * sigma_max`` for ``"sigma"``;
``max(0, (max_coc * map - 1) / 2)`` for ``"coc"`` (release ``main.py`` lines
500-501, ``evaluation/RTF/quantitative_RTF.m`` lines 47-48).

Ablations (paper Sec. 5.1, the figure of incremental subnetworks) are parameters of this one
implementation: ``dmenet@subnets=B`` (DMENet_B), ``dmenet@subnets=BD``,
``dmenet@subnets=BDC``, ``dmenet`` (DMENet_BDCS) and ``dmenet@aux=false`` (BDCS without the
auxiliary loss).

The authors' release as data (:mod:`defocus.methods.dmenet_release`): their trained checkpoint
``DMENet_BDCS.npz`` converted by variable name (``dmenet@weights=release``, or ``defocus
predict --method dmenet --checkpoint DMENet_BDCS.npz``), their Caffe ``vgg19.npy`` as the
encoder and content-network weights (``vgg_weights``), and their training and test data
(:mod:`defocus.datasets.dmenet_release`, ``target="coc"``).

Deliberate differences from the release, each a consequence of the PyTorch port:

* the VGG19 weights are torchvision's by default (RGB in [0, 1], ``vgg_normalise``); the
  release uses the Caffe VGG19 (``vgg19.npy``: BGR in [0, 255] minus ``[103.939, 116.779,
  123.68]``, release ``model.py`` ``VGG19_down``), which ``vgg_weights`` = a ``vgg19.npy``
  path (or ``release`` in the workflow) loads. Each input convention belongs to its weights:
  ``vgg_input="caffe"`` feeds the release's (:func:`caffe_normalise`), which the authors'
  checkpoint and their VGG19 need.
* release batch norms have no scale (``gamma_init=None`` in ``UNet_up``,
  ``feature_discriminator`` and ``Binary_Net``: TensorLayer 1.11 then creates no ``gamma``);
  here the scale exists but is held at 1 and not trained (``bn_scale=False``, the default;
  ``True`` trains it). A converted release checkpoint sets it to 1.
* ``augment`` scales a synthetic image's sigma label with the image when it resizes it (the
  release resizes the label map without rescaling its values, ``utils.py``
  ``crop_pair_with_different_shape_images``; a sigma in pixels must follow the pixel grid).
* batches are drawn at random per iteration (resumable, ``batch_rng``) instead of per-epoch
  shuffled passes; the release's optional pre-training (``--is_pretrain``) and Gaussian-noise
  augmentation (``--is_noise``, off by default) are not implemented.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from defocus.methods.backbones import vgg_features, vgg_normalise, vgg_taps
from defocus.methods.base import Method, MethodError, check_image

log = logging.getLogger(__name__)

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
#: LeakyReLU slope everywhere (release: ``tf.nn.leaky_relu(x, 0.2)``)
LRELU = 0.2
#: input sides must be multiples of the encoder's stride at conv5_4 (4 poolings of 2)
STRIDE = 16
#: valid subnetwork letters (paper Sec. 4: blur estimation, domain adaptation, content, sharpness)
SUBNETS = "BDCS"
#: parameters that fix the network's shape or the meaning of its output; a checkpoint fixes them
ARCH_KEYS = ("width", "subnets", "aux", "sigma_max", "vgg_input", "target", "max_coc")
#: Caffe VGG mean in BGR order, 0-255 (release ``model.py`` ``VGG19_down``: ``VGG_MEAN``)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
#: input conventions of the VGG19 encoder: torchvision's weights or the Caffe / release ones
VGG_INPUTS = ("torchvision", "caffe")
#: training targets: sigma / sigma_max (our SYNDOF render) or CoC / max_coc (release data)
TARGETS = ("sigma", "coc")


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
    :func:`defocus.methods.dmenet_release.vgg19_npy_state_dict`; input ``vgg_input="caffe"``).
    """
    if pretrained and str(weights) == "release":
        raise FileNotFoundError(
            "vgg_weights: release names the authors' vgg19.npy, which the workflow fetches "
            "(rule fetch_vgg19); outside it, give the path to vgg19.npy"
        )
    if pretrained and weights is not None and str(weights).lower().endswith(".npy"):
        from defocus.methods.dmenet_release import vgg19_npy_state_dict

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


def _pad_same(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """TF 'SAME' padding for a k x k, stride s conv (extra pixel at the bottom / right)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


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


def _freeze_bn_scale(net: nn.Module) -> None:
    """Batch norms without a trained scale, as the release's (``gamma_init=None``): scale 1,
    excluded from the gradient (the optimisers skip parameters without gradients)."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.ones_(m.weight)
            m.weight.requires_grad_(False)


def _check_subnets(subnets: Any) -> str:
    s = str(subnets).upper()
    if not s or "B" not in s or set(s) - set(SUBNETS) or len(set(s)) != len(s):
        raise ValueError(
            f"subnets must be letters of {SUBNETS!r} including 'B' (e.g. 'B', 'BD', 'BDC', "
            f"'BDCS'), got {subnets!r}"
        )
    return "".join(c for c in SUBNETS if c in s)


class Trainer:
    """Networks, optimisers and the alternating D / G update of one DMENet configuration.

    Parameters
    ----------
    params : dict
        :attr:`DMENet.defaults` with overrides.
    """

    def __init__(self, params: dict[str, Any]) -> None:
        p = self.params = params
        self.subnets = _check_subnets(p["subnets"])
        w, weights, pre = float(p["width"]), p["vgg_weights"], bool(p["pretrained"])
        vin = str(p["vgg_input"])
        self.model = DMENetModel(w, bool(p["aux"]), "S" in self.subnets, weights, pre, vin)
        c64 = self.model.blur.feat_channels
        self.disc = Discriminator(c64, w) if "D" in self.subnets else None
        if not bool(p["bn_scale"]):
            for net in (self.model, self.disc):
                if net is not None:
                    _freeze_bn_scale(net)
        self.content = ContentNet(w, weights, pre, vin) if "C" in self.subnets else None
        betas = (float(p["beta1"]), 0.999)  # TF Adam defaults beta2 0.999, eps 1e-8
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=float(p["lr"]), betas=betas)
        self.opt_d = None
        if self.disc is not None:
            lr_d = float(p["lr"]) * float(p["lambda_lr_d"])
            self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=lr_d, betas=betas)

    def _disc_trainable(self) -> None:
        """D's parameters get gradients again (its BN scales stay frozen without bn_scale)."""
        assert self.disc is not None
        self.disc.requires_grad_(True)
        if not bool(self.params["bn_scale"]):
            for m in self.disc.modules():
                if isinstance(m, nn.BatchNorm2d) and m.weight is not None:
                    m.weight.requires_grad_(False)

    @property
    def real_roles(self) -> list[str]:
        """Batches fed to B besides the synthetic one."""
        roles = []
        if "D" in self.subnets:
            roles.append("real")
        if "S" in self.subnets:
            roles.append("binary")
        return roles

    def extra_state(self) -> dict[str, Any]:
        """Objects saved with the checkpoint besides the model (D and its optimiser)."""
        if self.disc is None:
            return {}
        return {"disc": self.disc, "opt_d": self.opt_d}

    def to(self, device: str) -> Trainer:
        self.model.to(device)
        for m in (self.disc, self.content):
            if m is not None:
                m.to(device)
        return self

    # -- losses ----------------------------------------------------------------------------
    def generator_losses(
        self, out: dict[str, dict[str, Any]], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_g`` without the adversarial term, and its parts (release ``loss_main``)."""
        p = self.params
        y = batch["synthetic_gt"]
        syn = out["synthetic"]
        pred = syn["map"].float()
        parts = {"blur": F.mse_loss(pred, y)}
        total = parts["blur"]
        if syn["aux"]:
            parts["aux"] = sum(
                F.mse_loss(a.float(), resize_nearest_tf(y, a.shape[-2:])) for a in syn["aux"]
            )
            total = total + float(p["lambda_aux"]) * parts["aux"]
        if self.content is not None:
            parts["content"] = F.mse_loss(self.content(pred).float(), self.content(y).float())
            total = total + float(p["lambda_c"]) * parts["content"]
        if "calib" in out.get("binary", {}):
            logits = out["binary"]["calib"].float()
            parts["calib"] = F.binary_cross_entropy_with_logits(logits, batch["binary_gt"])
            total = total + float(p["lambda_s"]) * parts["calib"]
        return total, parts

    def _real_feats(self, out: dict[str, dict[str, Any]]) -> list[torch.Tensor]:
        return [out[r]["feat"] for r in ("real", "binary") if r in out]

    def discriminator_loss(self, out: dict[str, dict[str, Any]]) -> torch.Tensor:
        """``L_d`` on detached features (release ``loss_d``; z = 1 synthetic, 0 real)."""
        assert self.disc is not None
        bce = F.binary_cross_entropy_with_logits
        ls = self.disc(out["synthetic"]["feat"].detach()).float()
        loss = bce(ls, torch.ones_like(ls))
        reals = [self.disc(f.detach()).float() for f in self._real_feats(out)]
        loss_r = sum(bce(lr, torch.zeros_like(lr)) for lr in reals) / len(reals)
        # release: (2 L_syn + L_real + L_real_no_label) / 2 * lambda_adv
        return float(self.params["lambda_adv"]) * (loss + loss_r)

    def adversarial_loss(self, out: dict[str, dict[str, Any]]) -> torch.Tensor:
        """``L_adv``: real features classified as synthetic (release ``loss_g_feature``)."""
        assert self.disc is not None
        logits = [self.disc(f).float() for f in self._real_feats(out)]
        bce = F.binary_cross_entropy_with_logits
        return sum(bce(lg, torch.ones_like(lg)) for lg in logits) / len(logits)

    # -- one iteration ---------------------------------------------------------------------
    def step(self, net: nn.Module, batch: dict[str, torch.Tensor], iteration: int = 0):
        """One D update then one B/S update on ``batch`` (``step_fn`` of the shared loop).

        B's forward is shared by both updates: B does not change between them, so its maps
        and features equal those of the release's second forward pass.
        """
        del iteration
        out = net(batch["synthetic"], batch.get("real"), batch.get("binary"))
        logs: dict[str, float] = {}
        if self.disc is not None:
            assert self.opt_d is not None
            # the discriminator's lr follows the generator's schedule (release: one
            # learning_rate variable, D's optimiser uses learning_rate * lambda_lr_d)
            for g in self.opt_d.param_groups:
                g["lr"] = self.opt_g.param_groups[0]["lr"] * float(self.params["lambda_lr_d"])
            self._disc_trainable()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d = self.discriminator_loss(out)
            loss_d.backward()
            _all_reduce_grads(self.disc)
            self.opt_d.step()
            logs["disc"] = float(loss_d.detach())
        total, parts = self.generator_losses(out, batch)
        if self.disc is not None:
            self.disc.requires_grad_(False)  # D is not updated by L_g
            parts["adv"] = self.adversarial_loss(out)
            total = total + float(self.params["lambda_adv"]) * parts["adv"]
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        if self.disc is not None:
            self._disc_trainable()
        return {
            "loss": float(total.detach()),
            **{k: float(v.detach()) for k, v in parts.items()},
            **logs,
        }


def _all_reduce_grads(module: nn.Module) -> None:
    """Average gradients over ranks for a module outside DistributedDataParallel (D)."""
    from defocus.train import distributed as dist

    world = dist.world_size()
    if world <= 1:
        return
    for prm in module.parameters():
        if prm.grad is not None:
            torch.distributed.all_reduce(prm.grad)
            prm.grad.div_(world)


# -- data -----------------------------------------------------------------------------------
def augment(
    image: np.ndarray,
    label: np.ndarray | None,
    rng: np.random.Generator,
    crop: int,
    max_side: int,
    scale_label: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize if needed, random ``crop x crop``, random vertical flip, random rot90.

    Release ``utils.crop_pair_with_different_shape_images`` / ``random_crop``: an image whose
    short side is <= ``crop`` is resized (bilinear) so that it becomes ``crop`` (+1 px), one whose
    short side exceeds ``max_side`` (800) is resized down to it; then a random crop, a flip of
    the row axis with probability 1/2 (``flip_axis(axis=0)``) and a rotation by k x 90 degrees,
    k uniform in {1, 2, 3, 4} (4 = none). ``label`` (HxW float) follows the image.

    ``scale_label``: the label is a length in pixels (sigma or CoC) and is multiplied by the
    resize factor (geometric mean of the two axes' factors), so that a full-resolution render
    shrunk to ``max_side`` keeps labels in the pixels of the image the network sees. Binary
    masks are not scaled. The release never scales (its labels keep pre-resize values).
    """
    import cv2

    h, w = image.shape[:2]
    short = min(h, w)
    ratio = crop / short if short <= crop else (max_side / short if short > max_side else None)
    if ratio is not None:
        size = (int(math.floor(w * ratio)) + 1, int(math.floor(h * ratio)) + 1)
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        if label is not None:
            label = cv2.resize(label, size, interpolation=cv2.INTER_LINEAR)
            if scale_label:
                factor = math.sqrt(size[0] / w * size[1] / h)
                label = label * np.float32(factor)
        h, w = image.shape[:2]
    y0, x0 = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    image = image[y0 : y0 + crop, x0 : x0 + crop]
    label = None if label is None else label[y0 : y0 + crop, x0 : x0 + crop]
    if rng.random() < 0.5:
        image = image[::-1]
        label = None if label is None else label[::-1]
    k = int(rng.integers(1, 5)) % 4
    image = np.ascontiguousarray(np.rot90(image, k))
    label = None if label is None else np.ascontiguousarray(np.rot90(label, k))
    return image, label


def _load_role(role: str, manifests: list[Path], target: str = "sigma") -> list[dict[str, str]]:
    """Rows of the ``train`` split usable for ``role`` (paths only; images are read lazily).

    ``target`` ("sigma" or "coc") names the label column of the synthetic role: ``defocus``
    (sigma .npy) or ``coc`` (CoC .npy in the release's units, :mod:`dmenet_release`).
    """
    from defocus.io.manifest import read_manifest

    col = "coc" if target == "coc" else "defocus"
    rows = []
    for m in manifests:
        df = read_manifest(m, split="train")
        if role == "synthetic":
            if col not in df.columns:
                what = "sigma .npy" if col == "defocus" else "CoC .npy of the released SYNDOF"
                raise ValueError(
                    f"role 'synthetic' with target={target!r} needs manifests with a {col!r} "
                    f"({what}) column; {m} has {list(df.columns)}"
                )
            df = df[df[col] != ""]
        elif role == "binary":
            df = df[df["gt"] != ""]
        rows += df.to_dict("records")
    if not rows:
        raise ValueError(
            f"no usable 'train' rows for role {role!r} in {[str(m) for m in manifests]}"
        )
    return rows


def _read(row: dict[str, str], role: str, sigma_max: float, target: str = "sigma", max_coc=15.0):
    from defocus.io.image import read_gray, read_image

    image = read_image(row["image"])
    label = None
    if role == "synthetic" and target == "coc":
        # target CoC / max_coc (release utils.get_images, mode 'DEPTH', lines 38-43)
        label = np.load(row["coc"]).astype(np.float32) / np.float32(max_coc)
    elif role == "synthetic":
        # target in [0, 1]: sigma / sigma_max (release utils.get_images, mode 'DEPTH')
        label = np.load(row["defocus"]).astype(np.float32) / np.float32(sigma_max)
    elif role == "binary":
        g = read_gray(row["gt"])
        top = np.iinfo(g.dtype).max if np.issubdtype(g.dtype, np.integer) else 1.0
        label = (g > top / 2).astype(np.float32)  # manifest contract: 255 = blurred
    if label is not None and label.shape != image.shape[:2]:
        raise ValueError(f"{role}: label of {row['image']} has shape {label.shape}")
    return image, label


class DMENet(Method):
    """DMENet (Lee et al. CVPR'19): defocus (sigma) map estimation with domain adaptation.

    Training roles for :meth:`fit`: ``synthetic`` (SYNDOF manifests with ``defocus`` sigma
    maps, or ``coc`` maps with ``target="coc"``; always), ``real`` (unlabelled real defocused
    images; needed with D) and ``binary`` (real images with binary blur masks, 255 = blurred;
    needed with S, also fed to D). Only the ``train`` split of each manifest is used.

    ``weights="release"`` (or a path to ``DMENet_BDCS.npz``) converts the authors' trained
    TensorLayer checkpoint instead of training (:mod:`defocus.methods.dmenet_release`); it
    needs ``vgg_input="caffe"``, ``target="coc"`` and ``width=1``, which
    :meth:`release_params` sets.
    """

    name = "dmenet"
    fidelity = {
        "implementation": "faithful",
        "differs": (
            "the authors' release (model.py, main.py) in PyTorch; trained here on the "
            "authors' released data (dmenet_release) or this project's SYNDOF render, or "
            "the authors' checkpoint converted (dmenet@weights=release: the checkpoint the "
            "README says replaces the lost paper one)"
        ),
        "paper_images": 8231,
    }
    learned = True
    has_raw = True
    raw_unit = "px"
    citation = "Lee et al., DMENet, CVPR 2019"
    defaults: ClassVar[dict[str, Any]] = {
        # --- network and ablations (paper Sec. 4, 5.1) ---
        "subnets": "BDCS",  # subnetworks; "B", "BD", "BDC", "BDCS" = DMENet_B .. DMENet_BDCS
        "aux": True,  # scale-wise aux loss (paper Sec. 4.1); false = BDCS w/o aux (Sec. 5.1)
        "width": 1.0,  # channel multiplier of every layer; 1 = published (< 1: demo/tests only)
        # "imagenet" (torchvision VGG19), a local state-dict file, or the release's Caffe
        # vgg19.npy (release README step 6; needs vgg_input "caffe")
        "vgg_weights": "imagenet",
        "pretrained": True,  # paper Sec. 4.1: "pretrained VGG19" encoder; C is the same VGG19
        # encoder input convention: "torchvision" (RGB, ImageNet mean/std) or "caffe" (BGR,
        # 0-255 minus the Caffe mean: release model.py VGG19_down; the release's weights)
        "vgg_input": "torchvision",
        # --- losses (paper Sec. 5: the same values; release config.py) ---
        "lambda_adv": 1.0e-3,  # config.TRAIN.lambda_adv
        "lambda_c": 1.0e-4,  # config.TRAIN.lambda_perceptual
        "lambda_s": 2.0e-2,  # config.TRAIN.lambda_binary
        "lambda_aux": 1.0,  # paper: lambda_aux = 1 (release adds the aux sum unweighted)
        "lambda_lr_d": 1.0,  # config.TRAIN.lambda_lr_d: D's lr = lr * this
        # batch-norm scale: the release has none (BatchNormLayer gamma_init=None, model.py):
        # false = held at 1; true = trained (PyTorch's default BN)
        "bn_scale": False,
        # --- optimisation (release config.py) ---
        "lr": 1.0e-4,  # config.TRAIN.lr_init (Adam)
        "beta1": 0.9,  # config.TRAIN.beta1
        "lr_decay": 0.8,  # config.TRAIN.lr_decay
        "lr_decay_every": 20,  # epochs (config.TRAIN.decay_every); 1 epoch = N_synthetic / batch
        "batch_size": 3,  # config.TRAIN.batch_size (per role)
        "crop": 240,  # config.TRAIN.height / width
        "max_side": 800,  # utils.crop_pair...: images with a short side > 800 are shrunk to it
        # the release trains open-ended (n_epoch = 10000, stopped by hand) and the paper gives
        # no count: 100k iterations ~ 36 epochs of 8,231 SYNDOF images at batch 3 (our choice)
        "iterations": 100000,
        "ckpt_every": 1000,  # checkpoint period (iterations) of the shared loop
        # threads decoding and augmenting the next batches (3 roles x batch PNGs per step)
        # while the network trains; speed only, the batches do not depend on it
        "loader_workers": 2,
        # --- GT normalisation / output unit ---
        # target = sigma / sigma_max; our renderer: sigma = (CoC - 1)/4 with max CoC 29 px ->
        # 7 (release utils.py: "when max_coc = 29, max_sigma = 7"); the authors' own released
        # SYNDOF maps are divided by 15 (config.TRAIN.max_coc) instead: target "coc"
        "sigma_max": 7.0,
        # "sigma": learn sigma / sigma_max; "coc": learn CoC / max_coc (the released SYNDOF's
        # labels, utils.py lines 38-43) with sigma = max(0, (CoC - 1) / 2) (main.py line 500)
        "target": "sigma",
        "max_coc": 15.0,  # config.TRAIN.max_coc
        # "" = train (fit); "release" = the authors' DMENet_BDCS.npz (fetched and converted);
        # or a path to a TensorLayer .npz checkpoint of the release's model.py
        "weights": "",
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        if p["weights"]:
            self._apply_release_arch()
        p["subnets"] = _check_subnets(p["subnets"])
        if not isinstance(p["aux"], bool):
            raise ValueError(f"aux must be true or false, got {p['aux']!r}")
        if int(p["crop"]) % STRIDE or int(p["crop"]) < 2 * STRIDE:
            raise ValueError(f"crop must be a multiple of {STRIDE} and >= {2 * STRIDE}")
        if not float(p["sigma_max"]) > 0:
            raise ValueError(f"sigma_max must be > 0, got {p['sigma_max']!r}")
        if p["vgg_input"] not in VGG_INPUTS:
            raise ValueError(f"vgg_input must be one of {VGG_INPUTS}, got {p['vgg_input']!r}")
        caffe_vgg = str(p["vgg_weights"]).lower().endswith(".npy") or p["vgg_weights"] == "release"
        if caffe_vgg and p["vgg_input"] != "caffe":
            raise ValueError(
                f"vgg_weights {p['vgg_weights']} is the Caffe VGG19 (BGR, 0-255 minus the mean): "
                "set vgg_input: caffe"
            )
        if p["target"] not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {p['target']!r}")
        if not float(p["max_coc"]) > 0:
            raise ValueError(f"max_coc must be > 0, got {p['max_coc']!r}")
        if int(p["batch_size"]) < 2:
            raise ValueError("batch_size must be >= 2 (batch norm in training)")
        self._net: BlurNet | None = None

    # -- training --------------------------------------------------------------------------
    def trainer(self) -> Trainer:
        """The networks and optimisers of the current parameters (seed torch first)."""
        return Trainer(self.params)

    def fit(self, data: dict[str, list[Path]], cfg: dict | None, workdir: Path) -> Path:
        """Train with the shared loop; returns ``workdir/checkpoint.pt``.

        ``data``: ``{role: [manifest, ...]}`` with roles ``synthetic``, ``real``, ``binary``
        (``real_no_label``, the release's name of the unlabelled images, counts as ``real``).
        ``cfg``: ``seed``, ``device`` and optionally ``stop_after`` (interrupt after that many
        iterations; used by the resume test).
        """
        from defocus.train.loop import TrainConfig, train

        if self.params["weights"]:
            return self._import_weights(data, Path(workdir))
        cfg = dict(cfg or {})
        seed, device = int(cfg.get("seed", 0)), str(cfg.get("device", self.device))
        self.device = device
        p = self.params
        data = dict(data)
        if "real_no_label" in data:  # the release's name of the unlabelled role (main.py)
            data["real"] = [*data.get("real", []), *data.pop("real_no_label")]
        unknown = set(data) - {"synthetic", "real", "binary"}
        if unknown or "synthetic" not in data:
            raise ValueError(
                f"dmenet trains on roles 'synthetic' (required), 'real' (alias "
                f"'real_no_label') and 'binary'; got {sorted(data)}"
            )
        torch.manual_seed(seed)  # initialisation depends on the seed only (resume rebuilds it)
        tr = self.trainer()
        for role in tr.real_roles:
            if role not in data:
                what = "unlabelled real images for D" if role == "real" else "binary masks for S"
                raise ValueError(f"subnets={tr.subnets!r} needs the role {role!r} ({what})")
        sm, target, max_coc = float(p["sigma_max"]), str(p["target"]), float(p["max_coc"])
        roles = ["synthetic", *tr.real_roles]
        if "D" in tr.subnets and "binary" in data and "binary" not in roles:
            roles.append("binary")  # release: D also sees the labelled real images
        rows = {r: _load_role(r, data[r], target) for r in roles}
        log.info("dmenet %s: %s", tr.subnets, {r: len(v) for r, v in rows.items()})
        bs, crop, max_side = int(p["batch_size"]), int(p["crop"]), int(p["max_side"])
        per_epoch = max(1, math.ceil(len(rows["synthetic"]) / bs))
        sched = torch.optim.lr_scheduler.StepLR(
            tr.opt_g, step_size=int(p["lr_decay_every"]) * per_epoch, gamma=float(p["lr_decay"])
        )

        def sample_batch(rng: np.random.Generator, dev: str) -> dict[str, torch.Tensor]:
            batch = {}
            for role in roles:
                ims, labels = [], []
                for k in rng.integers(0, len(rows[role]), size=bs):
                    im, lab = augment(
                        *_read(rows[role][int(k)], role, sm, target, max_coc),
                        rng,
                        crop,
                        max_side,
                        scale_label=role == "synthetic",
                    )
                    ims.append(im)
                    labels.append(lab)
                x = torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float().div_(255.0)
                batch[role] = x.to(dev)
                if role != "real":
                    batch[f"{role}_gt"] = (
                        torch.from_numpy(np.stack(labels))[:, None].float().to(dev)
                    )
            return batch

        tr.to(device)
        tcfg = TrainConfig(
            iterations=int(p["iterations"]),
            seed=seed,
            ckpt_every=int(p["ckpt_every"]),
            device=device,
            loader_workers=int(p["loader_workers"]),
            extra={"method": self.name, "params": dict(p)},
        )
        ckpt = train(
            tr.model,
            tr.opt_g,
            tcfg,
            workdir,
            sample_batch,
            scheduler=sched,
            step_fn=tr.step,
            extra_state=tr.extra_state(),
            stop_after=cfg.get("stop_after"),
        )
        self._net = tr.model.blur.eval()
        return ckpt

    # -- the authors' checkpoint ------------------------------------------------------------
    #: parameters the release's network has (model.py: full width, aux heads, Caffe VGG input,
    #: CoC / 15 output)
    RELEASE_ARCH: ClassVar[dict[str, Any]] = {
        "width": 1.0,
        "aux": True,
        "vgg_input": "caffe",
        "target": "coc",
        "max_coc": 15.0,
    }

    def _apply_release_arch(self) -> None:
        """Set the release's network parameters where the caller left the defaults."""
        for k, v in self.RELEASE_ARCH.items():
            if self.params[k] == self.defaults[k]:
                self.params[k] = v

    def _check_release_arch(self, source: Any) -> None:
        p = self.params
        bad = {k: p[k] for k, v in self.RELEASE_ARCH.items() if p[k] != v}
        if bad:
            raise MethodError(
                f"{source} is the authors' TensorLayer checkpoint, which needs "
                f"{self.RELEASE_ARCH}; the parameters say {bad} (leave them unset: "
                "a release checkpoint sets them)"
            )

    def _import_weights(self, data: Any, workdir: Path) -> Path:
        """``fit`` with ``weights`` set: convert the release checkpoint (no training)."""
        from defocus.methods.dmenet_release import release_state_dict
        from defocus.train.loop import save_checkpoint

        src = (data or {}).get("weights") if isinstance(data, dict) else None
        if not src:
            raise ValueError(
                f"weights={self.params['weights']!r}: expected data {{'weights': [file.npz]}}"
            )
        self._check_release_arch(src[0])
        state = release_state_dict(Path(src[0]), self.build())
        ckpt = workdir / "release" / "checkpoint.pt"
        save_checkpoint(
            ckpt,
            {
                "model": state["model"],
                "iteration": 0,
                "config": {
                    "method": self.name,
                    "params": dict(self.params),
                    "source": str(src[0]),
                },
            },
        )
        log.info("DMENet: converted the release checkpoint %s (no training)", src[0])
        self._net = self._blur_from(state["model"])
        return ckpt

    def _blur_from(self, state: dict[str, torch.Tensor]) -> BlurNet:
        net = self.build()
        net.load_state_dict(state)
        return net.blur.to(self.device).eval()

    # -- checkpoint ------------------------------------------------------------------------
    def build(self) -> DMENetModel:
        """B (+ S) for the current parameters, without pretrained weights (for :meth:`load`)."""
        p = self.params
        return DMENetModel(
            float(p["width"]),
            bool(p["aux"]),
            "S" in p["subnets"],
            None,
            pretrained=False,
            vgg_input=str(p["vgg_input"]),
        )

    def load(self, checkpoint: Path | None) -> None:
        """Load ``model.pt`` (product), a training ``checkpoint.pt`` written by :meth:`fit`, or
        the authors' TensorLayer checkpoint (``DMENet_BDCS.npz``).

        For an ``.npz`` the release's network parameters (:attr:`RELEASE_ARCH`) are set
        where the caller left the defaults; parameters that contradict them are an error.
        """
        super().load(checkpoint)
        from defocus.train.loop import load_for_inference

        if checkpoint is not None and Path(checkpoint).suffix.lower() == ".npz":
            from defocus.methods.dmenet_release import release_state_dict

            self._apply_release_arch()
            self._check_release_arch(checkpoint)
            if not self.params["weights"]:
                self.params["weights"] = str(checkpoint)  # provenance: the authors' weights
            if not Path(checkpoint).is_file():
                raise MethodError(f"dmenet checkpoint not found: {checkpoint}")
            self._net = self._blur_from(release_state_dict(Path(checkpoint), self.build())["model"])
            return

        state = load_for_inference(checkpoint, self.name, self.params, ARCH_KEYS)
        net = self.build()
        net.load_state_dict(state["model"])
        self._net = net.blur.to(self.device).eval()

    # -- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Gaussian sigma map (px, >= 0) of the image's size: B's map times ``sigma_max``
        (``target="sigma"``), or ``max(0, (max_coc * map - 1) / 2)`` (``target="coc"``:
        release ``main.py`` lines 500-501).

        The image is padded (edge replication) to multiples of 16 and the map cropped back
        (the release instead crops the input to multiples of 16, ``utils.refine_image``).
        """
        image = check_image(image)
        if self._net is None:
            raise MethodError("dmenet has no weights: call load(checkpoint) or fit() first")
        net = self._net.to(self.device).eval()
        h, w = image.shape[:2]
        x = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float().div_(255.0)
        ph, pw = (-h) % STRIDE, (-w) % STRIDE
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        out = net(x, with_aux=False)["map"][0, 0, :h, :w].float()
        return self.map_to_sigma(out.cpu().numpy())

    def map_to_sigma(self, out: np.ndarray) -> np.ndarray:
        """B's output map in [0, 1] -> sigma in px (see :meth:`predict_raw`)."""
        out = np.asarray(out, np.float32)
        if self.params["target"] == "coc":
            sigma = (out * np.float32(self.params["max_coc"]) - 1.0) / 2.0
            return np.maximum(sigma, 0.0).astype(np.float32)
        return (np.maximum(out, 0.0) * np.float32(self.params["sigma_max"])).astype(np.float32)
