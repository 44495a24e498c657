"""The DMENet method class: parameters, training through the shared loop, the authors'
checkpoint, checkpoints and inference."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from defocus.methods.base import Method, MethodError, check_image
from defocus.methods.dmenet.data import _load_role, _read, augment
from defocus.methods.dmenet.layers import STRIDE, VGG_INPUTS
from defocus.methods.dmenet.net import BlurNet, DMENetModel
from defocus.methods.dmenet.trainer import Trainer, _check_subnets

log = logging.getLogger(__name__)

#: parameters that fix the network's shape or the meaning of its output; a checkpoint fixes them
ARCH_KEYS = ("width", "subnets", "aux", "sigma_max", "vgg_input", "target", "max_coc")
#: training targets: sigma / sigma_max (our SYNDOF render) or CoC / max_coc (release data)
TARGETS = ("sigma", "coc")


class DMENet(Method):
    """DMENet (Lee et al. CVPR'19): defocus (sigma) map estimation with domain adaptation.

    Training roles for :meth:`fit`: ``synthetic`` (SYNDOF manifests with ``defocus`` sigma
    maps, or ``coc`` maps with ``target="coc"``; always), ``real`` (unlabelled real defocused
    images; needed with D) and ``binary`` (real images with binary blur masks, 255 = blurred;
    needed with S, also fed to D). Only the ``train`` split of each manifest is used.

    ``weights="release"`` (or a path to ``DMENet_BDCS.npz``) converts the authors' trained
    TensorLayer checkpoint instead of training (:mod:`defocus.methods.dmenet.release`); it
    needs ``vgg_input="caffe"``, ``target="coc"`` and ``width=1``, which
    :meth:`release_params` sets.
    """

    name = "dmenet"
    fidelity = {
        "implementation": "faithful",
        "differs": (
            "the authors' release (model.py, main.py) in PyTorch; trained here on the "
            "authors' released data (dmenet_release) or this project's SYNDOF render, or "
            "the authors' checkpoint converted (dmenet@weights=release: the checkpoint the "
            "README says replaces the lost paper one)"
        ),
        "paper_images": 8231,
    }
    learned = True
    has_raw = True
    raw_unit = "px"
    citation = "Lee et al., DMENet, CVPR 2019"
    #: the step decay factor of the learning rate
    bounds = {"lr_decay": "(0, 1]"}
    defaults: ClassVar[dict[str, Any]] = {
        # --- network and ablations (paper Sec. 4, 5.1) ---
        "subnets": "BDCS",  # subnetworks; "B", "BD", "BDC", "BDCS" = DMENet_B .. DMENet_BDCS
        "aux": True,  # scale-wise aux loss (paper Sec. 4.1); false = BDCS w/o aux (Sec. 5.1)
        "width": 1.0,  # channel multiplier of every layer; 1 = published (< 1: demo/tests only)
        # "imagenet" (torchvision VGG19), a local state-dict file, or the release's Caffe
        # vgg19.npy (release README step 6; needs vgg_input "caffe")
        "vgg_weights": "imagenet",
        "pretrained": True,  # paper Sec. 4.1: "pretrained VGG19" encoder; C is the same VGG19
        # encoder input convention: "torchvision" (RGB, ImageNet mean/std) or "caffe" (BGR,
        # 0-255 minus the Caffe mean: release model.py VGG19_down; the release's weights)
        "vgg_input": "torchvision",
        # --- losses (paper Sec. 5: the same values; release config.py) ---
        "lambda_adv": 1.0e-3,  # config.TRAIN.lambda_adv
        "lambda_c": 1.0e-4,  # config.TRAIN.lambda_perceptual
        "lambda_s": 2.0e-2,  # config.TRAIN.lambda_binary
        "lambda_aux": 1.0,  # paper: lambda_aux = 1 (release adds the aux sum unweighted)
        "lambda_lr_d": 1.0,  # config.TRAIN.lambda_lr_d: D's lr = lr * this
        # batch-norm scale: the release has none (BatchNormLayer gamma_init=None, model.py):
        # false = held at 1; true = trained (PyTorch's default BN)
        "bn_scale": False,
        # --- optimisation (release config.py) ---
        "lr": 1.0e-4,  # config.TRAIN.lr_init (Adam)
        "beta1": 0.9,  # config.TRAIN.beta1
        "lr_decay": 0.8,  # config.TRAIN.lr_decay
        "lr_decay_every": 20,  # epochs (config.TRAIN.decay_every); 1 epoch = N_synthetic / batch
        "batch_size": 3,  # config.TRAIN.batch_size (per role)
        "crop": 240,  # config.TRAIN.height / width
        "max_side": 800,  # utils.crop_pair...: images with a short side > 800 are shrunk to it
        # the release trains open-ended (n_epoch = 10000, stopped by hand) and the paper gives
        # no count: 100k iterations ~ 36 epochs of 8,231 SYNDOF images at batch 3 (our choice)
        "iterations": 100000,
        "ckpt_every": 1000,  # checkpoint period (iterations) of the shared loop
        # threads decoding and augmenting the next batches (3 roles x batch PNGs per step)
        # while the network trains; speed only, the batches do not depend on it
        "loader_workers": 2,
        # --- GT normalisation / output unit ---
        # target = sigma / sigma_max; our renderer: sigma = (CoC - 1)/4 with max CoC 29 px ->
        # 7 (release utils.py: "when max_coc = 29, max_sigma = 7"); the authors' own released
        # SYNDOF maps are divided by 15 (config.TRAIN.max_coc) instead: target "coc"
        "sigma_max": 7.0,
        # "sigma": learn sigma / sigma_max; "coc": learn CoC / max_coc (the released SYNDOF's
        # labels, utils.py lines 38-43) with sigma = max(0, (CoC - 1) / 2) (main.py line 500)
        "target": "sigma",
        "max_coc": 15.0,  # config.TRAIN.max_coc
        # "" = train (fit); "release" = the authors' DMENet_BDCS.npz (fetched and converted);
        # or a path to a TensorLayer .npz checkpoint of the release's model.py
        "weights": "",
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        if p["weights"]:
            self._apply_release_arch()
        p["subnets"] = _check_subnets(p["subnets"])
        if not isinstance(p["aux"], bool):
            raise ValueError(f"aux must be true or false, got {p['aux']!r}")
        if int(p["crop"]) % STRIDE or int(p["crop"]) < 2 * STRIDE:
            raise ValueError(f"crop must be a multiple of {STRIDE} and >= {2 * STRIDE}")
        if not float(p["sigma_max"]) > 0:
            raise ValueError(f"sigma_max must be > 0, got {p['sigma_max']!r}")
        if p["vgg_input"] not in VGG_INPUTS:
            raise ValueError(f"vgg_input must be one of {VGG_INPUTS}, got {p['vgg_input']!r}")
        caffe_vgg = str(p["vgg_weights"]).lower().endswith(".npy") or p["vgg_weights"] == "release"
        if caffe_vgg and p["vgg_input"] != "caffe":
            raise ValueError(
                f"vgg_weights {p['vgg_weights']} is the Caffe VGG19 (BGR, 0-255 minus the mean): "
                "set vgg_input: caffe"
            )
        if p["target"] not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {p['target']!r}")
        if not float(p["max_coc"]) > 0:
            raise ValueError(f"max_coc must be > 0, got {p['max_coc']!r}")
        if int(p["batch_size"]) < 2:
            raise ValueError("batch_size must be >= 2 (batch norm in training)")
        self._net: BlurNet | None = None

    # -- training --------------------------------------------------------------------------
    def trainer(self) -> Trainer:
        """The networks and optimisers of the current parameters (seed torch first)."""
        return Trainer(self.params)

    def fit(self, data: dict[str, list[Path]], cfg: dict | None, workdir: Path) -> Path:
        """Train with the shared loop; returns ``workdir/checkpoint.pt``.

        ``data``: ``{role: [manifest, ...]}`` with roles ``synthetic``, ``real``, ``binary``
        (``real_no_label``, the release's name of the unlabelled images, counts as ``real``).
        ``cfg``: ``seed``, ``device`` and optionally ``stop_after`` (interrupt after that many
        iterations; used by the resume test).
        """
        from defocus.train.loop import TrainConfig, train

        if self.params["weights"]:
            return self._import_weights(data, Path(workdir))
        cfg = dict(cfg or {})
        seed, device = int(cfg.get("seed", 0)), str(cfg.get("device", self.device))
        self.device = device
        p = self.params
        data = dict(data)
        if "real_no_label" in data:  # the release's name of the unlabelled role (main.py)
            data["real"] = [*data.get("real", []), *data.pop("real_no_label")]
        unknown = set(data) - {"synthetic", "real", "binary"}
        if unknown or "synthetic" not in data:
            raise ValueError(
                f"dmenet trains on roles 'synthetic' (required), 'real' (alias "
                f"'real_no_label') and 'binary'; got {sorted(data)}"
            )
        torch.manual_seed(seed)  # initialisation depends on the seed only (resume rebuilds it)
        tr = self.trainer()
        for role in tr.real_roles:
            if role not in data:
                what = "unlabelled real images for D" if role == "real" else "binary masks for S"
                raise ValueError(f"subnets={tr.subnets!r} needs the role {role!r} ({what})")
        sm, target, max_coc = float(p["sigma_max"]), str(p["target"]), float(p["max_coc"])
        roles = ["synthetic", *tr.real_roles]
        if "D" in tr.subnets and "binary" in data and "binary" not in roles:
            roles.append("binary")  # release: D also sees the labelled real images
        rows = {r: _load_role(r, data[r], target) for r in roles}
        log.info("dmenet %s: %s", tr.subnets, {r: len(v) for r, v in rows.items()})
        bs, crop, max_side = int(p["batch_size"]), int(p["crop"]), int(p["max_side"])
        per_epoch = max(1, math.ceil(len(rows["synthetic"]) / bs))
        sched = torch.optim.lr_scheduler.StepLR(
            tr.opt_g, step_size=int(p["lr_decay_every"]) * per_epoch, gamma=float(p["lr_decay"])
        )

        def sample_batch(rng: np.random.Generator, dev: str) -> dict[str, torch.Tensor]:
            batch = {}
            for role in roles:
                ims, labels = [], []
                for k in rng.integers(0, len(rows[role]), size=bs):
                    im, lab = augment(
                        *_read(rows[role][int(k)], role, sm, target, max_coc),
                        rng,
                        crop,
                        max_side,
                        scale_label=role == "synthetic",
                    )
                    ims.append(im)
                    labels.append(lab)
                x = torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float().div_(255.0)
                batch[role] = x.to(dev)
                if role != "real":
                    batch[f"{role}_gt"] = (
                        torch.from_numpy(np.stack(labels))[:, None].float().to(dev)
                    )
            return batch

        tr.to(device)
        tcfg = TrainConfig(
            iterations=int(p["iterations"]),
            seed=seed,
            ckpt_every=int(p["ckpt_every"]),
            device=device,
            loader_workers=int(p["loader_workers"]),
            extra={"method": self.name, "params": dict(p)},
        )
        ckpt = train(
            tr.model,
            tr.opt_g,
            tcfg,
            workdir,
            sample_batch,
            scheduler=sched,
            step_fn=tr.step,
            extra_state=tr.extra_state(),
            stop_after=cfg.get("stop_after"),
        )
        self._net = tr.model.blur.eval()
        return ckpt

    # -- the authors' checkpoint ------------------------------------------------------------
    #: parameters the release's network has (model.py: full width, aux heads, Caffe VGG input,
    #: CoC / 15 output)
    RELEASE_ARCH: ClassVar[dict[str, Any]] = {
        "width": 1.0,
        "aux": True,
        "vgg_input": "caffe",
        "target": "coc",
        "max_coc": 15.0,
    }

    def _apply_release_arch(self) -> None:
        """Set the release's network parameters where the caller left the defaults."""
        for k, v in self.RELEASE_ARCH.items():
            if self.params[k] == self.defaults[k]:
                self.params[k] = v

    def _check_release_arch(self, source: Any) -> None:
        p = self.params
        bad = {k: p[k] for k, v in self.RELEASE_ARCH.items() if p[k] != v}
        if bad:
            raise MethodError(
                f"{source} is the authors' TensorLayer checkpoint, which needs "
                f"{self.RELEASE_ARCH}; the parameters say {bad} (leave them unset: "
                "a release checkpoint sets them)"
            )

    def _import_weights(self, data: Any, workdir: Path) -> Path:
        """``fit`` with ``weights`` set: convert the release checkpoint (no training)."""
        from defocus.methods.dmenet.release import release_state_dict
        from defocus.train.loop import save_checkpoint

        src = (data or {}).get("weights") if isinstance(data, dict) else None
        if not src:
            raise ValueError(
                f"weights={self.params['weights']!r}: expected data {{'weights': [file.npz]}}"
            )
        self._check_release_arch(src[0])
        state = release_state_dict(Path(src[0]), self.build())
        ckpt = workdir / "release" / "checkpoint.pt"
        save_checkpoint(
            ckpt,
            {
                "model": state["model"],
                "iteration": 0,
                "config": {
                    "method": self.name,
                    "params": dict(self.params),
                    "source": str(src[0]),
                },
            },
        )
        log.info("DMENet: converted the release checkpoint %s (no training)", src[0])
        self._net = self._blur_from(state["model"])
        return ckpt

    def _blur_from(self, state: dict[str, torch.Tensor]) -> BlurNet:
        net = self.build()
        net.load_state_dict(state)
        return net.blur.to(self.device).eval()

    # -- checkpoint ------------------------------------------------------------------------
    def build(self) -> DMENetModel:
        """B (+ S) for the current parameters, without pretrained weights (for :meth:`load`)."""
        p = self.params
        return DMENetModel(
            float(p["width"]),
            bool(p["aux"]),
            "S" in p["subnets"],
            None,
            pretrained=False,
            vgg_input=str(p["vgg_input"]),
        )

    def load(self, checkpoint: Path | None) -> None:
        """Load ``model.pt`` (product), a training ``checkpoint.pt`` written by :meth:`fit`, or
        the authors' TensorLayer checkpoint (``DMENet_BDCS.npz``).

        For an ``.npz`` the release's network parameters (:attr:`RELEASE_ARCH`) are set
        where the caller left the defaults; parameters that contradict them are an error.
        """
        super().load(checkpoint)
        from defocus.train.loop import load_for_inference

        if checkpoint is not None and Path(checkpoint).suffix.lower() == ".npz":
            from defocus.methods.dmenet.release import release_state_dict

            self._apply_release_arch()
            self._check_release_arch(checkpoint)
            if not self.params["weights"]:
                self.params["weights"] = str(checkpoint)  # provenance: the authors' weights
            if not Path(checkpoint).is_file():
                raise MethodError(f"dmenet checkpoint not found: {checkpoint}")
            self._net = self._blur_from(release_state_dict(Path(checkpoint), self.build())["model"])
            return

        state = load_for_inference(checkpoint, self.name, self.params, ARCH_KEYS)
        net = self.build()
        net.load_state_dict(state["model"])
        self._net = net.blur.to(self.device).eval()

    # -- inference -------------------------------------------------------------------------
    @property
    def net_unit(self) -> str:
        """Unit of the network's undecoded output that prediction files keep beside ``raw``
        (``net/{id}``, :mod:`defocus.io.predictions`): ``"coc/15"`` (CoC / ``max_coc``, the
        unit its authors score SYNDOF in) with ``target="coc"``; ``""`` (not stored) with
        ``target="sigma"``, whose ``raw`` is the output times ``sigma_max``."""
        p = self.params
        return f"coc/{float(p['max_coc']):g}" if p["target"] == "coc" else ""

    @torch.no_grad()
    def predict_net(self, image: np.ndarray) -> np.ndarray:
        """B's output map of the image's size, undecoded (float32; ``sigma / sigma_max`` or
        ``CoC / max_coc`` by ``target``; not clamped).

        The image is padded (edge replication) to multiples of 16 and the map cropped back
        (the release instead crops the input to multiples of 16, ``utils.refine_image``).
        """
        image = check_image(image)
        if self._net is None:
            raise MethodError("dmenet has no weights: call load(checkpoint) or fit() first")
        net = self._net.to(self.device).eval()
        h, w = image.shape[:2]
        x = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float().div_(255.0)
        ph, pw = (-h) % STRIDE, (-w) % STRIDE
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        out = net(x, with_aux=False)["map"][0, 0, :h, :w].float()
        return np.asarray(out.cpu().numpy(), np.float32)

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Gaussian sigma map (px, >= 0) of the image's size: B's map times ``sigma_max``
        (``target="sigma"``), or ``max(0, (max_coc * map - 1) / 2)`` (``target="coc"``:
        release ``main.py`` lines 500-501); B's map is :meth:`predict_net`'s."""
        return self.map_to_sigma(self.predict_net(image))

    def predict_with_net(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(sigma, net)`` from one forward pass: :meth:`predict_raw` and the undecoded
        :meth:`predict_net` it was decoded from (``sigma == map_to_sigma(net)``)."""
        out = self.predict_net(image)
        return self.map_to_sigma(out), out

    def map_to_sigma(self, out: np.ndarray) -> np.ndarray:
        """B's output map in [0, 1] -> sigma in px (see :meth:`predict_raw`)."""
        out = np.asarray(out, np.float32)
        if self.params["target"] == "coc":
            sigma = (out * np.float32(self.params["max_coc"]) - 1.0) / 2.0
            return np.maximum(sigma, 0.0).astype(np.float32)
        return (np.maximum(out, 0.0) * np.float32(self.params["sigma_max"])).astype(np.float32)
