"""Trivial reference rows. They are not paper methods; tables label them as references.

On CUHK most pixels are blurred, so an all-blurred map already reaches a high max-F;
these rows show how much of a score any method earns by the dataset's class balance
(``ref_all_blurred``) or by plain local contrast (``ref_gradient``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from defocus.methods.base import Method, check_image, minmax_normalise


class AllBlurred(Method):
    """Every pixel blurred: the map is all ones."""

    name = "ref_all_blurred"
    fidelity = {
        "implementation": "reference",
        "differs": "not a paper method: every pixel blurred (what class balance alone scores)",
    }
    reference = True
    citation = "reference: every pixel labelled blurred"

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        return np.ones(image.shape[:2], dtype=np.float32)


class GradientEnergy(Method):
    """Local gradient energy: 1 - normalised mean squared Sobel gradient in a window.

    Parameters
    ----------
    window : int
        Side of the box window (pixels) over which the squared gradient is averaged.
    """

    name = "ref_gradient"
    fidelity = {
        "implementation": "reference",
        "differs": "not a paper method: 1 - local gradient energy (what plain contrast scores)",
    }
    reference = True
    citation = "reference: 1 - local mean squared Sobel gradient (box window)"
    defaults: ClassVar[dict[str, Any]] = {"window": 15}

    def predict(self, image: np.ndarray) -> np.ndarray:
        import cv2

        image = check_image(image)
        g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
        w = int(self.params["window"])
        energy = cv2.boxFilter(gx * gx + gy * gy, -1, (w, w), borderType=cv2.BORDER_REFLECT)
        # log compresses the heavy tail of gradient energy so the ranking is not dominated
        # by a few strong edges; the map is monotone in energy either way
        return 1.0 - minmax_normalise(np.log1p(energy * 100.0))
