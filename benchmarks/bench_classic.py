"""Seconds per image of the classic baselines at 640x427 on one CPU core.

Run:  python benchmarks/bench_classic.py [--repeat 3] [--methods svd lbp ...]

The image is scikit-image's astronaut resized to 640x427 (a CUHK-sized image) with its
right half blurred by a Gaussian of sigma 2.5. Thread pools (BLAS, OpenMP, OpenCV, numba)
are pinned to one thread before numpy is imported. Each method runs once to warm up
(numba compiles pymatting's Laplacian on first use), then ``--repeat`` times; the table
gives the median and the minimum. The goal is under 5 s per image for every method.
"""

from __future__ import annotations

# first: pins the BLAS / OpenMP pools to one thread before numpy is imported
from _common import half_blurred_astronaut

# isort: split

import argparse
import statistics
import time

import cv2

GOAL_S = 5.0


def main(argv: list[str] | None = None) -> int:
    from defocus.methods.registry import get_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per method (default 3)")
    ap.add_argument(
        "--methods",
        nargs="+",
        default=["svd", "lbp", "hifst", "zhuo_sim", "ss"],
        help="registry names, ablations allowed (default: the five classic baselines)",
    )
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    image = half_blurred_astronaut()
    rows = []
    for name in args.methods:
        method = get_method(name)
        blur = method.predict(image)  # warm-up
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            blur = method.predict(image)
            times.append(time.perf_counter() - t0)
        gap = float(blur[:, 320:].mean() - blur[:, :320].mean())
        rows.append((name, statistics.median(times), min(times), gap))
    print(f"image 640x427, 1 thread, {args.repeat} timed runs after a warm-up\n")
    print(f"| {'method':<10} | {'median s':>8} | {'min s':>6} | {'< 5 s':>5} | {'blur gap':>8} |")
    print(f"|{'-' * 12}|{'-' * 9}:|{'-' * 7}:|{'-' * 6}:|{'-' * 9}:|")
    for name, med, best, gap in rows:
        ok = "yes" if med < GOAL_S else "NO"
        print(f"| {name:<10} | {med:>8.2f} | {best:>6.2f} | {ok:>5} | {gap:>8.3f} |")
    print("\nblur gap = mean map on the blurred half - mean map on the sharp half")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
