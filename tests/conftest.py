"""Shared fixtures: small real images (scikit-image ships them), a repository path and a
local HTTP server (127.0.0.1) for the download tests."""

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def torch_one_thread():
    """Run a test with one torch thread (timing-independent, 2-core CI), then restore."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photograph (astronaut, 512x512 RGB) shrunk to 96x128 for speed."""
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (128, 96), interpolation=cv2.INTER_AREA)


#: columns >= HALF_SPLIT of the `half_blurred` fixture are blurred
HALF_SPLIT = 64


@pytest.fixture(scope="session")
def half_blurred() -> np.ndarray:
    """A real photograph (chelsea, 97x129: odd both ways) whose columns >= 64 are blurred
    with a Gaussian of sigma 2.5 — the known-answer image of the classic methods' tests."""
    import cv2
    from skimage import data

    img = np.ascontiguousarray(data.chelsea()[60:157, 100:229])
    out = img.copy()
    out[:, HALF_SPLIT:] = cv2.GaussianBlur(img, (0, 0), 2.5)[:, HALF_SPLIT:]
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture()
def serve_dir():
    """``serve(folder) -> base URL``: serve a folder over HTTP on 127.0.0.1 for this test."""
    servers = []

    def serve(folder) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        servers.append((httpd, thread))
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield serve
    for httpd, thread in servers:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
