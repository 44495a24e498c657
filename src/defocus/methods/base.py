"""The interface every method implements, classic or learned.

A method turns one RGB uint8 image into a float32 blur map in [0, 1] of the image's size
(**1 = blurred**). Methods with a physical output (Gaussian sigma, circle of confusion)
also implement :meth:`Method.predict_raw`, returning the map in pixels; ``predict`` then
min-max normalises it per image, as the papers do for binary metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class MethodError(RuntimeError):
    """A method cannot run as configured (e.g. a learned method without a checkpoint)."""


def minmax_normalise(x: np.ndarray) -> np.ndarray:
    """Per-image min-max normalisation to [0, 1]; a constant map becomes all zeros."""
    x = np.asarray(x, dtype=np.float32)
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    if not np.isfinite(lo) or hi - lo <= 1e-12:
        return np.zeros_like(x, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)


class Method:
    """Base class. Subclasses set ``name`` and ``defaults`` and override ``predict``.

    Parameters
    ----------
    **params
        Overrides of ``defaults`` (from config or an ablation name ``method@key=value``).
        Unknown keys raise ``ValueError`` naming the valid ones.
    """

    name: ClassVar[str] = "base"
    #: default parameters, each documented (with its source) in the subclass
    defaults: ClassVar[dict[str, Any]] = {}
    #: True for methods that must be trained before ``predict`` (``fit`` returns a checkpoint)
    learned: ClassVar[bool] = False
    #: True when ``predict_raw`` returns a physical map (unit in ``raw_unit``)
    has_raw: ClassVar[bool] = False
    raw_unit: ClassVar[str] = ""
    #: True for trivial reference rows (not paper methods); tables label them as such
    reference: ClassVar[bool] = False
    #: one line shown in tables' captions and ``defocus predict --help``
    citation: ClassVar[str] = ""
    #: torch device for learned methods ("cpu" or "cuda"); set by the runner
    device: str = "cpu"

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for method {self.name!r}; "
                f"valid: {sorted(self.defaults)}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}

    # -- training ---------------------------------------------------------------------
    def fit(self, train: Any, cfg: dict | None, workdir: Path) -> Path | None:
        """Train on ``train`` (a manifest or a patch file); return the checkpoint path.

        Classic methods have nothing to train and return ``None``.
        """
        return None

    def load(self, checkpoint: Path | None) -> None:
        """Load a checkpoint written by :meth:`fit` (no-op for classic methods)."""
        if self.learned and checkpoint is None:
            raise MethodError(
                f"method {self.name!r} is learned and needs a checkpoint; "
                f"make one with `snakemake results/models/{self.name}/model.pt`"
            )

    # -- inference --------------------------------------------------------------------
    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Physical map (pixels) for methods with ``has_raw``; else the blur map itself."""
        raise MethodError(f"method {self.name!r} has no physical (raw) output")

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Blur map, float32 (H, W) in [0, 1], 1 = blurred."""
        if self.has_raw:
            return minmax_normalise(self.predict_raw(image))
        raise MethodError(f"{type(self).__name__} defines neither predict() nor predict_raw()")


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate the input of ``predict``: RGB uint8 (H, W, 3) with H, W >= 8."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}; "
            "use defocus.io.image.to_rgb_uint8 to convert"
        )
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image too small for a blur map: {image.shape[:2]} (need >= 8x8)")
    return image
