"""The method class :class:`Zeng` (step 5 of :mod:`defocus.methods.zeng`): parameters and
their sources, training on superpixel patches, reading the kernels from a checkpoint,
and inference.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from defocus.methods.base import Method, MethodError, check_image
from defocus.methods.classic._common import to_gray
from defocus.methods.zeng.metric import (
    local_metric,
    metric_kernels,
    normalise_metric,
    pca_kernels,
    refine,
)
from defocus.methods.zeng.net import FIRST_LAYER, ZengNet, patches_to_tensor
from defocus.methods.zeng.patches import BLURRED, SHARP, _augment, manifest_patches

log = logging.getLogger(__name__)


class Zeng(Method):
    """Zeng et al. TIP'19 local metric from ConvNet kernels, refined with tanh.

    Parameters (``defaults``)
    -------------------------
    patch : int
        Side s of the training patches. Not in the review; own choice 32 (divisible by the
        8 of three poolings, about the 27-41 px patches other patch-based DBD nets use).
    n_segments, compactness : int, float
        SLIC superpixels per image (own choice 300: ~1 superpixel per 32x32 px of a
        640x480 CUHK image) and compactness (10, scikit-image's default).
    label_threshold : float
        Blurred/sharp share of a patch needed for its label (own choice 0.9: only patches
        clearly inside one region; the review says "a threshold" without its value).
    kernels, kernel_size : int
        N first-layer kernels (own choice 32) of 7 x 7 (review Sec. 4).
    widths, fc : list of int, int
        Channels of the two later stages (own choice [32, 64]) and fully connected units
        (own choice 128) — a small VGG-like net; only the first layer is used later.
    batch, iterations, lr, weight_decay : int, int, float, float
        Balanced batches (half blurred, half sharp; own choice, CUHK is mostly blurred) of
        128, 20000 Adam iterations at 1e-3 with weight decay 5e-4 (own choice; the review
        gives no optimiser settings).
    n_components : int
        K = 2 principal components (review Sec. 4).
    zero_mean : bool
        Remove the DC of the principal kernels (own choice, :mod:`defocus.methods.zeng` step 3).
    metric_window : int
        Box window of the local energy (own choice 7, the kernels' size).
    norm_percentile : float
        Percentile mapped to 1 when normalising the metric (own choice 99: a robust max).
    refine_window : int
        Neighbourhood of the refinement's mean (own choice 7).
    threshold_scale : float
        Global threshold T = threshold_scale * mean(B0) (own choice 1.0).
    gain : float
        g of the tanh update (own choice 1.0 = plain tanh).
    refine_iterations, refine_at, refine_weights
        N = 100; N1, N2, N3 = 10, 50, 100; alpha = 0.3, 0.2, 0.5 (review Sec. 5).
    """

    name = "zeng"
    fidelity = {
        "implementation": "reconstruction",
        "differs": (
            "rebuilt from a review of the paper; choices it does not give are marked own choice"
        ),
    }
    learned = True
    citation = (
        "Zeng, Wang, Mao, Liu, Peng, Chen, A local metric for defocus blur detection "
        "based on CNN feature learning, IEEE TIP 2019"
    )
    #: a share of the patch's pixels
    bounds = {"label_threshold": "[0, 1]"}
    defaults: ClassVar[dict[str, Any]] = {
        "patch": 32,
        "n_segments": 300,
        "compactness": 10.0,
        "label_threshold": 0.9,
        "kernels": 32,
        "kernel_size": 7,
        "widths": [32, 64],
        "fc": 128,
        "batch": 128,
        "iterations": 20000,
        "lr": 1e-3,
        "weight_decay": 5e-4,
        "n_components": 2,
        "zero_mean": True,
        "metric_window": 7,
        "norm_percentile": 99.0,
        "refine_window": 7,
        "threshold_scale": 1.0,
        "gain": 1.0,
        "refine_iterations": 100,
        "refine_at": [10, 50, 100],
        "refine_weights": [0.3, 0.2, 0.5],
    }

    kernels: np.ndarray | None = None
    explained_variance_ratio: np.ndarray | None = None

    def build_model(self) -> ZengNet:
        """The ConvNet of these parameters (untrained)."""
        p = self.params
        return ZengNet(p["kernels"], p["widths"], p["fc"], p["patch"], p["kernel_size"])

    # -- training ---------------------------------------------------------------------
    def fit(
        self, train: dict[str, list[Path]] | Sequence[Path], cfg: dict | None, workdir: Path
    ) -> Path:
        """Train the ConvNet on superpixel patches of the ``train`` manifests.

        Parameters
        ----------
        train : dict
            ``{"train": [manifest.csv, ...]}`` (a plain list of manifests is accepted too).
        cfg : dict
            ``seed`` and ``device`` (and optionally ``progress``, ``ckpt_every``).
        workdir : Path
            Checkpoints and the loss log of :func:`defocus.train.loop.train`.

        Returns
        -------
        Path
            ``workdir/checkpoint.pt``.
        """
        manifests = train.get("train", []) if isinstance(train, dict) else list(train)
        if not manifests:
            raise MethodError(f"zeng needs manifests under the 'train' role, got {train!r}")
        p = self.params
        patches, labels = manifest_patches(
            manifests,
            patch=p["patch"],
            n_segments=p["n_segments"],
            compactness=p["compactness"],
            label_threshold=p["label_threshold"],
        )
        return self.fit_patches(patches, labels, cfg, workdir)

    def fit_patches(
        self, patches: np.ndarray, labels: np.ndarray, cfg: dict | None, workdir: Path
    ) -> Path:
        """Train on in-memory uint8 patches (B, s, s) with labels 0 sharp / 1 blurred."""
        from defocus.train.loop import TrainConfig
        from defocus.train.loop import train as train_loop

        cfg = dict(cfg or {})
        p = self.params
        by_class = [np.flatnonzero(labels == c) for c in (SHARP, BLURRED)]
        if min(len(i) for i in by_class) == 0:
            raise MethodError(
                f"zeng needs both sharp and blurred patches; got {len(by_class[0])} sharp and "
                f"{len(by_class[1])} blurred (lower label_threshold or add images)"
            )
        log.info("zeng: %d sharp and %d blurred patches", *map(len, by_class))
        device = str(cfg.get("device", self.device))
        half = max(1, int(p["batch"]) // 2)

        def sample_batch(rng: np.random.Generator, dev: str):
            idx = np.concatenate([rng.choice(i, size=half) for i in by_class])
            x = _augment(patches[idx], rng)
            y = torch.from_numpy(labels[idx]).to(dev)
            return patches_to_tensor(x, dev), y

        def step_loss(model: nn.Module, batch):
            x, y = batch
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            acc = (logits.argmax(1) == y).float().mean()
            return loss, {"acc": float(acc)}

        seed = int(cfg.get("seed", 0))
        torch.manual_seed(seed)  # the initial weights depend on the seed only
        model = self.build_model()
        opt = torch.optim.Adam(
            model.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"])
        )
        n_iter = int(p["iterations"])
        tcfg = TrainConfig(
            iterations=n_iter,
            seed=seed,
            device=device,
            ckpt_every=int(cfg.get("ckpt_every", max(1, min(1000, n_iter)))),
            progress=bool(cfg.get("progress", True)),
            extra={"method": self.name, "params": dict(p)},
        )
        ckpt = train_loop(model, opt, tcfg, workdir, sample_batch, step_loss)
        self.model = model  # the trained ConvNet (for evaluation on patches)
        return ckpt

    # -- loading ----------------------------------------------------------------------
    def load(self, checkpoint: Path | None) -> None:
        """Read the first-layer kernels of a checkpoint and compute the PCA kernels.

        Accepts the product checkpoint (``model.pt`` of :func:`defocus.train.loop.finalize`)
        or the loop's ``checkpoint.pt``; both hold the state dict under ``"model"``. Only
        ``conv1.weight`` is used; the kernels are not stored, they are recomputed here.
        """
        super().load(checkpoint)  # None -> MethodError
        path = Path(checkpoint)  # type: ignore[arg-type]
        if not path.is_file():
            raise MethodError(
                f"zeng checkpoint not found: {path}; train it with "
                "`snakemake results/models/zeng/model.pt`"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise MethodError(f"cannot read zeng checkpoint {path}: {e}") from e
        if not isinstance(state, dict) or FIRST_LAYER not in state.get("model", {}):
            raise MethodError(f"{path} is not a zeng checkpoint (no model[{FIRST_LAYER!r}])")
        if state.get("method") not in (None, self.name) and not str(state.get("method")).startswith(
            self.name + "@"
        ):
            raise MethodError(f"{path} was written by method {state['method']!r}, not 'zeng'")
        w = state["model"][FIRST_LAYER].float().numpy()
        self.set_first_layer(w)

    def set_first_layer(self, weights: np.ndarray) -> None:
        """Compute the metric kernels from first-layer weights (N, 1, k, k)."""
        comps, ratio = pca_kernels(weights, int(self.params["n_components"]))
        self.kernels = metric_kernels(comps, bool(self.params["zero_mean"]))
        self.explained_variance_ratio = ratio

    # -- inference --------------------------------------------------------------------
    def sharpness(self, image: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Refined sharpness map S in [0, 1] (1 = sharp) and the snapshots ``{n: B_n}``
        (with ``0: B0``, the normalised local metric)."""
        if self.kernels is None:
            raise MethodError("zeng has no kernels: call load(checkpoint) first")
        image = check_image(image)
        p = self.params
        b0 = normalise_metric(
            local_metric(to_gray(image), self.kernels, int(p["metric_window"])),
            float(p["norm_percentile"]),
        )
        threshold = float(p["threshold_scale"]) * float(b0.mean())
        s, maps = refine(
            b0,
            threshold,
            iterations=int(p["refine_iterations"]),
            snapshots=p["refine_at"],
            weights=p["refine_weights"],
            window=int(p["refine_window"]),
            gain=float(p["gain"]),
        )
        maps[0] = b0
        return s, maps

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Blur map ``1 - S``: float32 (H, W) in [0, 1], 1 = blurred."""
        s, _ = self.sharpness(image)
        return np.clip(1.0 - s, 0.0, 1.0).astype(np.float32)
