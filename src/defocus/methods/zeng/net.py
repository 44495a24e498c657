"""The ConvNet (step 2 of :mod:`defocus.methods.zeng`): :class:`ZengNet`, a VGG-like
sharp / blurred patch classifier with CReLU activations, and its input conversion and
batched classification.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from defocus.methods.classic._common import check_odd_window

#: state-dict key of the first convolution, whose kernels give the local metric
FIRST_LAYER = "conv1.weight"


class CReLU(nn.Module):
    """Concatenated ReLU, ``cat(relu(x), relu(-x))`` on the channel axis (doubles channels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(x), F.relu(-x)], dim=1)


class ZengNet(nn.Module):
    """VGG-like patch classifier: sharp (0) vs blurred (1) (review Sec. 3).

    ``input BN -> conv k x k (kernels) -> BN -> CReLU -> maxpool`` then, for each width ``c``
    in ``widths``, ``[conv 3x3 (c) -> BN -> CReLU] x 2 -> maxpool``; then a fully connected
    layer of ``fc`` units with CReLU and a 2-way linear (logistic) output.

    Parameters
    ----------
    kernels : int
        Number N of first-layer kernels.
    widths : sequence of int
        Channels of the later convolution stages (before CReLU doubles them).
    fc : int
        Units of the fully connected layer.
    patch : int
        Input side; must be divisible by ``2 ** (1 + len(widths))``.
    kernel_size : int
        Side of the first-layer kernels (7, review Sec. 4).
    """

    def __init__(
        self,
        kernels: int = 32,
        widths: Sequence[int] = (32, 64),
        fc: int = 128,
        patch: int = 32,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        n_pool = 1 + len(widths)
        if patch % 2**n_pool:
            raise ValueError(f"patch {patch} must be divisible by 2**{n_pool} = {2**n_pool}")
        k = check_odd_window("kernel_size", kernel_size)
        self.input_bn = nn.BatchNorm2d(1)
        self.conv1 = nn.Conv2d(1, int(kernels), k, padding=k // 2, bias=False)
        layers: list[nn.Module] = [nn.BatchNorm2d(int(kernels)), CReLU(), nn.MaxPool2d(2)]
        c = 2 * int(kernels)
        for wd in widths:
            wd = int(wd)
            layers += [
                nn.Conv2d(c, wd, 3, padding=1, bias=False),
                nn.BatchNorm2d(wd),
                CReLU(),
                nn.Conv2d(2 * wd, wd, 3, padding=1, bias=False),
                nn.BatchNorm2d(wd),
                CReLU(),
                nn.MaxPool2d(2),
            ]
            c = 2 * wd
        self.features = nn.Sequential(*layers)
        side = patch // 2**n_pool
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c * side * side, int(fc)), CReLU(), nn.Linear(2 * int(fc), 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, 1, s, s) grey in [0, 1] -> logits (B, 2)."""
        return self.head(self.features(self.conv1(self.input_bn(x))))


def patches_to_tensor(patches: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """uint8 (B, s, s) patches -> float (B, 1, s, s) in [0, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.uint8))
    return (x.to(device).float() / 255.0).unsqueeze(1)


@torch.no_grad()
def classify(model: nn.Module, patches: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Predicted class (0 sharp, 1 blurred) of uint8 patches, in eval mode, batches of 1024."""
    model.eval()
    out = [
        model(patches_to_tensor(patches[i : i + 1024], device)).argmax(1).cpu().numpy()
        for i in range(0, len(patches), 1024)
    ]
    return np.concatenate(out) if out else np.zeros(0, np.int64)
