"""Agreement of ``defocus render`` with the SYNDOF authors' generator, run under GNU Octave.

Runs ``blur_by_depth.m`` of a checkout of github.com/codeslake/SYNDOF, unmodified, on the
samples that ship in it (MPI Sintel ``market_2/frame_0001``, Middlebury 2014 Adirondack at
the generator's quarter resolution) with a fixed camera, renders the same scene with
:func:`defocus.render.layered.render_layered` (both fills), and prints PSNR and pixel
differences.

Octave 7 with its ``image`` package lacks five things the generator calls; small stand-ins
are written to a temporary folder and put first on Octave's path:

* ``datasample`` returns the fixed focal length and the unique depth nearest to the fixed
  focal depth (the camera is drawn at random otherwise); ``histcounts`` only feeds its
  weights;
* ``gather`` is the identity (no GPU);
* ``imfilter(x, k, 'same', 'conv', 'symmetric')`` for any number of channels (Octave's
  accepts 1 or 3): each channel padded symmetrically and convolved by ``conv2``;
* ``regionfill``: the Laplace fill MATLAB documents (each masked pixel the average of its
  4-neighbours inside the image, known pixels as Dirichlet data), solved by ``\\``.

    python benchmarks/bench_render_generator.py --syndof /path/to/SYNDOF   # ~5 min
    python benchmarks/bench_render_generator.py --syndof ... --downscale 4  # ~20 s

Needs ``octave`` with the ``image`` package (Debian: ``apt-get install octave
octave-image``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

from defocus.io.depth import read_dpt
from defocus.render.layered import FILLS, render_layered
from defocus.render.physics import coc_px, quantize_coc, sample_camera

#: (name, image, depth, generator depth_scale (generate_blur_by_depth.m l. 46-50: MPI x1000,
#: others x10, to mm), focal length mm, focal depth mm)
SAMPLES = (
    (
        "mpi",
        "data/synthetic_datasets/image/MPI/market_2/frame_0001.png",
        "data/synthetic_datasets/depth/MPI/market_2/frame_0001.dpt",
        1000.0,
        50.0,
        14018.195,
    ),
    (
        "middlebury",
        "data/synthetic_datasets/image/middleburry/2014/Adirondack-perfect/im0.png",
        "data/synthetic_datasets/depth/middleburry/2014/Adirondack-perfect/disp0.png",
        10.0,
        70.0,
        2300.0,
    ),
)

_SHIMS = {
    "datasample.m": """function y = datasample(data, k, varargin)
  global SHIM_F SHIM_ZF
  if numel(data) == 3 && all(data(:)' == [50 70 85])
    y = SHIM_F;
  else
    [~, i] = min(abs(data - SHIM_ZF));
    y = data(i);
  end
end
""",
    "histcounts.m": """function n = histcounts(x, nbins)
  n = ones(1, nbins);
end
""",
    "gather.m": """function x = gather(x)
end
""",
    "imfilter.m": """function out = imfilter(im, k, varargin)
  k = double(k);
  if isscalar(k)
    out = im * k;
    return;
  end
  ry = (size(k, 1) - 1) / 2; rx = (size(k, 2) - 1) / 2;
  out = zeros(size(im));
  for c = 1:size(im, 3)
    out(:, :, c) = conv2(padarray(double(im(:, :, c)), [ry rx], 'symmetric'), k, 'valid');
  end
end
""",
    "regionfill.m": """function J = regionfill(I, mask)
  J = I;
  mask = logical(mask);
  [h, w] = size(I);
  id = find(mask);
  n = numel(id);
  if n == 0
    return;
  end
  num = zeros(h, w); num(id) = 1:n;
  [r, c] = ind2sub([h, w], id);
  ii = []; jj = []; vv = []; b = zeros(n, 1); d = zeros(n, 1);
  steps = [-1 0; 1 0; 0 -1; 0 1];
  for s = 1:4
    rr = r + steps(s, 1); cc = c + steps(s, 2);
    ok = rr >= 1 & rr <= h & cc >= 1 & cc <= w;
    d(ok) = d(ok) + 1;
    q = find(ok);
    lin = sub2ind([h, w], rr(ok), cc(ok));
    nq = num(lin);
    inh = nq > 0;
    ii = [ii; q(inh)]; jj = [jj; nq(inh)]; vv = [vv; -ones(nnz(inh), 1)];
    b(q(~inh)) = b(q(~inh)) + I(lin(~inh));
  end
  A = sparse([(1:n)'; ii], [(1:n)'; jj], [d; vv], n, n);
  J(id) = A \\ b;
end
""",
}

_RUN = """pkg load image
addpath('{repo}'); addpath('{shims}');
global SHIM_F SHIM_ZF
SHIM_F = {f}; SHIM_ZF = {zf};
[blurred, bmap, bnorm, bbin, dmap, cam] = blur_by_depth('{image}', '{depth}', {scale}, ...
    'gaussian', 29, false, 0);
fid = fopen('{out}', 'w'); fwrite(fid, size(blurred), 'double'); fwrite(fid, blurred, 'double');
fclose(fid);
"""


def _write_dpt(path: Path, depth: np.ndarray) -> None:
    a = np.asarray(depth, np.float32)
    with open(path, "wb") as f:
        np.array([202021.25], np.float32).tofile(f)
        np.array([a.shape[1], a.shape[0]], np.int32).tofile(f)
        a.tofile(f)


def _read_depth_mm(path: Path, scale: float) -> np.ndarray:
    """The generator's ``get_depth_map``: .dpt or the first channel of an image, x scale."""
    if path.suffix == ".dpt":
        d = read_dpt(path)
    else:
        d = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        d = d[..., 2] if d.ndim == 3 else d  # MATLAB's channel 1 = OpenCV's last (BGR)
    return d.astype(np.float64) * scale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--syndof", required=True, help="checkout of github.com/codeslake/SYNDOF")
    ap.add_argument("--octave", default="octave", help="Octave executable")
    ap.add_argument("--downscale", type=int, default=1, help="shrink the samples by N first")
    args = ap.parse_args(argv)
    repo = Path(args.syndof).resolve()
    if shutil.which(args.octave) is None:
        raise SystemExit(f"no Octave executable {args.octave!r}; install octave octave-image")
    if not (repo / "blur_by_depth.m").is_file():
        raise SystemExit(f"{repo} has no blur_by_depth.m; pass a SYNDOF checkout with --syndof")
    print(
        f"{'sample':<11} {'size':>9} {'layers':>6} {'fill':<11} {'PSNR dB':>8} "
        f"{'max|diff|/255':>13} {'uint8 equal %':>13}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shims = tmp / "shims"
        shims.mkdir()
        for name, text in _SHIMS.items():
            (shims / name).write_text(text)
        for name, image_rel, depth_rel, scale, f, zf in SAMPLES:
            img_path, depth_path = repo / image_rel, repo / depth_rel
            img = cv2.cvtColor(cv2.imread(str(img_path)), cv2.COLOR_BGR2RGB)
            depth_mm = _read_depth_mm(depth_path, scale)
            if args.downscale > 1:
                h, w = img.shape[0] // args.downscale, img.shape[1] // args.downscale
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
                depth_mm = cv2.resize(depth_mm, (w, h), interpolation=cv2.INTER_NEAREST)
                img_path, depth_path = tmp / f"{name}.png", tmp / f"{name}.dpt"
                cv2.imwrite(str(img_path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                _write_dpt(depth_path, depth_mm / scale)  # the generator multiplies again
                depth_mm = _read_depth_mm(depth_path, scale)
            out = tmp / f"{name}.bin"
            run = tmp / f"run_{name}.m"
            run.write_text(
                _RUN.format(
                    repo=repo,
                    shims=shims,
                    f=f,
                    zf=zf,
                    image=img_path,
                    depth=depth_path,
                    scale=scale,
                    out=out,
                )
            )
            subprocess.run(
                [args.octave, "--no-gui", "-q", str(run)], check=True, capture_output=True
            )
            raw = np.fromfile(out, dtype=np.float64)
            gen = raw[3:].reshape(tuple(int(v) for v in raw[:3]), order="F")
            depth_m = depth_mm / 1000.0
            uniq = np.unique(depth_m)
            focus = float(uniq[np.argmin(np.abs(uniq * 1000.0 - zf))])
            p = sample_camera(
                depth_m,
                img.shape[1],
                np.random.default_rng(0),
                focal_length_mm=f,
                focus_m=focus,
                max_coc_px=29.0,
                max_layers=10**6,
            )
            d = depth_m + p["depth_shift_m"]
            coc = quantize_coc(coc_px(d, p["focus_m"], f, p["f_number"], img.shape[1]))
            x = img.astype(np.float32) / 255.0
            for fill in FILLS:
                mine = render_layered(x, coc, d, kernel_radius_px=14, fill=fill)
                diff = np.abs(mine.astype(np.float64) - gen)
                psnr = 10 * np.log10(1.0 / max(np.mean(diff**2), 1e-30))
                same = (np.rint(mine * 255.0) == np.rint(gen * 255.0)).all(axis=2).mean()
                print(
                    f"{name:<11} {img.shape[1]:>4}x{img.shape[0]:<4} {p['n_layers']:>6} "
                    f"{fill:<11} {psnr:8.1f} {diff.max() * 255:13.4f} {same * 100:13.2f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
