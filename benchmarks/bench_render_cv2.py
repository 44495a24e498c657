"""``defocus render`` as a whole process against a direct full-frame OpenCV layered renderer.

The baseline (:func:`render_cv2`, sub-command ``baseline``) is the plain way to write the
SYNDOF layered blur with OpenCV: the same thin-lens CoC, 0.1 px CoC quantisation, layers of
equal quantised CoC ordered far to near, ``sigma = (c - 1) / 4`` and the generator's fixed
29 x 29 window (:mod:`defocus.render.physics`); each layer's ``[mask, mask * RGB]`` is blurred
over the full frame by one ``cv2.GaussianBlur`` (symmetric border, ``BORDER_REFLECT``), blurred
masks below 1e-4 are zeroed, and the layer is composited back to front
(``s = (1 - m) * s + [m, c]``). In front of the focal plane the accumulation is normalised and
the background under the layer is extended by normalised convolution with the layer's
kernel (``fill="normalized"`` of :func:`defocus.render.layered.render_layered`; the MATLAB
``regionfill`` fill that ``defocus render`` uses needs a sparse solve per layer and is left
out of the baseline, so the baseline does strictly less work). Its command line takes the
camera arguments of ``defocus render`` (``--seed``, ``--focal-length-mm``, ``--f-number``,
``--max-coc``, ``--focus-depth``) and draws the same camera, reads the same files and writes
``blurred.png``. On the benchmark scene it equals ``render_layered(fill="normalized")`` up to
float32 rounding (``compare``: 1 grey level on a few pixels); against ``defocus render``
(``regionfill``) it differs only where the background is filled under blurred front layers.

Sub-commands::

    python benchmarks/bench_render_cv2.py prepare DIR        # 2048 x 872 scene -> DIR
    python benchmarks/bench_render_cv2.py baseline --image DIR/image.png --depth DIR/depth.npy \\
        --out OUT --seed 0                                   # as: defocus render ... --seed 0
    python benchmarks/bench_render_cv2.py compare DIR        # PSNR: baseline vs render_layered
    python benchmarks/bench_render_cv2.py time DIR -n 5      # both whole processes, median

``prepare`` writes a procedural scene (:func:`defocus.render.scenes.procedural_scene`, seed
0, real scikit-image photographs on a slanted ground plane, a far wall and three cards) at
2048 x 872 px, twice MPI Sintel's 1024 x 436, as ``image.png`` and ``depth.npy`` (metres),
and prints the camera that ``--seed 0`` draws for it (278 layers, 27 % of them in front of
the focal plane).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from defocus.render.physics import MAX_COC_PX, coc_px, quantize_coc, sample_camera, sigma_from_coc

#: Frame size (h, w) of the benchmark scene.
SIZE_HW = (872, 2048)
#: The camera arguments given to both processes: ``defocus render``'s sampled camera (seed 0
#: draws f = 85 mm focused at 1.34 m, 27 % of the 278 layers in front of the focal plane).
CAMERA = ("--seed", "0")
#: Blurred masks below this are zeroed; blurred far union below this is not background
#: (the constants of :mod:`defocus.render.layered`).
MASK_EPS = 1e-4
FILL_EPS = 1e-3


def render_cv2(image_f32, coc, depth_m, kernel_radius_px=14, fill="normalized"):
    """Layered render with one full-frame ``cv2.GaussianBlur`` per layer (float32).

    ``coc`` is the quantised CoC (px) per pixel, ``depth_m`` orders the layers (runs of
    adjacent depths, far to near, with equal CoC form one layer). ``fill`` is
    ``"normalized"`` (see the module notes) or ``"none"`` (front layers composited over the
    accumulation as they are). Returns the ``(H, W, 3)`` float32 image.
    """
    h, w = coc.shape
    uniq, first, inv = np.unique(depth_m, return_index=True, return_inverse=True)
    coc_far_to_near = coc.reshape(-1)[first][::-1]
    starts = np.concatenate([[True], np.diff(coc_far_to_near) != 0])
    labels = (np.cumsum(starts) - 1)[(len(uniq) - 1) - inv.reshape(h, w)]
    layer_coc = coc_far_to_near[starts]
    in_focus = np.flatnonzero(layer_coc <= 1.0)
    first_focus = int(in_focus[0]) if in_focus.size else len(layer_coc)
    rgb1 = np.empty((h, w, 4), np.float32)
    rgb1[..., 0] = 1.0
    rgb1[..., 1:] = image_f32
    s = np.zeros((h, w, 4), np.float32)  # [accumulated mask, accumulated colour]
    union = np.zeros((h, w), np.uint8)
    ksize = (2 * kernel_radius_px + 1,) * 2
    border = cv2.BORDER_REFLECT  # fedcba|abcdefgh|hgfedcb: MATLAB 'symmetric'
    for i, c in enumerate(layer_coc):
        sel = (labels == i).view(np.uint8)
        o = cv2.copyTo(rgb1, sel)
        sigma = float(sigma_from_coc(c))
        if c > 1.0:
            o = cv2.GaussianBlur(o, ksize, sigma, sigmaY=sigma, borderType=border)
            m = o[..., 0]
            m[m < MASK_EPS] = 0.0
        if i > first_focus and fill == "normalized":
            mm = s[..., 0]
            cv2.multiply(s, cv2.merge([1.0 / (mm + (mm == 0))] * 4), dst=s)
            if c > 1.0:
                u = cv2.copyTo(s, union)
                u[..., 0] = union
                b = cv2.GaussianBlur(u, ksize, sigma, sigmaY=sigma, borderType=border)
                region = (b[..., 0] >= FILL_EPS) & (union == 0) & (o[..., 0] > 0)
                vals = b[region]
                vals[:, 1:] /= vals[:, :1]
                vals[:, 0] = 1.0
                s[region] = vals
        cv2.multiply(s, cv2.merge([1.0 - o[..., 0]] * 4), dst=s)
        cv2.add(s, o, dst=s)
        union |= sel
    mm = s[..., 0]
    return s[..., 1:] / (mm + (mm == 0))[..., None]


def baseline(argv) -> int:
    """The baseline as a command: read image and depth, fix the camera, write blurred.png."""
    ap = argparse.ArgumentParser(prog="bench_render_cv2.py baseline")
    ap.add_argument("--image", required=True)
    ap.add_argument("--depth", required=True, help="depth .npy in metres")
    ap.add_argument("--out", required=True)
    ap.add_argument("--focal-length-mm", type=float, default=None)
    ap.add_argument("--f-number", type=float, default=None)
    ap.add_argument("--max-coc", type=float, default=MAX_COC_PX)
    ap.add_argument("--focus-depth", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fill", choices=["normalized", "none"], default="normalized")
    a = ap.parse_args(argv)
    image = cv2.cvtColor(cv2.imread(a.image, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    depth = np.load(a.depth).astype(np.float64)
    coc, params = _coc(
        image, depth, a.seed, a.focal_length_mm, a.focus_depth, a.f_number, a.max_coc
    )
    out = render_cv2(
        image.astype(np.float32) / 255.0, coc, depth, params["kernel_radius_px"], a.fill
    )
    blurred = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(Path(a.out) / "blurred.png"), cv2.cvtColor(blurred, cv2.COLOR_RGB2BGR))
    print(f"wrote {a.out}/blurred.png ({params['n_layers']} layers)")
    return 0


def _coc(
    image, depth, seed=0, focal_length_mm=None, focus_m=None, f_number=None, max_coc_px=MAX_COC_PX
):
    """Quantised CoC map and camera parameters, drawn as ``defocus render`` draws them."""
    params = sample_camera(
        depth,
        image.shape[1],
        np.random.default_rng(seed),
        focal_length_mm=focal_length_mm,
        f_number=f_number,
        focus_m=focus_m,
        max_coc_px=max_coc_px,
    )
    d = depth * params["depth_scale"] + params["depth_shift_m"]
    c = coc_px(d, params["focus_m"], params["focal_length_mm"], params["f_number"], image.shape[1])
    return quantize_coc(c), params


def prepare(folder: Path) -> None:
    """Write the benchmark scene (image.png, depth.npy) into ``folder``."""
    from defocus.render.scenes import procedural_scene

    folder.mkdir(parents=True, exist_ok=True)
    image, depth = procedural_scene(np.random.default_rng(0), size_hw=SIZE_HW)
    cv2.imwrite(str(folder / "image.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    np.save(folder / "depth.npy", depth)
    _, params = _coc(image, depth.astype(np.float64), int(CAMERA[1]))
    print(
        f"{folder}: {SIZE_HW[1]} x {SIZE_HW[0]} px; {' '.join(CAMERA)}: f = "
        f"{params['focal_length_mm']:g} mm, focus {params['focus_m']:.3g} m, "
        f"{params['n_layers']} layers ({params['focus_fraction']:.0%} in front)"
    )


def _psnr(a, b) -> float:
    err = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if err == 0 else float(10 * np.log10(255.0**2 / err))


def compare(folder: Path) -> None:
    """PSNR of the baseline against the package renderer on the benchmark scene."""
    from defocus.render.layered import render_layered

    image = cv2.cvtColor(cv2.imread(str(folder / "image.png")), cv2.COLOR_BGR2RGB)
    depth = np.load(folder / "depth.npy").astype(np.float64)
    coc, params = _coc(image, depth, int(CAMERA[1]))
    img = image.astype(np.float32) / 255.0
    r = params["kernel_radius_px"]

    def u8(x):
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)

    base = {f: u8(render_cv2(img, coc, depth, r, f)) for f in ("normalized", "none")}
    pkg = {
        f: u8(render_layered(img, coc, depth_m=depth, kernel_radius_px=r, fill=f))
        for f in ("normalized", "regionfill")
    }
    front = coc > 1.0
    for bf, pf in (
        ("normalized", "normalized"),
        ("normalized", "regionfill"),
        ("none", "regionfill"),
    ):
        a, b = base[bf], pkg[pf]
        diff = np.abs(a.astype(int) - b.astype(int)).max(axis=2)
        print(
            f"baseline fill={bf:10s} vs render_layered fill={pf:10s}: PSNR {_psnr(a, b):6.2f} dB, "
            f"max |diff| {diff.max()}, pixels differing {np.mean(diff > 0):.4%} "
            f"(of them blurred: {np.mean(front[diff > 0]) if diff.any() else 0:.1%})"
        )
    print(f"{params['n_layers']} layers")


def time_both(folder: Path, n: int) -> None:
    """Median wall time of both whole processes (``-n`` runs each, alternating)."""
    out = Path(tempfile.mkdtemp())
    args = ["--image", str(folder / "image.png"), "--depth", str(folder / "depth.npy"), *CAMERA]
    pkg = [shutil.which("defocus") or "defocus", "render", *args, "--out", str(out / "pkg")]
    base = [sys.executable, __file__, "baseline", *args, "--out", str(out / "base")]
    times = {"defocus render": [], "cv2 baseline": []}
    for _ in range(n):
        for name, cmd in (("defocus render", pkg), ("cv2 baseline", base)):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:15s} median {med[k]:.2f} s (min {min(v):.2f}, max {max(v):.2f})")
    print(f"ratio baseline / defocus render: {med['cv2 baseline'] / med['defocus render']:.1f}")
    shutil.rmtree(out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "baseline":
        return baseline(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare").add_argument("folder", type=Path)
    sub.add_parser("compare").add_argument("folder", type=Path)
    t = sub.add_parser("time")
    t.add_argument("folder", type=Path)
    t.add_argument("-n", type=int, default=5)
    sub.add_parser("baseline", help="the OpenCV renderer as a command (see the module notes)")
    a = ap.parse_args(argv)
    if a.cmd == "prepare":
        prepare(a.folder)
    elif a.cmd == "compare":
        compare(a.folder)
    else:
        time_both(a.folder, a.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
