"""``defocus render``: SYNDOF thin-lens render of one image and its depth.

Writes ``blurred.png``, ``sigma.npy`` (Gaussian sigma, px), ``coc.npy`` (CoC, px),
``binary.png`` (255 = blurred) and ``params.json`` into ``--out``. The top-level
``defocus`` command calls :func:`configure_parser` and :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from defocus.render.physics import MAX_COC_PX, SIGMA_FORMULAS, check_camera, check_depth


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``render`` options to ``p`` and return it."""
    p.add_argument("--image", required=True, help="sharp RGB image")
    p.add_argument(
        "--depth",
        required=True,
        help="depth: .npy (metres), .dpt (Sintel), .pfm (Middlebury disparity, needs --calib) "
        "or .png (SYNTHIA)",
    )
    p.add_argument("--calib", default=None, help="Middlebury calib.txt for a .pfm disparity")
    p.add_argument(
        "--depth-kind",
        default=None,
        choices=["npy", "dpt", "pfm", "synthia"],
        help="depth format (default: from the extension)",
    )
    p.add_argument(
        "--depth-scale", type=float, default=1.0, help="multiplier to metres (default: 1)"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder; files of these names that a previous render did not write "
        "(no params.json beside them) are kept unless --overwrite",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files of the output names in --out even if no render wrote them",
    )
    p.add_argument(
        "--focal-length-mm",
        type=float,
        default=None,
        help="focal length (default: sampled from 50/70/85 mm, weights 0.1/0.4/0.4)",
    )
    ap = p.add_mutually_exclusive_group()
    ap.add_argument("--f-number", type=float, default=None, help="aperture f-number N")
    ap.add_argument(
        "--max-coc",
        type=float,
        default=MAX_COC_PX,
        help=f"CoC (px) of the extreme depth when N is solved (default: {MAX_COC_PX:g})",
    )
    p.add_argument(
        "--focus-depth",
        type=float,
        default=None,
        help="in-focus distance in depth units (default: sampled from the scene's depths)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--backend", default="numpy", choices=["numpy", "torch"], help="default: numpy")
    p.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    p.add_argument(
        "--sigma-formula",
        default="generator",
        choices=list(SIGMA_FORMULAS),
        help="sigma = (CoC-1)/4 (generator) or CoC/4 (paper) (default: generator)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Render one sample as described by ``args``; returns the exit status."""
    import numpy as np

    from defocus.io.atomic import atomic_path, write_text
    from defocus.io.image import ImageError, read_image, write_image
    from defocus.render.scenes import fill_invalid_nearest
    from defocus.render.syndof import render_sample

    try:
        from defocus.io.depth import read_depth

        image = read_image(args.image)
        check_camera(args.focal_length_mm, args.f_number)
        depth = read_depth(args.depth, calib=args.calib, kind=args.depth_kind)
        check_depth(depth, f"depth file {args.depth}")
        depth = fill_invalid_nearest(depth)
        overrides = {
            "focal_length_mm": args.focal_length_mm,
            "focus_m": args.focus_depth,
            "f_number": args.f_number,
            "max_coc_px": args.max_coc if args.max_coc is not None else MAX_COC_PX,
            "sigma_formula": args.sigma_formula,
            "depth_scale": args.depth_scale,
        }
        sample = render_sample(
            image,
            depth,
            np.random.default_rng(args.seed),
            backend=args.backend,
            device=args.device,
            **overrides,
        )
    except (ValueError, OSError, ImageError) as e:
        print(f"defocus render: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    problem = output_conflict(out, [Path(args.image), Path(args.depth)], args.overwrite)
    if problem:
        print(f"defocus render: {problem}", file=sys.stderr)
        return 2
    write_image(out / "blurred.png", sample["blurred"])
    write_image(out / "binary.png", sample["binary"].astype(np.uint8) * 255)
    for name in ("sigma", "coc"):
        with atomic_path(out / f"{name}.npy") as tmp:
            np.save(tmp, sample[name])
    params = dict(sample["params"], seed=args.seed, image=str(args.image), depth=str(args.depth))
    write_text(out / "params.json", json.dumps(params, indent=2, sort_keys=True) + "\n")
    print(
        f"wrote {out}/blurred.png (f={params['focal_length_mm']:g} mm, "
        f"N={params['f_number']:.3g}, focus={params['focus_m']:.3g} m, "
        f"{params['n_layers']} layers)"
    )
    return 0


#: the files a render writes into --out
OUTPUT_NAMES = ("blurred.png", "binary.png", "sigma.npy", "coc.npy", "params.json")


def output_conflict(out: Path, inputs: list[Path], overwrite: bool) -> str:
    """Why writing a render into ``out`` would lose a user's file ("" when it would not): an
    output name that is one of the inputs (never written over), or that exists where no
    previous render wrote (no ``params.json``), unless ``overwrite``."""
    targets = [out / n for n in OUTPUT_NAMES]
    for t in targets:
        for i in inputs:
            if t.exists() and i.exists() and t.resolve() == i.resolve():
                return f"{t} is an input of this render; choose another --out"
    existing = [t.name for t in targets if t.exists()]
    if existing and not overwrite and not (out / "params.json").is_file():
        return (
            f"{out} already holds {', '.join(existing)} that no render wrote; choose another "
            "--out, or pass --overwrite to replace them"
        )
    return ""
