"""``defocus``: the package's command line (see ``defocus --help``).

Heavy modules (torch, OpenCV, the methods) are imported inside the sub-command that needs
them, so ``defocus --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from pathlib import Path
from typing import Any


def _predict(args: argparse.Namespace) -> int:
    from defocus.config import DEFAULT_MAX_SIDE, ConfigError, load_config, method_params
    from defocus.methods.base import MethodError
    from defocus.predict import PredictBatchError, predict_files

    try:
        params = {}
        max_side = args.max_side
        if args.config:
            cfg = load_config(args.config)
            params = method_params(cfg, args.method)
            if max_side is None:
                max_side = cfg["methods"]["max_side"]
        if args.params:
            try:
                extra = json.loads(args.params)
            except json.JSONDecodeError as e:
                raise ValueError(f"--params is not valid JSON ({e})") from None
            if not isinstance(extra, dict):
                raise ValueError("--params must be a JSON object, e.g. '{\"window\": 9}'")
            params.update(extra)
        written = predict_files(
            args.method,
            args.images,
            args.out,
            params=params,
            checkpoint=args.checkpoint,
            device=args.device,
            raw=args.raw,
            max_side=DEFAULT_MAX_SIDE if max_side is None else max_side,
            allow_input_folder=args.allow_input_folder,
        )
    except PredictBatchError as e:
        print(f"wrote {len(e.written)} map(s) to {args.out}")
        print(f"defocus predict: {e}", file=sys.stderr)
        return 1
    except (MethodError, ConfigError, ValueError, KeyError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"defocus predict: {msg}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} map(s) to {args.out}")
    return 0


def _render(args: argparse.Namespace) -> int:
    from defocus.render.cli import run

    return int(run(args) or 0)


def _list_or_fetch(command: str, subcommand: str | None, list_table, fetch) -> int:
    """``defocus COMMAND [list | fetch NAME]``: print ``list_table()`` or the path ``fetch()``
    returns (exit status 2 with the reason when the download or its check fails)."""
    if subcommand in (None, "list"):
        print(list_table())
        return 0
    from defocus.datasets.download import DownloadError

    try:
        path = fetch()
    except (DownloadError, KeyError, ValueError) as e:
        print(f"defocus {command} fetch: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from defocus.datasets.registry import list_table

    def fetch() -> Path:
        from defocus.datasets.download import ensure_dataset

        entry = {"root": None, "polarity": None, "sha256": {}}
        return ensure_dataset(args.name, entry, args.dest)

    return _list_or_fetch("datasets", args.datasets_cmd, list_table, fetch)


def _weights(args: argparse.Namespace) -> int:
    from defocus.releases import fetch, get_release, list_table

    return _list_or_fetch(
        "weights",
        args.weights_cmd,
        list_table,
        lambda: fetch(args.name, get_release(args.name).path(args.dest)),
    )


def _methods(args: argparse.Namespace) -> int:
    from defocus.methods.registry import available, method_class

    for name in available():
        try:
            cls = method_class(name)
        except (ImportError, AttributeError) as e:  # a method module that fails to import
            print(f"{name:18s} (unavailable: {e})")
            continue
        kind = "reference" if cls.reference else ("learned" if cls.learned else "classic")
        print(f"{name:18s} {kind:9s} {cls.fidelity.implementation:14s} {cls.citation}")
        print(f"{'':18s} differs from the paper: {cls.fidelity.differs or 'nothing stated'}")
    return 0


# --------------------------------------------------------------------------------------
# defocus score: a folder of released result maps -> one table-1 row
# --------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def configure_score_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``defocus score``."""
    from defocus.io.maps import INTERPOLATIONS

    p.add_argument("--maps", required=True, help="folder of result maps, one per test image")
    p.add_argument(
        "--dataset",
        required=True,
        help="dataset name; the manifest defaults to results/data/DATASET/manifest.csv",
    )
    p.add_argument("--name", default=None, help="row label (default: the maps folder's name)")
    p.add_argument(
        "--invert",
        action="store_true",
        help="maps are white = sharp (default: white = blurred)",
    )
    p.add_argument("--manifest", default=None, help="manifest CSV (default: see --dataset)")
    p.add_argument(
        "--subset",
        action="store_true",
        help="score the images that have a map when some are missing (default: error)",
    )
    p.add_argument(
        "--index-map",
        default=None,
        help="translate result names to ids: 'btbnet_cuhk' (1.bmp..100.bmp of the BTBNet CUHK "
        "split) or a file of '<result name>--<image file>' lines (default: none)",
    )
    p.add_argument(
        "--interpolation",
        default=None,
        choices=sorted(INTERPOLATIONS),
        help="resizing of maps whose size differs from the GT (default: the preset's resize "
        "policy, bilinear for the declared protocol)",
    )
    p.add_argument(
        "--preset",
        default=None,
        help="score under a named protocol preset: declared, defusionnet_t1_blurred, "
        "defusionnet_t1_sharp, hifst_cvpr17, dhde_cvpr17, dmenet_cvpr19, or one defined under "
        "evaluation.presets of --config (default: the config's evaluation.protocol, else "
        "declared)",
    )
    p.add_argument(
        "--config",
        default=None,
        help="take the protocol (keys `evaluation` and `seed`) from this config file, as the "
        "workflow does (default: the declared default protocol)",
    )
    p.add_argument(
        "--protocol",
        default=None,
        help='JSON overrides of the evaluation protocol, e.g. \'{"averaging": "pooled"}\'',
    )
    p.add_argument("--json", action="store_true", help="print the row as JSON")


def run_score(args: argparse.Namespace) -> int:
    """``defocus score``: print the table-1 row of a folder of maps; 0 on success, 2 on error."""
    from defocus.evaluate.score import score
    from defocus.io.manifest import ManifestError
    from defocus.io.maps import ExternalMapsError
    from defocus.io.predictions import PredictionError

    manifest = args.manifest or f"results/data/{args.dataset}/manifest.csv"
    name = args.name or Path(args.maps).resolve().name
    if not _NAME_RE.match(name):
        print(f"defocus score: --name {name!r} must be letters, digits, _.+-", file=sys.stderr)
        return 2
    try:
        protocol = {}
        if getattr(args, "config", None) or getattr(args, "preset", None):
            from defocus.config import load_config
            from defocus.evaluate.protocols import default_evaluation, preset_protocol

            cfg = {"evaluation": default_evaluation(), "seed": 0}
            if getattr(args, "config", None):
                cfg = load_config(args.config)
            evaluation = cfg["evaluation"]
            name = getattr(args, "preset", None) or evaluation["protocol"]
            protocol = preset_protocol(name, evaluation, cfg["seed"], args.dataset)
        if getattr(args, "protocol", None):
            protocol.update(json.loads(args.protocol))
        row = score(
            args.maps,
            manifest,
            name,
            polarity="white_sharp" if args.invert else "white_blurred",
            index_map=args.index_map,
            allow_subset=args.subset,
            interpolation=args.interpolation,
            protocol=protocol,
            dataset=args.dataset,
        )
    except (ExternalMapsError, ManifestError, PredictionError, ValueError) as e:
        print(f"defocus score: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({k: _plain(v) for k, v in row.items()}, indent=2))
        return 0
    keys = ["method", "dataset", "n_images", "f_beta", "f_beta_ci_low", "f_beta_ci_high"]
    keys += ["mae", "mae_ci_low", "mae_ci_high", "f_beta_mean", "f_beta_adaptive"]
    keys += ["accuracy_eq13", "map", "preset", "metric", "value", "images"]
    for k in keys:
        v = row[k]
        print(f"{k:16s} {v:.4f}" if isinstance(v, float) else f"{k:16s} {v}")
    if row["subset"]:
        print(f"{'subset':16s} yes: {row['n_missing']} test image(s) have no map")
    print(row["protocol_text"])
    return 0


def _plain(v: Any) -> Any:
    import numpy as np

    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="defocus",
        description="defocus-bench: defocus blur detection and defocus map estimation.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = p.add_subparsers(dest="cmd", required=True)

    from defocus.config import DEFAULT_MAX_SIDE

    pr = sub.add_parser(
        "predict",
        help="blur maps of your own images (DIR/<stem>.png, 255 = blurred)",
        description="Run a registered method on images (files or folders; RGB, greyscale or "
        "RGBA) and write DIR/<stem>.png with 255 = blurred. Inputs sharing a stem, or whose "
        "map would replace an input, keep their extension: DIR/photo.jpg.png. Hidden files "
        "(._*, .DS_Store) in folders are skipped; a file that fails is reported at the end "
        "(exit status 1) and every other map is still written. Large photos: an image whose "
        f"longer side exceeds --max-side (default {DEFAULT_MAX_SIDE}) is shrunk to it for the "
        "method and its map resized back, which bounds time and memory (reported per file).",
    )
    pr.add_argument(
        "--method", required=True, help="registered method name, e.g. lbp or ref_gradient"
    )
    pr.add_argument(
        "--checkpoint",
        default=None,
        help="checkpoint of a learned method; its network is built from the parameters the "
        "checkpoint records (a contradicting --params is an error)",
    )
    pr.add_argument("--out", required=True, help="output folder")
    pr.add_argument(
        "--allow-input-folder",
        action="store_true",
        help="allow --out to be a folder that holds inputs (no input is ever written over)",
    )
    pr.add_argument("--raw", action="store_true", help="also save the physical map as <stem>.npy")
    pr.add_argument(
        "--max-side",
        type=int,
        default=None,
        help="longest side (px) a method sees: larger images are shrunk to it, predicted and "
        "the map resized back; 0 = full resolution (default: methods.max_side of --config, "
        f"else {DEFAULT_MAX_SIDE})",
    )
    pr.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto"
    )
    pr.add_argument("--config", default=None, help="take method parameters from this config file")
    pr.add_argument(
        "--params", default=None, help="JSON parameter overrides, e.g. '{\"window\": 9}'"
    )
    pr.add_argument("images", nargs="+", help="image files or folders")
    pr.set_defaults(func=_predict)

    rd = sub.add_parser(
        "render",
        help="SYNDOF thin-lens render of one image + depth",
        description="Render a defocused image from a sharp image and its depth with the "
        "thin-lens model and layered blur (Lee et al. CVPR'19); writes blurred.png, sigma.npy, "
        "coc.npy, binary.png and params.json.",
    )
    try:
        from defocus.render.cli import configure_parser
    except ImportError:  # the renderer is an optional part of a partial install
        configure_parser = None
    if configure_parser is not None:
        configure_parser(rd)
    rd.set_defaults(func=_render)

    ds = sub.add_parser("datasets", help="dataset registry and verified downloads")
    dsub = ds.add_subparsers(dest="datasets_cmd", required=True)
    dsub.add_parser("list", help="registry: URLs, sizes, checksums, GT polarity")
    fe = dsub.add_parser("fetch", help="download, verify and unpack one dataset")
    fe.add_argument("name", help="registry name (see `defocus datasets list`)")
    fe.add_argument("--dest", default="resources", help="download folder (default: resources)")
    ds.set_defaults(func=_datasets)

    we = sub.add_parser("weights", help="authors' released weights and tables (registry)")
    wsub = we.add_subparsers(dest="weights_cmd")
    wsub.add_parser("list", help="registry (the default): file, sha256, output, used by")
    wf = wsub.add_parser("fetch", help="download and verify one release to its resources path")
    wf.add_argument("name", help="registry name (see `defocus weights list`)")
    wf.add_argument("--dest", default="resources", help="resources folder (default: resources)")
    we.set_defaults(func=_weights)

    sc = sub.add_parser(
        "score",
        help="score a folder of released result maps (one table-1 row)",
        description="Match released result maps (BTBNet, CENet, DeFusionNet, ... folders) to "
        "the test ids of a dataset manifest, resize them to the GT size, and print their "
        "table-1 row under the declared protocol.",
    )
    configure_score_parser(sc)
    sc.set_defaults(func=run_score)

    me = sub.add_parser("methods", help="list registered methods")
    me.set_defaults(func=_methods)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
