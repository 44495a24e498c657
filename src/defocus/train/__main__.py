"""Training entry point: ``[torchrun --nproc_per_node N] python -m defocus.train ...``.

Builds the method from the registry, hands it the training manifests and calls ``fit``;
``fit`` uses :func:`defocus.train.loop.train`, so checkpoints, resume, progress and DDP are the
same for every learned method. Only rank 0 writes the product checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m defocus.train", description=__doc__)
    p.add_argument("--method", required=True, help="registered learned method (with @overrides)")
    p.add_argument("--params", default="{}", help="JSON method parameters (default: {})")
    p.add_argument(
        "--data",
        required=True,
        help='JSON {role: [manifest.csv, ...]}, e.g. {"train": ["results/data/cuhk/manifest.csv"]}',
    )
    p.add_argument("--workdir", required=True, help="checkpoints, loss.csv, loss.png")
    p.add_argument("--out", required=True, help="product checkpoint (model.pt)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: 0)")
    # not "--log": torchrun reads it as an abbreviation of its --log-dir ("ambiguous option")
    p.add_argument(
        "--log-file", "--log", dest="log", default=None, help="log file (default: stderr)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    from defocus.logs import rule_log

    with rule_log(args.log):
        from defocus.config import resolve_device
        from defocus.methods.registry import get_method
        from defocus.train import distributed as dist

        device = dist.init(resolve_device(args.device))
        method = get_method(args.method, json.loads(args.params))
        method.device = device
        data = {k: [Path(p) for p in v] for k, v in json.loads(args.data).items()}
        ckpt = method.fit(data, {"seed": args.seed, "device": device}, Path(args.workdir))
        if ckpt is None:
            logging.getLogger(__name__).error("%s is not a learned method", args.method)
            return 2
        if dist.rank() == 0:
            from defocus.train.loop import finalize

            # what the run used (backbone init, training images), read back by the tables
            data = json.loads(args.data)
            meta = {"data": data, **method.training_record(data)}
            finalize(ckpt, args.out, args.method, method.params, meta)
        dist.barrier()
        dist.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
