"""The DHDE method: edges, patch classification, Eq. 6 filter, propagation and the
release's weighted median (see :mod:`defocus.methods.dhde`)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from defocus.features.handcrafted import FEATURE_DIM
from defocus.features.patches import (
    CANNY_SIGMA,
    CANNY_TEST,
    N_LABELS,
    SIGMA_MIN,
    SIGMA_STEP,
    cnn_input,
    edge_scales,
    load_patches,
    patch_data,
    single_scale_features,
)
from defocus.methods.base import Method, MethodError, check_image
from defocus.methods.dhde.fast import _cnn_forward, deep_features_at
from defocus.methods.dhde.filter import prob_joint_bilateral
from defocus.methods.dhde.net import CNN_CHUNK, DHDENet, parse_features
from defocus.methods.dhde.release import release_state_dict
from defocus.methods.propagation import LAP_TOL, matting_propagation
from defocus.methods.weighted_median import joint_weighted_median

log = logging.getLogger(__name__)


#: Table 1's classification tolerance: |sigma_pred - sigma_true| <= 0.15 (Sec. 3.6)
TOLERANCE = 0.15
#: architecture-defining parameters; ``load`` takes them from the checkpoint
_ARCH_KEYS = ("features", "scales", "relu_logits", "input_scale", "n_labels", "quantise")


def inv_lr(gamma: float, power: float):
    """Caffe's "inv" policy as a LambdaLR factor: ``(1 + gamma * iter) ** (-power)``."""
    return lambda it: (1.0 + gamma * it) ** (-power)


def label_accuracy(pred: np.ndarray, true: np.ndarray, sigmas: np.ndarray, tol: float) -> float:
    """Fraction of labels whose sigma is within ``tol`` of the true sigma (Table 1)."""
    err = np.abs(sigmas[np.asarray(pred)] - sigmas[np.asarray(true)])
    return float(np.mean(err <= tol + 1e-9)) if len(err) else math.nan


def binary_mask(sigma_map: np.ndarray, alpha: float = 0.3) -> np.ndarray:
    """Blurred-region mask ``sigma >= tau``, ``tau = alpha v_max + (1 - alpha) v_min`` (Eq. 13)."""
    vmax, vmin = float(np.max(sigma_map)), float(np.min(sigma_map))
    return sigma_map >= alpha * vmax + (1.0 - alpha) * vmin


class DHDE(Method):
    """Park et al. CVPR'17 defocus map (sigma in pixels) from multi-scale deep + hand-crafted
    features. See the module docstring; every default below cites its source."""

    name = "dhde"
    fidelity = {
        "implementation": "faithful",
        "differs": (
            "follows the release step by step (uint8 features, MATLAB Canny, ProbJBF.m window, "
            "joint weighted median); the median is the exact filter, not jointWMF's 256-level "
            "approximation; the last partial batch is quantised too (the release feeds it "
            "unrounded); propagation by AMG to a 1e-2 residual (lap_solver=direct is exact)"
        ),
        "paper_images": 300,
    }
    learned = True
    has_raw = True
    raw_unit = "px"
    citation = (
        "Park, Tai, Cho, Kweon: A Unified Approach of Multi-scale Deep and Hand-crafted "
        "Features for Defocus Estimation, CVPR 2017"
    )
    #: the propagation's solve scale and relative residual
    bounds = {"lap_scale": "(0, 1]", "lap_tol": "(0, 1)"}
    #: the propagation on a resized image and the weighted median off are speed options
    faithful_params = {"lap_scale": 1.0, "wmf_iterations": 3}
    defaults: ClassVar[dict[str, Any]] = {
        # feature set (Table 1): fD, fG, fS, fH, fC, fB or '+'-joined; fB is the paper's method
        "features": "fB",
        # "multi": 15x15 on strong + 27x27 on weak edges (Sec. 3.1); "single": 27x27 everywhere
        "scales": "multi",
        # labels: sigma_l = sigma_min + (l - 1) sigma_step, l = 1..n_labels (Eq. 10, Sec. 5.1)
        "sigma_min": SIGMA_MIN,
        "sigma_step": SIGMA_STEP,
        "n_labels": N_LABELS,
        # test-time relative Canny (low, high) (ParameterSetting.m edgeThLowCL / edgeThHighCL)
        "canny_weak": list(CANNY_TEST["weak"]),
        "canny_strong": list(CANNY_TEST["strong"]),
        "canny_sigma": CANNY_SIGMA,  # MATLAB edge(..., 'canny') default sqrt(2)
        # "matlab": edge(..., 'canny', [low high]) step by step, as EdgeExtractor.m calls it
        # (defocus.features.canny); "skimage": scikit-image's Canny, rescaled thresholds
        "canny_impl": "matlab",
        # network inputs as the release's uint8 databases: 255 * feature (dbScale = 255)
        "input_scale": 255.0,
        # round the scaled features to uint8 as the release (WriteToDB.m, training;
        # DHDE_defocus_estimation.m, inference); false = continuous features (an ablation)
        "quantise": True,
        "relu_logits": True,  # DHDE_train.prototxt relu3 on fc3
        # solver (DHDE_solver.prototxt): SGD, "inv" lr policy, batch 128 (DHDE_train.prototxt)
        "lr": 1e-4,
        "lr_gamma": 1e-4,
        "lr_power": 2.0,
        "momentum": 0.9,
        "weight_decay": 0.01,
        "batch_size": 128,
        # "sgd" = the release's solver; "adam" (Kingma & Ba; weight decay still applied) is a
        # demo knob of this implementation for short CPU runs, not a paper setting
        "optimizer": "sgd",
        # iterations: the solver's max_iter 800000; the paper does not give the split between
        # the f_C pre-training and the f_B fine-tuning (Sec. 5.1), so each phase gets max_iter
        "iterations": 800000,
        "iterations_pretrain": 800000,
        "ckpt_every": 10000,  # checkpoint interval of the shared loop (solver snapshots 100000)
        # probability-joint bilateral filter (Eq. 6; ParameterSetting.m rJBF = 13)
        "jbf_window": 27,
        # Eq. 6's window and colour term: "release" = ProbJBF.m (square, per channel against
        # the centre's red value); "edges" / "opencv" = OpenCV's disc with an L1 distance
        "jbf_impl": "release",
        "jbf_sigma_s": 100.0,
        "jbf_sigma_r": 100.0,
        "jbf_sigma_c": 1.0,
        # rolling guidance filter of the guide image (Sec. 4.2; ParameterSetting.m)
        "rgf_sigma_s": 1.5,
        "rgf_sigma_r": 1.5,
        "rgf_iterations": 3,
        # matting Laplacian propagation (Eqs. 7-8, Sec. 5.3; ParameterSetting.m prop*)
        "lap_epsilon": 1e-5,
        "lap_lambda": 0.005,
        "lap_radius": 1,
        # solve the propagation on the image resized by this factor (1 = the paper; < 1 is
        # a speed knob of this implementation, not a paper constant)
        "lap_scale": 1.0,
        # propagation solver: "direct" (SuperLU, exact), "amg" (AMG-preconditioned CG, needs
        # pyamg) or "cg" (geometric-multigrid PCG); the iterative ones stop at the relative
        # residual lap_tol (speed knobs of this implementation; see LAP_TOL)
        "lap_solver": "amg",
        "lap_tol": LAP_TOL,
        # joint weighted median after propagation, guided by the rolling-guidance image: in
        # the release (DHDE_defocus_estimation.m: jointWMF(dnsImg, rgfImg, rWMF = 5,
        # sWMFRng = 0.25, ..., iterWMF = 3, 'exp'), ParameterSetting.m), not in the paper.
        # Computed exactly and deterministically (defocus.methods.weighted_median);
        # wmf_iterations: 0 turns it off (an ablation; the 3 passes take ~1 s of a 640x427
        # photo's ~5 s on one core, benchmarks/bench_photos.py)
        "wmf_radius": 5,
        "wmf_sigma": 0.25,
        "wmf_iterations": 3,
        # binary mask threshold tau = alpha vmax + (1 - alpha) vmin (Eq. 13, Sec. 5.3)
        "alpha": 0.3,
        # patches per forward pass at inference (memory bound, not a paper constant)
        "predict_batch": 8192,
        # "" = train (fit); "release" = the authors' model (defocus.releases "dhde", fetched and
        # converted instead of training: features fB, multi-scale); or a path to a .caffemodel
        "weights": "",
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.hand, self.use_cnn = parse_features(self.params["features"])
        if self.params["scales"] not in ("multi", "single"):
            raise ValueError(f"scales must be 'multi' or 'single', got {self.params['scales']!r}")
        self.net: DHDENet | None = None

    # -- helpers ---------------------------------------------------------------------
    @property
    def sigmas(self) -> np.ndarray:
        p = self.params
        return p["sigma_min"] + p["sigma_step"] * np.arange(int(p["n_labels"]))

    def build_net(self) -> DHDENet:
        p = self.params
        return DHDENet(
            self.hand,
            self.use_cnn,
            p["relu_logits"],
            p["input_scale"],
            p["n_labels"],
            bool(p["quantise"]),
        )

    def _inputs(self, data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, 120) float32, CNN input (N, 27, 27, 3) uint8) of loaded patches."""
        if self.params["scales"] == "single":
            feats = single_scale_features(data["patches_large"]) if self.hand else None
            rgb = data["patches_large"]
        else:
            feats = data["features"]
            rgb = cnn_input(data["patches_large"], data["scale"]) if self.use_cnn else None
        n = len(data["label"])
        if feats is None:
            feats = np.zeros((n, 3 * FEATURE_DIM), np.float32)
        if rgb is None:
            rgb = np.zeros((n, 0, 0, 3), np.uint8)
        return feats.astype(np.float32), rgb

    def _check_sigmas(self, sigmas: np.ndarray) -> None:
        if len(sigmas) != len(self.sigmas) or not np.allclose(sigmas, self.sigmas):
            raise ValueError(
                f"patch file labels have sigmas {np.round(sigmas, 4).tolist()}, method "
                f"parameters give {np.round(self.sigmas, 4).tolist()}; resample the patches or "
                "set sigma_min / sigma_step / n_labels to match"
            )

    # -- training --------------------------------------------------------------------
    def fit(self, data: Any, cfg: dict | None, workdir: Path) -> Path:
        """Train on the patch files of role ``patches``; return the last phase's checkpoint.

        With both hand-crafted and deep features, the classifier is first trained on f_C
        alone (the hand-crafted inputs are zeros; ``workdir/pretrain``), then fine-tuned with
        all features (``workdir/finetune``), as in Sec. 5.1. Each phase resumes on its own.
        """
        from defocus.train.loop import TrainConfig, load_checkpoint, save_checkpoint, train

        if self.params["weights"]:
            return self._import_weights(data, save_checkpoint, Path(workdir))
        if not isinstance(data, dict) or not data.get("patches"):
            raise ValueError(
                f"DHDE trains on patch files: expected data {{'patches': [h5, ...]}}, got {data!r}"
            )
        cfg = dict(cfg or {})
        seed, device = int(cfg.get("seed", 0)), str(cfg.get("device", self.device))
        workdir = Path(workdir)
        p = self.params
        tr = load_patches(data["patches"], split="train")
        if len(tr["label"]) == 0:
            raise ValueError(f"no training patches in {data['patches']}")
        self._check_sigmas(tr["sigmas"])
        feats, rgb = self._inputs(tr)
        feats_t = torch.from_numpy(feats)
        rgb_t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)))
        labels_t = torch.from_numpy(tr["label"].astype(np.int64))
        n = len(labels_t)
        log.info("DHDE %s: %d training patches", p["features"], n)
        bs = int(p["batch_size"])

        def batch_sampler(zero_hand: bool):
            def sample(rng: np.random.Generator, dev: str):
                idx = torch.from_numpy(rng.integers(0, n, size=bs))
                h = feats_t[idx]
                if zero_hand:
                    h = torch.zeros_like(h)
                r = rgb_t[idx] if self.use_cnn else None
                return (
                    h.to(dev),
                    None if r is None else r.to(dev),
                    labels_t[idx].to(dev),
                )

            return sample

        def step_loss(model, batch):
            h, r, y = batch
            logits = model(h, r)
            loss = nn.functional.cross_entropy(logits, y)
            acc = (logits.argmax(1) == y).float().mean()
            return loss, {"acc": float(acc)}

        torch.manual_seed(seed)
        model = self.build_net()
        phases = [("train", int(p["iterations"]), False)]
        if self.use_cnn and self.hand:
            phases = [
                ("pretrain", int(p["iterations_pretrain"]), True),
                ("finetune", int(p["iterations"]), False),
            ]
        ckpt = None
        for name, iters, zero_hand in phases:
            if ckpt is not None:  # start the next phase from the previous one's weights
                model.load_state_dict(load_checkpoint(ckpt)["model"])
            if p["optimizer"] == "adam":
                opt = torch.optim.Adam(
                    model.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"])
                )
            elif p["optimizer"] == "sgd":
                opt = torch.optim.SGD(
                    model.parameters(),
                    lr=float(p["lr"]),
                    momentum=float(p["momentum"]),
                    weight_decay=float(p["weight_decay"]),
                )
            else:
                raise ValueError(f"optimizer must be 'sgd' or 'adam', got {p['optimizer']!r}")
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, inv_lr(float(p["lr_gamma"]), float(p["lr_power"]))
            )
            tcfg = TrainConfig(
                iterations=iters,
                seed=seed,
                device=device,
                ckpt_every=max(1, min(int(p["ckpt_every"]), iters)),
                progress=bool(cfg.get("progress", True)),
                extra={"method": self.name, "phase": name, "params": dict(p)},
            )
            ckpt = train(
                model,
                opt,
                tcfg,
                workdir / name,
                batch_sampler(zero_hand),
                step_loss,
                scheduler=sched,
            )
        self.net = model.to(self.device).eval()
        return ckpt

    def _check_release_arch(self) -> None:
        p, d = self.params, self.defaults
        # quantise is how features are fed, not the network: the release model runs without
        # it as an ablation of that step
        arch = {k: p[k] for k in _ARCH_KEYS if k != "quantise" and p[k] != d[k]}
        if arch:
            raise ValueError(f"the release model is fB, multi-scale, 11 labels; got {arch}")

    def _import_weights(self, data: Any, save_checkpoint, workdir: Path) -> Path:
        """``fit`` with ``weights`` set: convert the release model into a checkpoint."""
        src = (data or {}).get("weights") if isinstance(data, dict) else None
        if not src:
            raise ValueError(
                f"weights={self.params['weights']!r}: expected data {{'weights': [file]}}"
            )
        self._check_release_arch()
        ckpt = workdir / "release" / "checkpoint.pt"
        save_checkpoint(
            ckpt,
            {
                "model": release_state_dict(Path(src[0])),
                "iteration": 0,
                "config": {"params": dict(self.params), "source": str(src[0])},
            },
        )
        log.info("DHDE: converted the release model %s (no training)", src[0])
        return ckpt

    # -- inference -------------------------------------------------------------------
    def load(self, checkpoint: Path | None) -> None:
        """Load a product checkpoint (``finalize``), a training checkpoint of ``fit`` or the
        release's ``.caffemodel`` itself."""
        from defocus.train.loop import load_checkpoint

        super().load(checkpoint)
        if Path(checkpoint).suffix.lower() == ".caffemodel":
            self._check_release_arch()
            net = self.build_net()
            net.load_state_dict(release_state_dict(checkpoint))
            self.net = net.to(self.device).eval()
            return
        state = load_checkpoint(checkpoint)
        saved = state.get("params") or state.get("config", {}).get("params") or {}
        changed = {k: saved[k] for k in _ARCH_KEYS if k in saved and saved[k] != self.params[k]}
        if changed:
            log.info("architecture parameters from the checkpoint: %s", changed)
            self.params.update(changed)
            self.hand, self.use_cnn = parse_features(self.params["features"])
        net = self.build_net()
        net.load_state_dict(state["model"])
        self.net = net.to(self.device).eval()

    def _require_net(self) -> DHDENet:
        if self.net is None:
            raise MethodError(
                "DHDE has no trained network: call load(checkpoint) (or fit) before predicting"
            )
        return self.net

    def classify(
        self, feats: np.ndarray, rgb: np.ndarray | None, deep: torch.Tensor | None = None
    ) -> np.ndarray:
        """Softmax probabilities (N, 11) of features (N, 120) and CNN inputs (N, 27, 27, 3).

        ``deep``: the f_C features (N, 25) when already computed (:func:`deep_features_at`);
        ``rgb`` is then not read.

        The CNN runs channels-last (the uint8 NHWC patches are its memory layout already) in
        chunks of :data:`CNN_CHUNK` patches, which stay in cache: ~5x faster than one
        NCHW batch on one core; results agree to float32 rounding. The first ReLU + max pool
        run as :func:`_relu_pool3` (same values, ~4x less time on those two layers).
        """
        net = self._require_net()
        n_labels = int(self.params["n_labels"])
        if len(feats) == 0:
            return np.zeros((0, n_labels), np.float32)
        out = np.empty((len(feats), n_labels), np.float32)
        bs = int(self.params["predict_batch"])
        # outside inference mode: the converted weights must stay usable for training
        cnn = net.cnn.to(memory_format=torch.channels_last) if self.use_cnn else None
        with torch.inference_mode():
            for s in range(0, len(feats), bs):
                parts = []
                if net.hand:
                    h = torch.from_numpy(np.ascontiguousarray(feats[s : s + bs], np.float32))
                    parts.append(net.hand_input(h.to(self.device)))
                if cnn is not None and deep is not None:
                    parts.append(deep[s : s + bs])
                elif cnn is not None:
                    rgb_t = torch.from_numpy(np.ascontiguousarray(rgb[s : s + bs]))
                    chunks = [
                        _cnn_forward(
                            cnn, rgb_t[c : c + CNN_CHUNK].to(self.device).permute(0, 3, 1, 2)
                        )
                        for c in range(0, len(rgb_t), CNN_CHUNK)
                    ]
                    parts.append(torch.cat(chunks))
                logits = net.classifier(torch.cat(parts, dim=1))
                out[s : s + bs] = torch.softmax(logits, dim=1).cpu().numpy()
        return out

    def patch_accuracy(self, paths: list[Path], split: str = "val") -> dict[str, float]:
        """Table 1 accuracy (tolerance 0.15 in sigma) and exact accuracy on a split."""
        data = load_patches(paths, split=split)
        self._check_sigmas(data["sigmas"])
        feats, rgb = self._inputs(data)
        pred = self.classify(feats, rgb).argmax(1)
        y = data["label"].astype(np.int64)
        return {
            "accuracy": label_accuracy(pred, y, self.sigmas, TOLERANCE),
            "exact": float(np.mean(pred == y)) if len(y) else math.nan,
            "n": int(len(y)),
        }

    def edge_pixels(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, columns and scales (0 = 15x15, 1 = 27x27) of the edge patches (Sec. 3.1)."""
        p = self.params
        smap = edge_scales(
            image, p["canny_weak"], p["canny_strong"], p["canny_sigma"], str(p["canny_impl"])
        )
        if p["scales"] == "single":
            smap[smap >= 0] = 1
        rows, cols = np.nonzero(smap >= 0)
        return rows, cols, smap[rows, cols].astype(np.uint8)

    def patch_probabilities(
        self, image: np.ndarray, rows: np.ndarray, cols: np.ndarray, scales: np.ndarray
    ) -> np.ndarray:
        """Label probabilities (N, 11) of the patches centred at (rows, cols) of ``image``."""
        rgb, feats = patch_data(image, rows, cols, scales)
        deep = None
        if self.use_cnn:
            cnn = self._require_net().cnn.to(memory_format=torch.channels_last)  # speed only
            with torch.inference_mode():
                deep = deep_features_at(cnn, image, rows, cols, scales, rgb, self.device)
        return self.classify(feats, None, deep)

    def sparse_map(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse sigma map, confidence map and edge mask of an RGB uint8 image (Sec. 4.1)."""
        rows, cols, scales = self.edge_pixels(image)
        sparse = np.zeros(image.shape[:2], np.float32)
        conf = np.zeros(image.shape[:2], np.float32)
        mask = np.zeros(image.shape[:2], bool)
        mask[rows, cols] = True
        if rows.size == 0:
            return sparse, conf, mask
        prob = self.patch_probabilities(image, rows, cols, scales)
        sparse[rows, cols] = self.sigmas[prob.argmax(1)]
        conf[rows, cols] = prob.max(1)
        return sparse, conf, mask

    def guide_image(self, image: np.ndarray) -> np.ndarray:
        """Rolling-guidance-filtered image in [0, 1] (Sec. 4.2; Zhang et al. ECCV'14)."""
        import cv2

        p = self.params
        return cv2.ximgproc.rollingGuidanceFilter(
            image.astype(np.float32) / 255.0,
            d=-1,
            sigmaColor=float(p["rgf_sigma_r"]),
            sigmaSpace=float(p["rgf_sigma_s"]),
            numOfIter=int(p["rgf_iterations"]),
        )

    def refine(
        self, sparse: np.ndarray, conf: np.ndarray, mask: np.ndarray, guide: np.ndarray
    ) -> np.ndarray:
        """Eq. 6 filtering, Eqs. 7-8 propagation and the release's weighted median."""
        p = self.params
        if not mask.any():
            return np.full(mask.shape, self.sigmas[0], np.float32)
        jbf = prob_joint_bilateral(
            sparse,
            conf,
            mask,
            guide,
            p["jbf_window"],
            p["jbf_sigma_s"],
            p["jbf_sigma_r"],
            p["jbf_sigma_c"],
            impl=str(p["jbf_impl"]),
        )
        dense = matting_propagation(
            jbf,
            mask,
            guide,
            p["lap_lambda"],
            p["lap_epsilon"],
            int(p["lap_radius"]),
            float(p["lap_scale"]),
            str(p["lap_solver"]),
            float(p["lap_tol"]),
        )
        if int(p["wmf_iterations"]) > 0:
            dense = joint_weighted_median(
                dense,
                guide,
                int(p["wmf_radius"]),
                float(p["wmf_sigma"]),
                int(p["wmf_iterations"]),
            )
        return dense.astype(np.float32)

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Full defocus map: Gaussian sigma in pixels, float32 (H, W)."""
        image = check_image(image)
        self._require_net()
        sparse, conf, mask = self.sparse_map(image)
        return self.refine(sparse, conf, mask, self.guide_image(image))
