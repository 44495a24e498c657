"""DHDE's network (Park et al. CVPR'17, Figure 5 and Sec. 4.1; ``DHDE_train.prototxt``):
the deep feature f_C and the classifier over ``[f_D, f_G, f_S, f_C]``."""

from __future__ import annotations

import math

import torch
from torch import nn

from defocus.features.handcrafted import FEATURE_DIM, FEATURE_NAMES
from defocus.features.patches import N_LABELS

#: dimension of the deep feature f_C (Figure 5: conv4 has 25 outputs)
DEEP_DIM = 25
#: patches per CNN forward pass at inference (cache-sized; speed only)
CNN_CHUNK = 128


def parse_features(spec: str) -> tuple[tuple[int, ...], bool]:
    """``"fB"`` -> ``((0, 1, 2), True)``: indices of hand-crafted blocks (fD, fG, fS), use f_C.

    Accepts fD, fG, fS, fH (= fD+fG+fS), fC, fB (= fH+fC) and ``+``-joined combinations.
    """
    names = {"fH": FEATURE_NAMES, "fB": (*FEATURE_NAMES, "fC")}
    parts: list[str] = []
    for item in str(spec).split("+"):
        item = item.strip()
        parts.extend(names.get(item, (item,)))
    bad = [p for p in parts if p not in (*FEATURE_NAMES, "fC")]
    if bad or not parts:
        raise ValueError(
            f"unknown feature(s) {bad or [spec]} in features={spec!r}; expected fD, fG, fS, fH, "
            "fC, fB or a '+'-joined combination such as 'fD+fS+fC'"
        )
    hand = tuple(sorted({FEATURE_NAMES.index(p) for p in parts if p != "fC"}))
    return hand, "fC" in parts


class DHDENet(nn.Module):
    """Deep feature extractor (Figure 5) + classifier (Sec. 4.1), as in DHDE_train.prototxt.

    ``f_C``: conv3x3-25, ReLU, maxpool 3/3, conv3x3-50, ReLU, maxpool 3/3, conv3x3-50, ReLU,
    conv1x1-25, ReLU on a 27x27 RGB patch (Caffe pools round up: 27 -> 25 -> 9 -> 7 -> 3 ->
    1). Classifier: FC300 (no bias: the release freezes it at 0, lr_mult 0, since the
    scale constants act as biases, Sec. 5.2), ReLU, dropout 0.5, FC150, ReLU, dropout 0.5,
    FC11 and (release) a ReLU on the logits; softmax in the loss.

    Parameters
    ----------
    hand : tuple of int
        Hand-crafted blocks used (0 = f_D, 1 = f_G, 2 = f_S), 40 dims each.
    use_cnn : bool
        Whether the deep feature f_C is part of the input.
    relu_logits : bool
        ReLU on the last layer (``relu3`` in DHDE_train.prototxt).
    input_scale : float
        Features are fed as ``input_scale * f`` and RGB in 0..255, as the release's uint8
        databases (``dbScale = 255``, ParameterSetting.m).
    n_labels : int
        Number of classes (11, Sec. 5.1).
    quantise : bool
        Round the scaled hand-crafted features to uint8 as the release does in its training
        databases (``WriteToDB.m``: ``uint8(dbScale * features)``) and at inference
        (``DHDE_defocus_estimation.m``: ``uint8(dbScale * fDCT)`` ...): MATLAB's ``uint8``
        rounds half away from zero and saturates to 0..255, so values below 0.5 / 255 reach
        the network as 0.
    """

    def __init__(
        self,
        hand: tuple[int, ...] = (0, 1, 2),
        use_cnn: bool = True,
        relu_logits: bool = True,
        input_scale: float = 255.0,
        n_labels: int = N_LABELS,
        quantise: bool = True,
    ) -> None:
        super().__init__()
        if not hand and not use_cnn:
            raise ValueError("DHDENet needs at least one feature (hand-crafted or f_C)")
        self.hand = tuple(hand)
        self.use_cnn = bool(use_cnn)
        self.input_scale = float(input_scale)
        self.quantise = bool(quantise)
        idx = [i for b in self.hand for i in range(b * FEATURE_DIM, (b + 1) * FEATURE_DIM)]
        self.register_buffer("hand_index", torch.tensor(idx, dtype=torch.long), persistent=False)
        self.cnn = None
        if self.use_cnn:
            self.cnn = nn.Sequential(
                nn.Conv2d(3, 25, 3),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 3, ceil_mode=True),
                nn.Conv2d(25, 50, 3),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 3, ceil_mode=True),
                nn.Conv2d(50, 50, 3),
                nn.ReLU(inplace=True),
                nn.Conv2d(50, DEEP_DIM, 1),
                nn.ReLU(inplace=True),
                nn.Flatten(),
            )
        d_in = len(idx) + (DEEP_DIM if self.use_cnn else 0)
        layers: list[nn.Module] = [
            nn.Linear(d_in, 300, bias=False),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(300, 150),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(150, n_labels),
        ]
        if relu_logits:
            layers.append(nn.ReLU())
        self.classifier = nn.Sequential(*layers)
        self._init_caffe()

    def _init_caffe(self) -> None:
        # DHDE_train.prototxt: conv "xavier" (Caffe: uniform +-sqrt(3 / fan_in)), bias 0.1;
        # fc gaussian std 0.01, biases 0 (fc1) / 0.1 (fc2, fc3)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                a = math.sqrt(3.0 / fan_in)
                nn.init.uniform_(m.weight, -a, a)
                nn.init.constant_(m.bias, 0.1)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0.1)

    def deep_feature(self, rgb: torch.Tensor) -> torch.Tensor:
        """``f_C`` of (N, 3, 27, 27) RGB patches in 0..255: (N, 25)."""
        if self.cnn is None:
            raise ValueError("this network has no deep feature (features without fC)")
        if rgb.shape[1:] != (3, 27, 27):
            raise ValueError(f"expected RGB patches (N, 3, 27, 27), got {tuple(rgb.shape)}")
        return self.cnn(rgb.float())

    def hand_input(self, hand: torch.Tensor) -> torch.Tensor:
        """The classifier's hand-crafted input: the used blocks of (N, 120) features, scaled
        by ``input_scale`` and, with ``quantise``, rounded as MATLAB's ``uint8``."""
        x = hand.float().index_select(1, self.hand_index) * self.input_scale
        if self.quantise:
            x = torch.floor(x + 0.5).clamp_(0.0, 255.0)
        return x

    def forward(self, hand: torch.Tensor, rgb: torch.Tensor | None) -> torch.Tensor:
        """Logits (N, 11) from hand-crafted features (N, 120) and RGB patches (N, 3, 27, 27)."""
        parts = []
        if self.hand:
            parts.append(self.hand_input(hand))
        if self.use_cnn:
            parts.append(self.deep_feature(rgb))
        return self.classifier(torch.cat(parts, dim=1))
