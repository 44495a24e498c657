"""Seconds per photo of each method on several real photographs at CUHK size, one CPU core.

Run:  python benchmarks/bench_photos.py [--methods svd lbp ...] [--checkpoint dhde=PATH ...]

The photos are scikit-image's colour photographs (astronaut, chelsea, coffee, rocket,
immunohistochemistry, hubble_deep_field) resized to 640x427 (CUHK's common size; aspect not
kept), each with its right half blurred by a Gaussian of sigma 2.5, so every method sees
content, sharp and blurred regions. Thread pools are pinned to one thread before numpy is
imported. Each method first predicts one warm-up photo (numba compiles, caches fill; excluded),
then each photo once; the table gives the median, minimum and maximum over the photos and the
ratio of the median to the published time per CUHK image (Tang et al. CVPR'19, DeFusionNet
Table 2, their hardware; a ratio < 1 is faster here).
"""

from __future__ import annotations

# first: pins the BLAS / OpenMP pools to one thread before numpy is imported
import _common  # noqa: F401

# isort: split

import argparse
import statistics
import time

import cv2
import numpy as np

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
SIZE_WH = (640, 427)
#: DeFusionNet Table 2, "Shi et al.'s dataset" (CUHK), seconds per image (the extracted table's
#: columns are shifted by the dataset label: ASVB is the first number)
PUBLISHED_CUHK_S = {
    "asvb": 2.04,
    "svd": 21.09,
    "jnb": 11.47,
    "dbdf": 214.83,
    "ss": 2.76,
    "lbp": 57.34,
    "ksfv": 32.748,
    "dhde": 47.06,
    "hifst": 2576.24,
    "defusionnet": 0.094,
}
DEFAULT_METHODS = ("svd", "lbp", "hifst", "zhuo_sim", "ss", "asvb", "ref_gradient")


def photos() -> list[np.ndarray]:
    """The benchmark photos, half blurred (the warm-up photo is the first)."""
    from skimage import data

    out = []
    for name in PHOTOS:
        img = cv2.resize(getattr(data, name)()[..., :3], SIZE_WH, interpolation=cv2.INTER_AREA)
        half = SIZE_WH[0] // 2
        img[:, half:] = cv2.GaussianBlur(img, (0, 0), 2.5)[:, half:]
        out.append(np.ascontiguousarray(img))
    return out


def main(argv: list[str] | None = None) -> int:
    from defocus.methods.registry import get_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), help="method specs")
    ap.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="checkpoint of a learned method, e.g. dhde=DHDE_model.caffemodel",
    )
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    ckpts = dict(item.split("=", 1) for item in args.checkpoint)
    images = photos()
    warm, timed = images[0], images[1:]
    print(f"{len(timed)} photos at {SIZE_WH[0]}x{SIZE_WH[1]}, 1 thread, after one warm-up photo\n")
    print("| method | median s | min s | max s | published s (CUHK) | median / published |")
    print("|---|---:|---:|---:|---:|---:|")
    for spec in args.methods:
        method = get_method(spec)
        base = spec.partition("@")[0]
        if method.learned:
            if base not in ckpts:
                print(f"| {spec} | needs --checkpoint {base}=PATH | | | | |")
                continue
            method.load(ckpts[base])
        method.predict(warm)
        times = []
        for img in timed:
            t0 = time.perf_counter()
            method.predict(img)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        pub = PUBLISHED_CUHK_S.get(base)
        ratio = f"{med / pub:.3f}" if pub else "-"
        print(
            f"| {spec} | {med:.2f} | {min(times):.2f} | {max(times):.2f} | "
            f"{pub if pub else '-'} | {ratio} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
