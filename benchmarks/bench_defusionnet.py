"""Seconds per image of DeFusionNet inference at 320x320, full width, untrained weights.

Run:  python benchmarks/bench_defusionnet.py [--device auto] [--repeat 10] [--size 320]
                                            [--specs defusionnet defusionnet@steps=1 ...]

Paper (Tang et al. CVPR'19, Sec. 3.3): "approximately 0.056s ... for a testing image with
320x320 pixels by using a single Nvidia GTX Titan Xp GPU". The network here is the paper's
(VGG16, n = 6 layers, 3 FFRM steps) with this implementation's open choices at their
defaults (64 side channels); its weights are random (timing does not depend on them), so no
ImageNet download is needed. Two numbers per spec:

* ``predict``: :meth:`DeFusionNet.predict` on an RGB uint8 image of ``size x size``
  (upload, resize, network, sigmoid, download), as the predict rule times it;
* ``forward``: the network alone on a resident tensor (``torch.cuda.synchronize`` on GPU).

Each is warmed up twice, then timed ``--repeat`` times; the table gives the median and min.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

PAPER_S = 0.056  # Sec. 3.3, Titan Xp, 320x320


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, device: str, repeat: int) -> list[float]:
    for _ in range(2):
        fn()
    _sync(device)
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    from defocus.config import resolve_device
    from defocus.methods.registry import get_method
    from defocus.train.loop import save_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    ap.add_argument("--repeat", type=int, default=10, help="timed runs (default 10)")
    ap.add_argument("--size", type=int, default=320, help="image side, px (default 320)")
    ap.add_argument(
        "--specs", nargs="+", default=["defusionnet"], help="method specs (default defusionnet)"
    )
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.specs:
            method = get_method(spec, {"pretrained": False, "infer_size": args.size})
            method.device = device
            torch.manual_seed(0)
            ckpt = Path(tmp) / "model.pt"
            save_checkpoint(ckpt, {"model": method.build().state_dict(), "params": method.params})
            method.load(ckpt)
            net = method._net
            n_params = sum(p.numel() for p in net.parameters())
            x = torch.rand(1, 3, args.size, args.size, device=device)
            with torch.inference_mode():
                t_fwd = _time(lambda net=net, x=x: net(x), device, args.repeat)
            t_pred = _time(lambda m=method: m.predict(image), device, args.repeat)
            rows.append((spec, n_params, t_pred, t_fwd))
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    threads = "" if device.startswith("cuda") else f", {torch.get_num_threads()} threads"
    print(f"DeFusionNet inference, {args.size}x{args.size}, {device} ({name}{threads}), "
          f"float32, {args.repeat} timed runs after 2 warm-ups\n")  # fmt: skip
    print(f"| {'spec':<28} | {'params M':>8} | {'predict med s':>13} | {'predict min s':>13} "
          f"| {'forward med s':>13} |")  # fmt: skip
    print(f"|{'-' * 30}|{'-' * 9}:|{'-' * 14}:|{'-' * 14}:|{'-' * 14}:|")
    for spec, n, tp, tf in rows:
        print(f"| {spec:<28} | {n / 1e6:>8.2f} | {statistics.median(tp):>13.4f} "
              f"| {min(tp):>13.4f} | {statistics.median(tf):>13.4f} |")  # fmt: skip
    print(f"\npaper: {PAPER_S} s per 320x320 image on an Nvidia GTX Titan Xp (Sec. 3.3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
