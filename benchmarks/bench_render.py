"""Benchmark the SYNDOF layered renderer: full-frame reference vs. fast backends.

Renders the embedded Middlebury Motorcycle scene and a procedural scene at Sintel
resolution (1024 x 436) and at a Middlebury-like resolution (1500 x 1000) with the
generator's camera model (max CoC 29 px, fixed 29 x 29 window), and prints images/s and
the speed-up over :func:`defocus.render.layered.render_reference`.

OpenCV and torch run on one thread by default, as scipy does in the reference, and then
the times are CPU times of this process (robust on a shared machine); with ``--threads``
other than 1 or a CUDA device they are wall-clock times. Fast renderers report the median
of ``--repeats`` runs, the reference one run.

    python benchmarks/bench_render.py            # full
    python benchmarks/bench_render.py --quick    # small sizes, one repeat
    python benchmarks/bench_render.py --device cuda
    python benchmarks/bench_render.py --fill normalized   # the earlier background fill
"""

from __future__ import annotations

import argparse
import functools
import time

import cv2
import numpy as np

from defocus.render.layered import FILLS, render_layered, render_reference
from defocus.render.physics import coc_px, quantize_coc, sample_camera
from defocus.render.scenes import motorcycle_scene, procedural_scene


def _scenes(size_hw):
    h, w = size_hw
    img, depth = motorcycle_scene()
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
    yield "motorcycle", img, depth
    yield "planes", *procedural_scene(np.random.default_rng(0), size_hw=(h, w))


def _time(fn, repeats, clock):
    times = []
    out = None
    for _ in range(repeats):
        t = clock()
        out = fn()
        times.append(clock() - t)
    return float(np.median(times)), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small images, one repeat")
    ap.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    ap.add_argument("--repeats", type=int, default=3, help="median of N (default: 3)")
    ap.add_argument("--threads", type=int, default=1, help="OpenCV/torch threads (default: 1)")
    ap.add_argument("--no-reference", action="store_true", help="skip the slow reference")
    ap.add_argument(
        "--fill",
        choices=list(FILLS),
        default="regionfill",
        help="background fill in front of the focal plane (default: regionfill)",
    )
    args = ap.parse_args(argv)
    import torch

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    cpu_time = args.threads == 1 and not args.device.startswith("cuda")
    clock = time.process_time if cpu_time else time.perf_counter
    print(f"threads={args.threads}, {'CPU' if cpu_time else 'wall-clock'} time, fill={args.fill}")
    sizes = [(109, 256), (250, 375)] if args.quick else [(436, 1024), (1000, 1500)]
    repeats = 1 if args.quick else args.repeats
    if args.device.startswith("cuda"):  # warm up CUDA context and kernels
        render_layered(
            np.zeros((64, 64, 3), np.float32),
            np.full((64, 64), 9.0),
            backend="torch",
            device=args.device,
        )
    print(
        f"{'scene':<11} {'size':>10} {'layers':>6} {'renderer':<16} {'s/img':>8} "
        f"{'img/s':>7} {'speed-up':>8} {'max|diff|':>9}"
    )
    for size in sizes:
        for name, img, depth in _scenes(size):
            rng = np.random.default_rng(0)
            p = sample_camera(depth, img.shape[1], rng, max_coc_px=29.0)
            d = depth + p["depth_shift_m"]
            coc = quantize_coc(
                coc_px(d, p["focus_m"], p["focal_length_mm"], p["f_number"], img.shape[1])
            )
            x = img.astype(np.float32) / 255.0
            kw = {"kernel_radius_px": p["kernel_radius_px"], "fill": args.fill}
            runs = []
            if not args.no_reference:
                runs.append(("reference", render_reference, {}))
            runs.append(("numpy", render_layered, {"backend": "numpy"}))
            runs.append(
                (
                    f"torch[{args.device}]",
                    render_layered,
                    {"backend": "torch", "device": args.device},
                )
            )
            t_ref = ref = None
            for label, fn, extra in runs:
                t, out = _time(
                    functools.partial(fn, x, coc, d, **kw, **extra),
                    1 if label == "reference" else repeats,
                    clock,
                )
                if label == "reference":
                    t_ref, ref = t, out
                speed = f"{t_ref / t:8.1f}" if t_ref else f"{'-':>8}"
                diff = f"{np.abs(out - ref).max():9.1e}" if ref is not None else f"{'-':>9}"
                print(
                    f"{name:<11} {size[1]:>4}x{size[0]:<5} {p['n_layers']:>6} {label:<16} "
                    f"{t:8.3f} {1 / t:7.2f} {speed} {diff}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
