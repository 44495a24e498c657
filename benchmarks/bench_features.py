"""DHDE speed (issue 7): hand-crafted features in patches/s, and seconds per 640x427 image.

Run:  python benchmarks/bench_features.py [--patches 20000] [--repeat 3] [--lap-scale 1.0]

Features: random grey patches of both scales (15x15 and 27x27), ``handcrafted_features``.
Predict: scikit-image's astronaut at 640x427 (a CUHK-sized image) with its right half
blurred (sigma 2), an untrained DHDE network (speed does not depend on the weights); the
stages (edges + features + classifier, guide filter, Eq. 6-8 refinement) are timed apart.
Thread pools are pinned to one thread. Timing goes here, not in the tests.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

GOAL_S = 2.0


def make_image() -> np.ndarray:
    """Astronaut at 640x427 (W x H), right half blurred with sigma 2."""
    from skimage import data

    img = cv2.resize(data.astronaut(), (640, 427), interpolation=cv2.INTER_AREA)
    img[:, 320:] = cv2.GaussianBlur(img[:, 320:], (0, 0), 2.0)
    return img


def bench_features(n: int, repeat: int) -> dict[str, float]:
    from defocus.features.handcrafted import handcrafted_features

    rng = np.random.default_rng(0)
    out = {}
    for scale, size in ((0, 15), (1, 27)):
        g = rng.random((n, size, size))
        handcrafted_features(g[:100], scale)
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            handcrafted_features(g, scale)
            times.append(time.perf_counter() - t)
        out[f"{size}x{size}"] = n / min(times)
    return out


def bench_predict(repeat: int, lap_scale: float) -> dict[str, float]:
    import torch

    from defocus.methods.dhde import DHDE

    torch.set_num_threads(1)
    img = make_image()
    m = DHDE(lap_scale=lap_scale)
    torch.manual_seed(0)
    m.net = m.build_net().eval()
    m.predict_raw(img)  # warm-up (numba compiles pymatting's Laplacian on first use)
    stages: dict[str, list[float]] = {"sparse": [], "guide": [], "refine": [], "total": []}
    for _ in range(repeat):
        t0 = time.perf_counter()
        sparse, conf, mask = m.sparse_map(img)
        t1 = time.perf_counter()
        guide = m.guide_image(img)
        t2 = time.perf_counter()
        m.refine(sparse, conf, mask, guide)
        t3 = time.perf_counter()
        for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
            stages[k].append(v)
    res = {k: statistics.median(v) for k, v in stages.items()}
    res["edge_patches"] = float(mask.sum())
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patches", type=int, default=20000, help="patches per scale (20000)")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions (3)")
    p.add_argument("--lap-scale", type=float, default=1.0, help="propagation scale (1.0)")
    a = p.parse_args()
    for size, rate in bench_features(a.patches, a.repeat).items():
        print(f"features {size}: {rate:,.0f} patches/s")
    r = bench_predict(a.repeat, a.lap_scale)
    print(
        f"predict 640x427 ({r['edge_patches']:.0f} edge patches, lap_scale {a.lap_scale}): "
        f"{r['total']:.2f} s (sparse {r['sparse']:.2f}, guide {r['guide']:.2f}, "
        f"refine {r['refine']:.2f}); goal {GOAL_S} s"
    )


if __name__ == "__main__":
    main()
