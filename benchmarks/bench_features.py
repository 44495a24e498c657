"""DHDE speed: hand-crafted features in patches/s, and seconds per 640x427 image.

Run:  python benchmarks/bench_features.py [--patches 20000] [--repeat 3] [--lap-scale 1.0]

Features: random grey patches of both scales (15x15 and 27x27), ``handcrafted_features``.
Predict: scikit-image's astronaut at 640x427 (a CUHK-sized image) with its right half
blurred (sigma 2), an untrained DHDE network (speed does not depend on the weights); the
stages (edges, hand-crafted features, classifier, guide filter, Eq. 6 filter, Eqs. 7-8
propagation, weighted median) are timed apart, with the direct and the AMG propagation solver;
the propagation solvers' difference to the direct solve is printed in px.
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


def bench_predict(
    repeat: int, lap_scale: float, solver: str = "amg", threads: int = 1
) -> dict[str, float]:
    """Median seconds per stage of ``DHDE.predict_raw`` on the benchmark image."""
    import torch

    from defocus.methods.dhde import DHDE, matting_propagation, prob_joint_bilateral

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    img = make_image()
    m = DHDE(lap_scale=lap_scale, lap_solver=solver)
    p = m.params
    torch.manual_seed(0)
    m.net = m.build_net().eval()
    m.predict_raw(img)  # warm-up (numba compiles pymatting's Laplacian on first use)
    names = ("edges", "patches", "guide", "jbf", "propagation", "wmf", "total")
    stages: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(repeat):
        t = [time.perf_counter()]
        rows, cols, scales = m.edge_pixels(img)
        t.append(time.perf_counter())
        prob = m.patch_probabilities(img, rows, cols, scales)  # features, f_C, classifier
        mask = np.zeros(img.shape[:2], bool)
        mask[rows, cols] = True
        sparse = np.zeros(mask.shape, np.float32)
        conf = np.zeros(mask.shape, np.float32)
        sparse[rows, cols] = m.sigmas[prob.argmax(1)]
        conf[rows, cols] = prob.max(1)
        t.append(time.perf_counter())
        guide = m.guide_image(img)
        t.append(time.perf_counter())
        jbf = prob_joint_bilateral(
            sparse, conf, mask, guide, p["jbf_window"], p["jbf_sigma_s"], p["jbf_sigma_r"]
        )
        t.append(time.perf_counter())
        dense = matting_propagation(
            jbf, mask, guide, p["lap_lambda"], p["lap_epsilon"], 1, lap_scale, solver
        )
        t.append(time.perf_counter())
        joint = np.clip(np.rint(guide * 255.0), 0, 255).astype(np.uint8)
        for _ in range(int(p["wmf_iterations"])):
            dense = cv2.ximgproc.weightedMedianFilter(
                joint, dense, p["wmf_radius"], p["wmf_sigma"] * 255.0, cv2.ximgproc.WMF_EXP
            )
        t.append(time.perf_counter())
        for k, a, b in zip(names[:-1], t[:-1], t[1:], strict=True):
            stages[k].append(b - a)
        stages["total"].append(t[-1] - t[0])
    res = {k: statistics.median(v) for k, v in stages.items()}
    res["edge_patches"] = float(mask.sum())
    full = m.predict_raw(img)  # the public path gives the same map
    res["max_vs_stages"] = float(np.abs(full - dense).max())
    return res


def solver_accuracy(lap_scale: float, solvers: tuple[str, ...]) -> dict[str, tuple[float, ...]]:
    """(seconds, max, mean abs difference in px to "direct") of the propagation alone."""
    import torch

    from defocus.methods.dhde import DHDE, matting_propagation, prob_joint_bilateral

    img = make_image()
    m = DHDE()
    torch.manual_seed(0)
    m.net = m.build_net().eval()
    sparse, conf, mask = m.sparse_map(img)
    guide = m.guide_image(img)
    jbf = prob_joint_bilateral(sparse, conf, mask, guide)
    out, ref = {}, None
    for s in ("direct", *solvers):
        t = time.perf_counter()
        x = matting_propagation(jbf, mask, guide, scale=lap_scale, solver=s)
        dt = time.perf_counter() - t
        ref = x if ref is None else ref
        err = np.abs(x - ref)
        out[s] = (dt, float(err.max()), float(err.mean()))
    return out


def jbf_impls(repeat: int) -> dict[str, tuple[float, float]]:
    """(median seconds, max abs difference in px to "opencv") of the Eq. 6 filter per impl."""
    import torch

    from defocus.methods.dhde import DHDE, JBF_IMPLS, prob_joint_bilateral

    cv2.setNumThreads(1)
    img = make_image()
    m = DHDE()
    torch.manual_seed(0)
    m.net = m.build_net().eval()
    sparse, conf, mask = m.sparse_map(img)
    guide = m.guide_image(img)
    out, ref = {}, None
    for impl in reversed(JBF_IMPLS):  # "opencv" first: the reference
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            x = prob_joint_bilateral(sparse, conf, mask, guide, impl=impl)
            times.append(time.perf_counter() - t)
        ref = x if ref is None else ref
        out[impl] = (statistics.median(times), float(np.abs(x - ref).max()))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patches", type=int, default=20000, help="patches per scale (20000)")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions (3)")
    p.add_argument("--lap-scale", type=float, default=1.0, help="propagation scale (1.0)")
    p.add_argument(
        "--threads", type=int, default=1, help="torch/OpenCV threads of the predict timing (1)"
    )
    p.add_argument("--predict-only", action="store_true", help="only time predict (amg)")
    a = p.parse_args()
    if a.predict_only:
        r = bench_predict(a.repeat, a.lap_scale, "amg", a.threads)
        per = ", ".join(f"{k} {r[k]:.2f}" for k in r if k not in ("total", "edge_patches"))
        print(f"predict 640x427, amg, {a.threads} thread(s): {r['total']:.2f} s ({per})")
        print(f"goal {GOAL_S} s")
        return
    for size, rate in bench_features(a.patches, a.repeat).items():
        print(f"features {size}: {rate:,.0f} patches/s")
    for s, (dt, emax, emean) in solver_accuracy(a.lap_scale, ("amg", "cg")).items():
        print(f"propagation {s}: {dt:.2f} s, vs direct max {emax:.4f} px, mean {emean:.5f} px")
    for impl, (dt, emax) in jbf_impls(a.repeat).items():
        print(f"Eq. 6 filter {impl}: {dt:.3f} s, vs opencv max {emax:.2e} px")
    for solver in ("direct", "amg"):
        r = bench_predict(a.repeat, a.lap_scale, solver, a.threads)
        per = ", ".join(f"{k} {r[k]:.2f}" for k in r if k not in ("total", "edge_patches"))
        print(
            f"predict 640x427 ({r['edge_patches']:.0f} edge patches, lap_scale {a.lap_scale}, "
            f"lap_solver {solver}, {a.threads} thread(s)): {r['total']:.2f} s ({per}); "
            f"goal {GOAL_S} s"
        )


if __name__ == "__main__":
    main()
