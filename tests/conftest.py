"""Shared fixtures: small real images (scikit-image ships them) and a repository path."""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photograph (astronaut, 512x512 RGB) shrunk to 96x128 for speed."""
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (128, 96), interpolation=cv2.INTER_AREA)
