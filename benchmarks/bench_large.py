"""Seconds and peak memory of every method on one 24-megapixel photo (6000x4000), one core.

Run:  python benchmarks/bench_large.py [--methods svd lbp ...] [--max-side 2048]
                                       [--checkpoint dmenet=results/models/dmenet/model.pt]

Each method runs in a fresh Python process, through the path ``defocus predict`` takes
(:func:`defocus.predict.run_one` with the ``max_side`` policy: the photo is shrunk to
``--max-side`` on its longer side, predicted, and the map resized back). The process reports
its wall-clock seconds for the prediction and its peak resident memory (``ru_maxrss``, which
includes the 72 MB photo and the imported libraries). ``--max-side 0`` measures full
resolution; ``--timeout`` stops a method that takes longer and reports it as such. The photo
is scikit-image's astronaut resized to 6000x4000 with its right half blurred (sigma 2.5 x
the resize factor). Learned methods need ``--checkpoint NAME=PATH`` and are skipped without.
Thread pools are pinned to one thread before numpy is imported.
"""

from __future__ import annotations

# first: pins the BLAS / OpenMP pools to one thread before numpy is imported
from _common import half_blurred_astronaut

# isort: split

import argparse
import json
import resource
import subprocess
import sys
import time

SIZE_WH = (6000, 4000)
DEFAULT_METHODS = [
    "ref_gradient",
    "svd",
    "lbp",
    "hifst",
    "zhuo_sim",
    "ss",
    "dbdf",
    "jnb",
    "asvb",
    "ksfv",
    "dhde",
    "zeng",
    "defusionnet",
    "dmenet",
]


def _child(method: str, max_side: int, checkpoint: str | None) -> None:
    """Predict one method on the photo; print ``{"seconds", "peak_rss_mb", "work_size"}``."""
    import cv2

    from defocus.predict import _shrink_factor, build_method, run_one

    cv2.setNumThreads(1)
    image = half_blurred_astronaut(SIZE_WH, sigma=2.5 * SIZE_WH[0] / 640)
    m = build_method(method, {}, checkpoint, "cpu")
    t0 = time.perf_counter()
    blur, _, _ = run_one(m, image, max_side)
    seconds = time.perf_counter() - t0
    assert blur.shape == image.shape[:2]
    f = _shrink_factor(image.shape, max_side)
    work = f"{round(SIZE_WH[0] * f)}x{round(SIZE_WH[1] * f)}"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "work_size": work}))


def main(argv: list[str] | None = None) -> int:
    from defocus.config import DEFAULT_MAX_SIDE
    from defocus.methods.registry import method_class, parse_name

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, help="registry names")
    ap.add_argument(
        "--max-side",
        type=int,
        default=DEFAULT_MAX_SIDE,
        help=f"predict's max_side (default {DEFAULT_MAX_SIDE}; 0 = full resolution)",
    )
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per method (900)")
    ap.add_argument(
        "--checkpoint", action="append", default=[], help="NAME=PATH for a learned method"
    )
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-checkpoint", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child, args.max_side, args.child_checkpoint)
        return 0
    ckpts = dict(c.split("=", 1) for c in args.checkpoint)
    print(f"photo {SIZE_WH[0]}x{SIZE_WH[1]} (24 MP), max_side {args.max_side}, one CPU core")
    print(f"{'method':16s} {'predicted at':>12s} {'seconds':>9s} {'peak RSS MB':>12s}")
    for name in args.methods:
        learned = method_class(parse_name(name)[0]).learned
        if learned and name not in ckpts:
            print(f"{name:16s} {'skipped: needs --checkpoint ' + name + '=PATH':>35s}")
            continue
        cmd = [sys.executable, __file__, "--child", name, "--max-side", str(args.max_side)]
        if name in ckpts:
            cmd += ["--child-checkpoint", ckpts[name]]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"{name:16s} {'':>12s} {'>' + format(args.timeout, 'g'):>9s} {'-':>12s}")
            continue
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"{name:16s} failed: {last}")
            continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        print(
            f"{name:16s} {res['work_size']:>12s} {res['seconds']:9.1f} {res['peak_rss_mb']:12.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
