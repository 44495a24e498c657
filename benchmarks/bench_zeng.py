"""Seconds per image of ``zeng`` prediction at 640x457 on one CPU core.

Run:  python benchmarks/bench_zeng.py [--repeat 10] [--checkpoint results/models/zeng/model.pt]

Zeng et al. (TIP 2019) time their method on 640x457 test images and report a very short
running time (review Sec. 6). Prediction needs only the two 7x7 PCA kernels, a box filter
and 100 tanh iterations, so the time does not depend on training: without
``--checkpoint`` the kernels come from the first layer of a randomly initialised ConvNet
(seed 0). The image is scikit-image's astronaut resized to 640x457 with its right half
blurred by a Gaussian of sigma 2.5. Thread pools are pinned to one thread before numpy is
imported; one warm-up run, then ``--repeat`` timed runs (median and minimum), with the time
split into the local metric and the refinement.
"""

from __future__ import annotations

# first: pins the BLAS / OpenMP pools to one thread before numpy is imported
from _common import half_blurred_astronaut

# isort: split

import argparse
import statistics
import time

import cv2

W, H = 640, 457


def main(argv: list[str] | None = None) -> int:
    import torch

    from defocus.methods.classic._common import to_gray
    from defocus.methods.zeng import Zeng, ZengNet, local_metric, normalise_metric

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10, help="timed runs (default 10)")
    ap.add_argument("--checkpoint", default=None, help="a zeng model.pt (default: random init)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    image = half_blurred_astronaut((W, H))
    z = Zeng()
    if args.checkpoint:
        z.load(args.checkpoint)
    else:
        torch.manual_seed(0)
        z.set_first_layer(ZengNet().conv1.weight.detach().numpy())
    blur = z.predict(image)  # warm-up
    total, metric = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        blur = z.predict(image)
        total.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        normalise_metric(local_metric(to_gray(image), z.kernels, z.params["metric_window"]))
        metric.append(time.perf_counter() - t0)
    gap = float(blur[:, W // 2 :].mean() - blur[:, : W // 2].mean())
    src = args.checkpoint or "random-init first layer (seed 0)"
    print(f"zeng predict, image {W}x{H}, 1 thread, kernels: {src}")
    print(f"{args.repeat} timed runs after a warm-up\n")
    refine = [t - m for t, m in zip(total, metric, strict=True)]
    rows = [
        ("local metric (2 filters + box)", metric),
        (f"refinement ({z.params['refine_iterations']} tanh iterations)", refine),
        ("**predict (total)**", total),
    ]
    print("| part | median s | min s |")
    print("|---|---:|---:|")
    for part, ts in rows:
        print(f"| {part} | {statistics.median(ts):.4f} | {min(ts):.4f} |")
    print(f"\nblur gap (mean map blurred half - sharp half): {gap:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
