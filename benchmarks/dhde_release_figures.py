"""The README's figures for the DHDE authors' trained model (``dhde@weights=release``).

Prints, for the release model (Park et al. CVPR'17, github zzangjinsun/DHDE_CVPR17) fed with
this package's features:

1. the Table 1 accuracy (a label counts as correct within 0.15 in sigma) and the exact-label
   accuracy on the held-out ("val") patches of each ``--patches`` file. The README quotes
   one figure on the patches of ``config/dhde_cpu.yaml`` and one on the demo's
   (``config/config.yaml``); both configs write ``results/patches/demo_sharp.h5``, so make
   and score one, then the other:

       snakemake --cores 2 results/patches/demo_sharp.h5 \
           --configfile config/config.yaml config/dhde_cpu.yaml
       python benchmarks/dhde_release_figures.py --patches results/patches/demo_sharp.h5

2. the median sparse sigma at the edge pixels of scikit-image's astronaut, resized to 640x427
   (INTER_AREA) and blurred by a Gaussian of 0 (unblurred), 1.0, 1.5 and 2.0 px (the README
   quotes the four medians).

Inputs: ``--weights``, the release ``.caffemodel`` (sha256-checked by
``snakemake --configfile=config/paper.yaml resources/weights/dhde/release.caffemodel``, or
``defocus.releases.fetch("dhde", dest)``; it needs the network) or a DHDE checkpoint
(``model.pt``); ``--patches``, patch files of the patches rule. Nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

#: the blur of the whole-image check (px); 0 = the unblurred image
BLURS = (0.0, 1.0, 1.5, 2.0)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--weights",
        default="resources/weights/dhde/release.caffemodel",
        help="release .caffemodel or a DHDE checkpoint (default: %(default)s)",
    )
    p.add_argument(
        "--patches",
        action="append",
        default=[],
        help="patch file (results/patches/NAME.h5); repeat for several (default: none)",
    )
    p.add_argument("--split", default="val", help="patch split to score (default: val)")
    p.add_argument(
        "--size",
        default="640x427",
        help="WxH of the astronaut for the whole-image check (default: %(default)s)",
    )
    p.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    p.add_argument(
        "--method",
        default="dhde",
        help="method spec, e.g. dhde@quantise=false,canny_impl=skimage for the steps this "
        "package ran before following the release (default: %(default)s)",
    )
    return p


def whole_image_sigmas(method, size_wh: tuple[int, int], blurs=BLURS) -> list[float]:
    """Median sparse sigma at the edges of the astronaut blurred by each of ``blurs``."""
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut(), size_wh, interpolation=cv2.INTER_AREA)
    out = []
    for s in blurs:
        blurred = img if s == 0 else cv2.GaussianBlur(img, (0, 0), s)
        sparse, _, mask = method.sparse_map(blurred)
        out.append(float(np.median(sparse[mask])) if mask.any() else float("nan"))
    return out


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    from defocus.methods.registry import get_method

    weights = Path(args.weights)
    if not weights.is_file():
        print(
            f"dhde_release_figures: weights not found: {weights}; fetch them with "
            "`snakemake --configfile=config/paper.yaml resources/weights/dhde/release.caffemodel`",
            file=sys.stderr,
        )
        return 2
    method = get_method(args.method)
    method.device = args.device
    method.load(weights)
    print(f"method: {args.method}, weights: {weights}")
    for path in map(Path, args.patches):
        acc = method.patch_accuracy([path], split=args.split)
        print(
            f"patches {path} ({args.split}, n={acc['n']}): accuracy within 0.15 "
            f"{100 * acc['accuracy']:.1f} %, exact {100 * acc['exact']:.1f} %"
        )
    w, h = (int(v) for v in args.size.lower().split("x"))
    sigmas = whole_image_sigmas(method, (w, h))
    for blur, sigma in zip(BLURS, sigmas, strict=True):
        print(f"astronaut {w}x{h}, Gaussian blur {blur:g} px: median sparse sigma {sigma:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
