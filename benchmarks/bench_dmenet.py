"""Seconds per image of ``dmenet`` inference at 640x427 (full width), untrained weights.

Run:  python benchmarks/bench_dmenet.py [--repeat 5] [--device cpu|cuda] [--threads N]
      [--width 1.0] [--checkpoint results/models/dmenet/model.pt]

Network B at full width (VGG19 encoder, U-Net decoder, 7 residual blocks at full resolution)
with random weights (seed 0): the time does not depend on training. The image is
scikit-image's astronaut resized to 640x427 (a CUHK-like landscape size) with its right half
blurred by a Gaussian of sigma 2.5; ``predict_raw`` pads it to 640x432 (multiples of 16) and
crops the map back. One warm-up run, then ``--repeat`` timed runs (median and minimum); on
CUDA every run ends with a synchronisation.
"""

from __future__ import annotations

from _images import half_blurred_astronaut

# isort: split
import argparse
import statistics
import time

import numpy as np

W, H = 640, 427


def main(argv: list[str] | None = None) -> int:
    import torch

    from defocus.methods.dmenet import DMENet

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs (default 5)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier (default 1)")
    ap.add_argument("--checkpoint", default=None, help="a dmenet model.pt (default: random init)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    image = half_blurred_astronaut((W, H))
    m = DMENet(width=args.width, pretrained=False)
    m.device = args.device
    if args.checkpoint:
        m.load(args.checkpoint)
    else:
        torch.manual_seed(0)
        m._net = m.build().blur.eval()

    def run() -> np.ndarray:
        out = m.predict_raw(image)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return out

    sigma = run()  # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        sigma = run()
        times.append(time.perf_counter() - t0)
    n_par = sum(p.numel() for p in m._net.parameters())
    src = args.checkpoint or "random init (seed 0)"
    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"dmenet predict_raw, image {W}x{H}, width {args.width}, {n_par / 1e6:.1f} M params")
    print(f"device {dev}, torch threads {torch.get_num_threads()}, weights: {src}")
    print(f"{args.repeat} timed runs after a warm-up\n")
    print("| part | median s | min s |")
    print("|---|---:|---:|")
    print(
        f"| predict_raw (B, pad to 640x432) | {statistics.median(times):.4f} | {min(times):.4f} |"
    )
    print(f"\nsigma map: {sigma.shape}, range {sigma.min():.3f} .. {sigma.max():.3f} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
