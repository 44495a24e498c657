"""VGG backbones shared by the learned methods (DeFusionNet: VGG16, DMENet: VGG19).

:func:`vgg_features` returns the convolutional part of VGG (Simonyan & Zisserman, ICLR'15,
Table 1, configurations D = VGG16 and E = VGG19) as an ``nn.Sequential`` laid out exactly like
torchvision's ``vgg16().features`` / ``vgg19().features`` (same module indices, so the same
state-dict keys). Its weights come from

* ``weights="imagenet"`` (or ``None``): torchvision's standard ImageNet weights
  (``VGG16_Weights.IMAGENET1K_V1`` / ``VGG19_Weights.IMAGENET1K_V1``), read from the torch hub
  cache or downloaded when the network is reachable; when neither works,
  :class:`BackboneWeightsError` stops the job and names the file torchvision expects, where
  to put it offline, and the config keys. A backbone is randomly initialised only when the
  config says ``pretrained: false`` (the demo and the tests), never as a fallback;
* ``weights="/path/to/file.pth"``: a local state dict, either a whole torchvision VGG
  (``features.N.weight`` ...; the classifier is ignored) or its ``features`` alone
  (``N.weight`` ...). A named file that is missing or does not fit is an error, not a warning.

The returned module records what it was initialised from in its attribute ``init``
(:data:`INIT_IMAGENET`, :data:`INIT_RANDOM` or ``"file:<path>"``); a method's checkpoint
and prediction files carry that value (:meth:`defocus.methods.base.Method.provenance`).

The ImageNet weights expect RGB in [0, 1] normalised by :data:`VGG_MEAN` / :data:`VGG_STD`
(torchvision's ``ImageClassification`` transform); :func:`vgg_normalise` applies it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

#: per-channel RGB mean / std of the ImageNet training set, as used by torchvision's VGG
#: weights (``VGG16_Weights.IMAGENET1K_V1.transforms()``), for inputs scaled to [0, 1]
VGG_MEAN = (0.485, 0.456, 0.406)
VGG_STD = (0.229, 0.224, 0.225)

#: conv widths per block, "M" = 2x2 max pooling (Simonyan & Zisserman 2015, Table 1, D and E)
VGG_CFGS: dict[str, list[int | str]] = {
    name: [v if v == "M" else int(v) for v in spec.split()]
    for name, spec in {
        "vgg16": "64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M",
        "vgg19": "64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512 M",
    }.items()
}


#: values of a backbone's ``init`` attribute (what its weights were initialised from)
INIT_IMAGENET = "imagenet"
INIT_RANDOM = "random"


class BackboneWeightsError(RuntimeError):
    """``pretrained: true`` but the ImageNet weights cannot be had: the job stops at its start."""


def imagenet_weights_file(arch: str) -> tuple[str, str, Path]:
    """``(url, file name, cache path)`` of torchvision's ImageNet weights of ``arch``.

    torchvision looks for the file in ``torch.hub.get_dir()/checkpoints/<file name>`` before it
    downloads it (``torch.hub.load_state_dict_from_url``).
    """
    from torchvision.models import VGG16_Weights, VGG19_Weights

    _cfg(arch)
    w = {"vgg16": VGG16_Weights.IMAGENET1K_V1, "vgg19": VGG19_Weights.IMAGENET1K_V1}[arch]
    name = w.url.rsplit("/", 1)[-1]
    return w.url, name, Path(torch.hub.get_dir()) / "checkpoints" / name


def vgg_normalise(x: torch.Tensor) -> torch.Tensor:
    """Normalise an RGB batch ``(N, 3, H, W)`` in [0, 1] with :data:`VGG_MEAN` / :data:`VGG_STD`."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an RGB batch of shape (N, 3, H, W), got {tuple(x.shape)}")
    mean = torch.tensor(VGG_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(VGG_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def vgg_taps(arch: str) -> dict[str, int]:
    """Index in :func:`vgg_features` of the ReLU after each block's last conv, and of pool5.

    Names follow the Caffe model: ``conv1_2 ... conv5_3`` for VGG16, ``conv1_2, conv2_2,
    conv3_4, conv4_4, conv5_4`` for VGG19, plus ``pool5``. The feature after index ``k`` is
    ``features[: k + 1](x)``.
    """
    cfg = _cfg(arch)
    taps: dict[str, int] = {}
    idx, block, conv = 0, 1, 0
    for v in cfg:
        if v == "M":
            taps[f"conv{block}_{conv}"] = idx - 1  # the ReLU just before this pool
            if block == 5:
                taps["pool5"] = idx
            idx += 1
            block, conv = block + 1, 0
        else:
            conv += 1
            idx += 2  # conv + ReLU
    return taps


def _cfg(arch: str) -> list[int | str]:
    if arch not in VGG_CFGS:
        raise ValueError(f"unknown VGG architecture {arch!r}; expected one of {sorted(VGG_CFGS)}")
    return VGG_CFGS[arch]


def _make_features(arch: str, width: float) -> nn.Sequential:
    """VGG conv layers (no batch norm), channel counts scaled by ``width``, torchvision layout."""
    layers: list[nn.Module] = []
    c_in = 3
    for v in _cfg(arch):
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            c_out = max(1, round(int(v) * width))
            conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
            # torchvision's VGG initialisation (He et al. 2015, fan_out), biases zero
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.ReLU(inplace=True)]
            c_in = c_out
    return nn.Sequential(*layers)


def _download_imagenet(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict of ``arch`` (hub cache first, then the network)."""
    from torchvision.models import VGG16_Weights, VGG19_Weights

    w = {"vgg16": VGG16_Weights.IMAGENET1K_V1, "vgg19": VGG19_Weights.IMAGENET1K_V1}[arch]
    # check_hash: the file name carries the first digits of its sha256 (torchvision's
    # convention); a corrupt or tampered download is refused instead of cached
    return w.get_state_dict(progress=False, check_hash=True)


def _features_only(state: dict, source: str) -> dict[str, torch.Tensor]:
    """Keep the ``features`` part of a VGG state dict (keys ``N.weight`` / ``N.bias``)."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    out = {}
    for k, v in state.items():
        if k.startswith("features."):
            out[k[len("features.") :]] = v
        elif k.split(".")[0].isdigit():
            out[k] = v
    if not out:
        raise ValueError(
            f"{source} holds no VGG feature weights: expected keys 'features.N.weight' "
            f"(a torchvision VGG) or 'N.weight' (its features); got e.g. {list(state)[:4]}"
        )
    return out


def vgg_features(
    arch: str = "vgg16",
    weights: str | os.PathLike | None = "imagenet",
    pretrained: bool = True,
    width: float = 1.0,
) -> nn.Sequential:
    """The convolutional part of VGG16 / VGG19, optionally with ImageNet weights.

    Parameters
    ----------
    arch : {"vgg16", "vgg19"}
        Configuration D or E of Simonyan & Zisserman (2015), Table 1.
    weights : "imagenet", None or path
        ``"imagenet"`` / ``None``: torchvision's standard weights (cache or download;
        :class:`BackboneWeightsError` when neither works). A path: a local state dict (whole
        torchvision VGG or its ``features``).
    pretrained : bool
        ``False`` keeps torchvision's random initialisation and ignores ``weights``.
    width : float
        Multiplier of every conv's channel count (1 = the published network). Widths other than
        1 exist only for fast demos and tests and cannot be pretrained.

    Returns
    -------
    torch.nn.Sequential
        Same module indices as ``torchvision.models.vgg16().features`` (see :func:`vgg_taps`);
        its attribute ``init`` says what its weights came from.

    Raises
    ------
    BackboneWeightsError
        ``pretrained`` with ``weights="imagenet"`` and the weights neither in the hub cache
        nor downloadable.
    """
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    feats = _make_features(arch, width)
    feats.init = INIT_RANDOM
    if not pretrained:
        return feats
    if width != 1.0:
        raise ValueError(
            f"pretrained {arch} weights exist only at width 1, got width={width}; "
            "set pretrained: false for a narrow demo backbone"
        )
    if weights is None or str(weights) == "imagenet":
        try:
            state = _download_imagenet(arch)
        except Exception as e:  # offline, proxy, corrupt cache: never a silent random init
            url, name, cached = imagenet_weights_file(arch)
            raise BackboneWeightsError(
                f"pretrained: true, but torchvision's ImageNet {arch} weights could not be "
                f"loaded ({type(e).__name__}: {e}). torchvision expects the file {name} at "
                f"{cached}. Offline: download {url} on a machine with internet and copy it to "
                f"that path (or set TORCH_HOME), or name a local copy with the method "
                f"parameter vgg_weights (config methods.params.<method>.vgg_weights). Only for "
                f"a demo, pretrained: false trains from random weights (tables then say "
                f"backbone_init random)."
            ) from e
        source = f"torchvision {arch} ImageNet weights"
        init = INIT_IMAGENET
    else:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"VGG weights file not found: {path} (parameter vgg_weights)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        source = str(path)
        init = f"file:{path}"
    state = _features_only(state, source)
    try:
        feats.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{source} does not fit a {arch} backbone: {e}") from e
    feats.init = init
    return feats
