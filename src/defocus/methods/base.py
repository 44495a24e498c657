"""The interface every method implements, classic or learned.

A method turns one RGB uint8 image into a float32 blur map in [0, 1] of the image's size
(**1 = blurred**). Methods with a physical output (Gaussian sigma, circle of confusion)
also implement :meth:`Method.predict_raw`, returning the map in pixels; ``predict`` then
min-max normalises it per image, as the papers do for binary metrics.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class MethodError(RuntimeError):
    """A method cannot run as configured (e.g. a learned method without a checkpoint)."""


#: what a table row is, against its paper (column ``implementation``):
#: faithful: every step the paper (and the authors' release, where one exists) states;
#: substitute: a stated step replaced by a named alternative (``Fidelity.differs``);
#: reconstruction: rebuilt from an abstract, a review or third-party code (paper text or
#: code unavailable); reference: a trivial baseline, no paper; external: released maps
IMPLEMENTATIONS = ("faithful", "substitute", "reconstruction", "reference", "external")
#: where a row's weights came from (column ``weights``)
WEIGHTS = ("trained here", "authors' release", "external maps", "none")
#: what a backbone was initialised from (column ``backbone_init``)
BACKBONE_INITS = ("imagenet", "random", "authors' release", "n/a")


@dataclass(frozen=True)
class Fidelity:
    """How a method class stands against its paper; one class attribute per method.

    Parameters
    ----------
    implementation : str
        One of :data:`IMPLEMENTATIONS` (not ``external``: that is a property of a folder of
        maps, not of a class).
    differs : str
        One line: what differs from the paper ("" only for a faithful method that differs in
        nothing but the scale set by config).
    paper_images : int or None
        Training images of the paper's run (learned methods; None where the paper does not
        say). The paper's iterations are the class default ``iterations``.
    """

    implementation: str
    differs: str
    paper_images: int | None = None

    def __post_init__(self) -> None:
        if self.implementation not in IMPLEMENTATIONS[:4]:
            raise ValueError(
                f"implementation must be one of {IMPLEMENTATIONS[:4]}, got {self.implementation!r}"
            )


def count_training_images(data: dict[str, list[str]], max_images: int = 0) -> int | None:
    """Images a training run drew from: ``train`` rows of its manifests (capped by
    ``max_images`` when > 0) plus the training source images of its patch files (not the
    held-out ``val_sources``); None when a file cannot be read (e.g. moved since training)."""
    from defocus.io.manifest import read_manifest

    seen: set[str] = set()
    total = 0
    for paths in data.values():
        for path in map(str, paths):
            if path in seen:
                continue
            seen.add(path)
            try:
                if path.endswith(".csv"):
                    total += len(read_manifest(path, split="train", check_files=False))
                elif path.endswith((".h5", ".hdf5")):
                    import h5py

                    with h5py.File(path, "r") as f:  # held-out (val) sources not counted
                        held_out = json.loads(f.attrs.get("val_sources", "[]"))
                        total += len(json.loads(f.attrs["sources"])) - len(held_out)
                else:  # a weights file converted instead of trained
                    continue
            except (OSError, KeyError, ValueError):
                return None
    return min(total, max_images) if max_images > 0 else total


#: the blur-map value of "undecided": what a constant (evidence-free) physical map becomes
UNDECIDED = 0.5


def minmax_normalise(x: np.ndarray) -> np.ndarray:
    """Per-image min-max normalisation to [0, 1].

    A constant map (no edge found, a propagation without constraints) carries no evidence
    either way; it becomes :data:`UNDECIDED` (0.5) everywhere, not 0, which would read as
    "all in focus". The evaluation flags such maps (per-image column ``no_evidence``).
    """
    x = np.asarray(x, dtype=np.float32)
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    if not np.isfinite(lo) or hi - lo <= 1e-12:
        return np.full(x.shape, UNDECIDED, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)


class Method:
    """Base class. Subclasses set ``name`` and ``defaults`` and override ``predict``.

    Parameters
    ----------
    **params
        Overrides of ``defaults`` (from config or an ablation name ``method@key=value``).
        Unknown keys raise ``ValueError`` naming the valid ones.
    """

    name: ClassVar[str] = "base"
    #: default parameters, each documented (with its source) in the subclass
    defaults: ClassVar[dict[str, Any]] = {}
    #: True for methods that must be trained before ``predict`` (``fit`` returns a checkpoint)
    learned: ClassVar[bool] = False
    #: True when ``predict_raw`` returns a physical map (unit in ``raw_unit``)
    has_raw: ClassVar[bool] = False
    raw_unit: ClassVar[str] = ""
    #: True for trivial reference rows (not paper methods); tables label them as such
    reference: ClassVar[bool] = False
    #: one line shown in tables' captions and ``defocus predict --help``
    citation: ClassVar[str] = ""
    #: what the implementation is against the paper, and what differs (see :class:`Fidelity`);
    #: a subclass may write it as a dict of Fidelity's fields
    fidelity: ClassVar[Fidelity] = Fidelity("substitute", "the method class does not say")
    #: speed options and their faithful values (``{"stride": 1}``): a row run with another
    #: value is no longer ``faithful`` but a ``substitute``, and its ``differs`` names the option
    faithful_params: ClassVar[dict[str, Any]] = {}
    #: intervals that parameters must lie in, as ``"[lo, hi)"`` text (``inf`` for no bound),
    #: checked with the config before any job runs (:func:`defocus.config.method_param_errors`),
    #: beside the bounds every method shares by name (``defocus.config.COMMON_BOUNDS``)
    bounds: ClassVar[dict[str, str]] = {}
    #: torch device for learned methods ("cpu" or "cuda"); set by the runner
    device: str = "cpu"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("fidelity")
        if isinstance(declared, dict):
            cls.fidelity = Fidelity(**declared)

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for method {self.name!r}; "
                f"valid: {sorted(self.defaults)}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}

    # -- training ---------------------------------------------------------------------
    def fit(self, train: Any, cfg: dict | None, workdir: Path) -> Path | None:
        """Train on ``train`` (a manifest or a patch file); return the checkpoint path.

        Classic methods have nothing to train and return ``None``.
        """
        return None

    def load(self, checkpoint: Path | None) -> None:
        """Load a checkpoint written by :meth:`fit` (no-op for classic methods)."""
        if self.learned and checkpoint is None:
            raise MethodError(
                f"method {self.name!r} is learned and needs a checkpoint; "
                f"make one with `snakemake results/models/{self.name}/model.pt`"
            )

    # -- provenance -------------------------------------------------------------------
    def weights_source(self) -> str:
        """Column ``weights``: ``authors' release`` for a converted release (parameter
        ``weights``), ``trained here`` for other learned methods, else ``none``."""
        if self.params.get("weights"):
            return "authors' release"
        return "trained here" if self.learned else "none"

    def backbone_init(self) -> str:
        """Column ``backbone_init``: what the backbone was initialised from.

        A method with a pretrainable backbone has the parameter ``pretrained`` (and
        ``vgg_weights``). Since :func:`defocus.methods.backbones.vgg_features` stops instead
        of falling back to random weights, ``pretrained: true`` means the ImageNet weights
        (torchvision's, or the named ``vgg_weights`` file) were loaded.
        """
        if self.params.get("weights"):
            return "authors' release"
        if "pretrained" not in self.params:
            return "n/a"
        return "imagenet" if self.params["pretrained"] else "random"

    def training_record(self, data: dict[str, list[str]]) -> dict[str, Any]:
        """What a training run used, for the product checkpoint's ``metadata``:
        ``backbone_init``, ``n_train_images`` (see :func:`count_training_images`) and
        ``iterations`` (the parameter; the checkpoint's own ``iteration`` is what ran)."""
        n = count_training_images(data, int(self.params.get("max_train_images", 0) or 0))
        return {
            "backbone_init": self.backbone_init(),
            "n_train_images": n,
            "iterations": self.params.get("iterations"),
        }

    def provenance(self, checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
        """What a table row is: ``implementation, weights, backbone_init, training,
        paper_scale, faithful`` (strings and booleans), and ``differs``.

        ``training`` compares what ran with the paper, e.g. ``300/20000 it, 4/604 img``
        (iterations from the checkpoint's ``iteration``, images from its metadata written by
        the training entry point; ``?`` where unknown). ``paper_scale`` is True when no known
        quantity falls short of the paper's (iterations, images, and an ImageNet backbone
        where the paper starts from one); ``faithful`` = faithful implementation at paper
        scale: the rows the tables do not mark with a dagger.
        """
        meta: dict[str, Any] = {}
        iteration = self.params.get("iterations")
        # a product or training checkpoint of this package (not an authors' .caffemodel/.npz)
        ours = checkpoint and Path(checkpoint).suffix.lower() in (".pt", ".pth")
        if ours and Path(checkpoint).is_file() and self.learned:
            from defocus.train.loop import load_checkpoint

            state = load_checkpoint(checkpoint)
            meta = dict(state.get("metadata") or {})
            iteration = state.get("iteration", iteration)
        weights = self.weights_source()
        backbone = str(meta.get("backbone_init") or self.backbone_init())
        paper_it = type(self).defaults.get("iterations")
        paper_img = self.fidelity.paper_images
        short = []
        if weights == "trained here":
            n_img = meta.get("n_train_images")
            parts = []
            if paper_it is not None:
                parts.append(f"{'?' if iteration is None else int(iteration)}/{int(paper_it)} it")
                short.append(iteration is None or int(iteration) < int(paper_it))
            parts.append(
                f"{'?' if n_img is None else int(n_img)}/{'?' if paper_img is None else paper_img}"
                " img"
            )
            if paper_img is not None:  # an unknown count is not claimed to be paper scale
                short.append(n_img is None or int(n_img) < paper_img)
            training = ", ".join(parts)
        elif weights == "authors' release":
            training = "authors' release"
        else:
            training = "n/a"
        if type(self).defaults.get("pretrained") and backbone == "random":
            short.append(True)
        paper_scale = not any(short)
        implementation, differs = self.fidelity.implementation, self.fidelity.differs
        off = [
            f"{k}={self.params.get(k)!r} (faithful: {v!r})"
            for k, v in type(self).faithful_params.items()
            if self.params.get(k) != v
        ]
        if off:  # a speed option set away from the paper's / release's value
            if implementation == "faithful":
                implementation = "substitute"
            differs = "speed option " + ", ".join(off) + (f"; {differs}" if differs else "")
        return {
            "implementation": implementation,
            "weights": weights,
            "backbone_init": backbone,
            "training": training,
            "paper_scale": paper_scale,
            "faithful": implementation == "faithful" and paper_scale,
            "differs": differs,
        }

    # -- inference --------------------------------------------------------------------
    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Physical map (pixels) for methods with ``has_raw``; else the blur map itself."""
        raise MethodError(f"method {self.name!r} has no physical (raw) output")

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Blur map, float32 (H, W) in [0, 1], 1 = blurred."""
        if self.has_raw:
            return minmax_normalise(self.predict_raw(image))
        raise MethodError(f"{type(self).__name__} defines neither predict() nor predict_raw()")


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate the input of ``predict``: RGB uint8 (H, W, 3) with H, W >= 8."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}; "
            "use defocus.io.image.to_rgb_uint8 to convert"
        )
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image too small for a blur map: {image.shape[:2]} (need >= 8x8)")
    return image
