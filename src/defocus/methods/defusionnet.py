"""DeFusionNet: defocus blur detection by recurrently fusing and refining multi-scale deep
features (Tang, Zhu, Liu, Wang & Zomaya, CVPR 2019).

The authors never released their (Caffe) code, so this is a PyTorch implementation written
from the paper alone. Every choice the paper leaves open is a parameter in
:attr:`DeFusionNet.defaults`, with a comment saying that the paper is silent.

Network (Sec. 3, Fig. 2-3)
--------------------------
* VGG16 backbone initialised from ImageNet (Sec. 3); side features from conv1_2, conv2_2,
  conv3_3, conv4_3, conv5_3 and pool5, i.e. n = 6 layers, the first m = 3 shallow (Sec. 3.3);
  "two more convolutional layers are appended" to each (Sec. 3.3).
* Every side feature is upsampled to the input size by deconvolution (Sec. 3.1).
* FSHF = ReLU(W_l * Cat(F_1..F_m) + b_l), FSEF = ReLU(W_h * Cat(F_m+1..F_n) + b_h), 1x1 convs
  (Eq. 1-2).
* FFRM, recurrent (Eq. 3): at step j, deep layers are refined with FSHF^j and shallow layers
  with FSEF^j by a conv per layer per step, ``F_i^j = ReLU(W_i^j * Cat(F_i^{j-1}, .) + b_i^j)``,
  which restores the layer's channel count; FSHF^j / FSEF^j are recomputed from the refined
  features of step j-1. 3 steps (Sec. 4.4, Table 4).
* Deep supervision: a blur map B_i^j from every layer at every step; the final map
  B = W_B * Cat(B_1^t..B_n^t) + b_B (Eq. 4).

Two readings of the printed equations: Eq. 1-2 place the bias outside the ReLU; we put it
inside, as in Eq. 3. Eq. 4 wraps B in a ReLU; we leave it out, because B is the logit of
the cross-entropy of Eq. 5 and a ReLU on a logit keeps every probability >= 0.5 (no pixel
could be called sharp). Side maps B_i^j are logits too; ``predict`` applies the sigmoid.
* Loss: the sum of pixel-wise cross-entropies (Eq. 5) of all 6t side outputs and the fused
  output, all weights 1 (Eq. 6).

Ablations (Sec. 4.4, Tables 3-4) are parameters of this one implementation:
``defusionnet@ffrm=false`` (DeFusionNet_noFFRM: all layers fused into one group each step),
``defusionnet@output=k`` (DeFusionNet_Ok: layer k's last-step map alone, k = 1..6) and
``defusionnet@steps=k`` (DeFusionNet.Step_k).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from defocus.methods.backbones import vgg_features, vgg_normalise, vgg_taps
from defocus.methods.base import Method, MethodError, check_image

log = logging.getLogger(__name__)

#: Sec. 3.3: "conv1_2, conv2_2, conv3_3, conv4_3, conv5_3 and pool5 ... i.e. n = 6"
LAYERS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3", "pool5")
#: the input side must be a multiple of pool5's stride (5 poolings of 2, VGG16)
STRIDE = 32
#: parameters that define the network's shape; a checkpoint fixes them
ARCH_KEYS = (
    "side_channels",
    "steps",
    "ffrm",
    "n_shallow",
    "refine_kernel",
    "share_fusion",
    "vgg_width",
)


def _bilinear_kernel(size: int) -> torch.Tensor:
    """A ``size x size`` bilinear interpolation kernel (the usual deconvolution init, FCN)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float32)
    k = 1 - torch.abs(og - center) / factor
    return k[:, None] * k[None, :]


class DeFusionNetModel(nn.Module):
    """The DeFusionNet network (Sec. 3). Input: RGB in [0, 1], sides multiples of 32.

    Parameters
    ----------
    side_channels : int
        Channels C of every side feature F_i, of FSHF / FSEF and of each refined F_i^j.
    steps : int
        Recurrent FFRM steps t (Eq. 3).
    ffrm : bool
        Cross-layer FFRM (Sec. 3.1); ``False`` fuses all layers into one group each step
        (DeFusionNet_noFFRM, Sec. 4.4).
    n_shallow : int
        m, the number of shallow layers (Sec. 3.3: 3).
    refine_kernel : int
        Kernel side of the per-layer refining conv W_i^j (Eq. 3).
    share_fusion : bool
        One W_l / W_h (Eq. 1-2) for all steps, or one per step.
    vgg_width, vgg_weights, pretrained
        Backbone (see :func:`defocus.methods.backbones.vgg_features`).
    """

    def __init__(
        self,
        side_channels: int = 64,
        steps: int = 3,
        ffrm: bool = True,
        n_shallow: int = 3,
        refine_kernel: int = 3,
        share_fusion: bool = True,
        vgg_width: float = 1.0,
        vgg_weights: str | None = "imagenet",
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        n = len(LAYERS)
        if not 1 <= n_shallow < n:
            raise ValueError(f"n_shallow must be in 1..{n - 1}, got {n_shallow}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps, self.ffrm, self.n_shallow = int(steps), bool(ffrm), int(n_shallow)
        self.share_fusion = bool(share_fusion)
        c = int(side_channels)
        self.backbone = vgg_features("vgg16", vgg_weights, pretrained, vgg_width)
        taps = vgg_taps("vgg16")
        self.taps = [taps[name] for name in LAYERS]
        # channels and stride of each tapped feature
        in_ch, strides = [], []
        for t in self.taps:
            convs = [m for m in self.backbone[: t + 1] if isinstance(m, nn.Conv2d)]
            pools = [m for m in self.backbone[: t + 1] if isinstance(m, nn.MaxPool2d)]
            in_ch.append(convs[-1].out_channels)
            strides.append(2 ** len(pools))
        self.strides = strides

        # Sec. 3.3: "two more convolutional layers are appended" to each layer (3x3, ReLU:
        # kernel size and activation are not given)
        self.side = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(ci, c, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, padding=1),
                nn.ReLU(inplace=True),
            )
            for ci in in_ch
        )
        # Sec. 3.1: upsampled "to the size of input image by using the deconvolution operation";
        # a per-channel transposed conv of kernel 2s / stride s, bilinear-initialised and
        # learned (the paper gives neither). conv1_2 is already at the input size.
        self.up = nn.ModuleList()
        for s in strides:
            if s == 1:
                self.up.append(nn.Identity())
                continue
            d = nn.ConvTranspose2d(c, c, 2 * s, stride=s, padding=s // 2, groups=c, bias=False)
            with torch.no_grad():
                d.weight.copy_(_bilinear_kernel(2 * s).expand_as(d.weight))
            self.up.append(d)

        # Eq. 1-2: 1x1 convs on the concatenated shallow / deep features (noFFRM: all layers)
        n_fuse = 1 if share_fusion else self.steps
        if self.ffrm:
            self.fuse_shallow = nn.ModuleList(nn.Conv2d(n_shallow * c, c, 1) for _ in range(n_fuse))
            self.fuse_deep = nn.ModuleList(
                nn.Conv2d((n - n_shallow) * c, c, 1) for _ in range(n_fuse)
            )
        else:
            self.fuse_all = nn.ModuleList(nn.Conv2d(n * c, c, 1) for _ in range(n_fuse))
        # Eq. 3: W_i^j, one conv per layer per step, 2C -> C channels
        k = int(refine_kernel)
        self.refine = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(2 * c, c, k, padding=k // 2) for _ in range(n))
            for _ in range(self.steps)
        )
        # deep supervision: a 1x1 conv to one logit per layer per step (paper silent)
        self.score = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(c, 1, 1) for _ in range(n)) for _ in range(self.steps)
        )
        # new ReLU convs start with He et al. (2015) normal init, biases zero (paper silent;
        # PyTorch's default init shrinks the signal ~sqrt(6)x per layer through the 5 new
        # layers between VGG and the maps, which stalls training from a random backbone)
        for mod in [*self.side.modules(), *self.refine.modules()]:
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
                nn.init.zeros_(mod.bias)
        for mods in (getattr(self, a, []) for a in ("fuse_shallow", "fuse_deep", "fuse_all")):
            for mod in mods:
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
                nn.init.zeros_(mod.bias)
        # Eq. 4: one conv over the n concatenated last-step maps (1x1; starts as their mean)
        self.fuse_maps = nn.Conv2d(n, 1, 1)
        with torch.no_grad():
            self.fuse_maps.weight.fill_(1.0 / n)
            self.fuse_maps.bias.zero_()

    # -- stages ----------------------------------------------------------------------------
    def side_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """F_i^0: the n side features after their two convs, upsampled to the input size."""
        if x.shape[-2] % STRIDE or x.shape[-1] % STRIDE:
            raise ValueError(f"input sides must be multiples of {STRIDE}, got {tuple(x.shape)}")
        h = vgg_normalise(x)
        raw = []
        start = 0
        for t in self.taps:
            h = self.backbone[start : t + 1](h)
            raw.append(h)
            start = t + 1
        return [up(side(f)) for f, side, up in zip(raw, self.side, self.up, strict=True)]

    def fused_features(self, feats: list[torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """FSHF^j and FSEF^j (Eq. 1-2), or ``all`` for noFFRM, from the features of step j-1."""
        i = 0 if self.share_fusion else step
        m = self.n_shallow
        if not self.ffrm:
            return {"all": F.relu(self.fuse_all[i](torch.cat(feats, 1)))}
        return {
            "fshf": F.relu(self.fuse_shallow[i](torch.cat(feats[:m], 1))),
            "fsef": F.relu(self.fuse_deep[i](torch.cat(feats[m:], 1))),
        }

    def refine_step(self, feats: list[torch.Tensor], step: int) -> list[torch.Tensor]:
        """One FFRM step (Eq. 3): F_i^j from F_i^{j-1}; ``step`` counts from 0."""
        g = self.fused_features(feats, step)
        out = []
        for i, f in enumerate(feats):
            if not self.ffrm:
                guide = g["all"]
            else:  # cross-layer: shallow layers take FSEF, deep layers FSHF
                guide = g["fsef"] if i < self.n_shallow else g["fshf"]
            out.append(F.relu(self.refine[step][i](torch.cat([f, guide], 1))))
        return out

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        """``{"side": [[B_i^j logits (N,1,H,W)] per layer] per step, "fused": B logits}``."""
        feats = self.side_features(x)
        side = []
        for j in range(self.steps):
            feats = self.refine_step(feats, j)
            side.append([self.score[j][i](f) for i, f in enumerate(feats)])
        fused = self.fuse_maps(torch.cat(side[-1], 1))
        return {"side": side, "fused": fused}


def deep_supervision_loss(
    out: dict[str, Any], gt: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 6 with all weights 1: cross-entropy (Eq. 5) of every side output plus the fused one.

    Each term is the per-pixel *mean* binary cross-entropy (Eq. 5 sums over pixels; the
    learning rate is rescaled accordingly, see ``DeFusionNet.defaults['lr']``).
    """
    bce = F.binary_cross_entropy_with_logits
    fused = bce(out["fused"].float(), gt)
    total = fused
    for step in out["side"]:
        for b in step:
            total = total + bce(b.float(), gt)
    return total, {"fused": float(fused.detach())}


def augment(
    image: np.ndarray,
    gt: np.ndarray,
    rng: np.random.Generator,
    crop: int,
    rotate_deg: float,
    scale_min: float,
    flip: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Random rotation, resizing and horizontal flip (Sec. 3.3), then a ``crop x crop`` image.

    Rotation by an angle uniform in ``[-rotate_deg, rotate_deg]`` (borders reflected); the
    "resizing" is a random window of relative side in ``[scale_min, 1]`` resized to
    ``crop x crop``; a flip with probability 1/2. The GT follows with nearest-neighbour
    interpolation. Every random number comes from ``rng`` (resumable, ``batch_rng``).
    """
    import cv2

    h, w = gt.shape
    angle = float(rng.uniform(-rotate_deg, rotate_deg))
    s = float(rng.uniform(scale_min, 1.0))
    ch, cw = max(1, round(h * s)), max(1, round(w * s))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    do_flip = bool(rng.random() < 0.5) and flip
    if angle:
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
        image = cv2.warpAffine(
            image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        gt = cv2.warpAffine(
            gt, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101
        )
    image = image[y0 : y0 + ch, x0 : x0 + cw]
    gt = gt[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if ch * cw > crop * crop else cv2.INTER_LINEAR
    image = cv2.resize(image, (crop, crop), interpolation=interp)
    gt = cv2.resize(gt, (crop, crop), interpolation=cv2.INTER_NEAREST)
    if do_flip:
        image, gt = image[:, ::-1], gt[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(gt)


class DeFusionNet(Method):
    """DeFusionNet (Tang et al. CVPR'19): recurrent cross-layer fusion of VGG16 features.

    Training data role ``train``: manifests with binary GT (255 = blurred); their ``train``
    split is used. See the module docstring for the network and :attr:`defaults` for every
    parameter and its source.
    """

    name = "defusionnet"
    fidelity = {
        "implementation": "faithful",
        "differs": (
            "from the paper text (no code released); on-the-fly augmentation for the "
            "offline 604 -> 9,664 set; open choices are parameters"
        ),
        "paper_images": 604,
    }
    learned = True
    citation = "Tang et al., DeFusionNet, CVPR 2019"
    #: StepLR factor and the augmentation window's smallest relative side
    bounds = {"lr_gamma": "(0, 1]", "aug_scale_min": "(0, 1]"}
    defaults: ClassVar[dict[str, Any]] = {
        # --- network (Sec. 3) and its ablations (Sec. 4.4) ---
        "steps": 3,  # recurrent FFRM steps t (Sec. 4.4, Table 4: 3); ablation Step_k
        "ffrm": True,  # cross-layer FFRM (Sec. 3.1); false = DeFusionNet_noFFRM (Table 3)
        "output": "fused",  # Eq. 4 fused map; 1..6 = DeFusionNet_O1..O6 (Table 3), predict only
        "n_shallow": 3,  # m = 3 shallow layers of n = 6 (Sec. 3.3)
        "side_channels": 64,  # C of side features / FSHF / FSEF: paper silent (= conv1 width)
        "refine_kernel": 3,  # kernel of W_i^j (Eq. 3): paper silent
        "share_fusion": True,  # W_l, W_h of Eq. 1-2 carry no step index: shared over steps
        "vgg_width": 1.0,  # backbone channel multiplier; 1 = VGG16 (<1: demo/tests, no weights)
        "vgg_weights": "imagenet",  # "imagenet" (torchvision) or a local state-dict file
        "pretrained": True,  # Sec. 3: "use the pre-trained VGG16 model to initialize"
        # --- training (Sec. 3.3) ---
        "iterations": 10000,  # "stops after 10k iterations"
        # The paper's 1e-8 is for Caffe's loss summed over pixels (Eq. 5) of 320x320 images;
        # our loss is a per-pixel mean, so the same steps take 1e-8 * 320 * 320 ~= 1e-3.
        "lr": 1.0e-3,
        "lr_step": 5000,  # "reduced by a factor of 0.1 at 5k iterations"
        "lr_gamma": 0.1,
        # "sgd" = the paper's SGD. "adam" (Kingma & Ba 2015, default betas; same lr and
        # weight_decay keys) is NOT the paper's: a demo/test knob, because plain SGD hardly
        # moves a randomly initialised VGG16 (offline, without ImageNet weights)
        "optimizer": "sgd",
        "momentum": 0.9,  # SGD momentum 0.9
        "weight_decay": 5.0e-4,  # "weight decay of 0.0005" (kept as printed)
        "batch_size": 4,  # "training batch size is set to 4"
        "crop": 320,  # training image side: paper silent (its timing is quoted at 320x320)
        # on-the-fly augmentation replacing the paper's 604 -> 9,664 offline set (Sec. 3.3:
        # "randomly rotating, resizing and horizontally flipping"); ranges: paper silent
        "aug_rotate_deg": 10.0,  # rotation uniform in +-10 degrees
        "aug_scale_min": 0.7,  # random window of relative side in [0.7, 1] resized to crop
        "aug_flip": True,  # horizontal flip with probability 1/2
        "ckpt_every": 500,  # checkpoint period (iterations) of the shared loop
        # --- inference ---
        # side the image is resized to (square, as in training); null = its own size rounded
        # to a multiple of 32. Paper silent (its timing is quoted at 320x320, Sec. 3.3).
        "infer_size": 320,
    }

    #: parameters that change only the prediction, not training: an ablation that differs from
    #: a trained model in these alone (``defusionnet@output=3``) can reuse its checkpoint
    inference_params: ClassVar[tuple[str, ...]] = ("output", "infer_size")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        out = p["output"]
        if not (out == "fused" or (isinstance(out, int) and not isinstance(out, bool))):
            raise ValueError(f"output must be 'fused' or a layer 1..{len(LAYERS)}, got {out!r}")
        if out != "fused" and not 1 <= out <= len(LAYERS):
            raise ValueError(f"output layer must be in 1..{len(LAYERS)}, got {out}")
        if not isinstance(p["steps"], int) or p["steps"] < 1:
            raise ValueError(f"steps must be an integer >= 1, got {p['steps']!r}")
        if not isinstance(p["ffrm"], bool):
            raise ValueError(f"ffrm must be true or false, got {p['ffrm']!r}")
        if p["optimizer"] not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {p['optimizer']!r}")
        if p["crop"] % STRIDE:
            raise ValueError(f"crop must be a multiple of {STRIDE}, got {p['crop']}")
        if p["infer_size"] is not None and p["infer_size"] % STRIDE:
            raise ValueError(f"infer_size must be a multiple of {STRIDE} or null")
        self._net: DeFusionNetModel | None = None

    # -- network ---------------------------------------------------------------------------
    def build(self, pretrained: bool | None = None) -> DeFusionNetModel:
        """The network for the current parameters (``pretrained`` overrides the parameter)."""
        p = self.params
        return DeFusionNetModel(
            side_channels=p["side_channels"],
            steps=p["steps"],
            ffrm=p["ffrm"],
            n_shallow=p["n_shallow"],
            refine_kernel=p["refine_kernel"],
            share_fusion=p["share_fusion"],
            vgg_width=p["vgg_width"],
            vgg_weights=p["vgg_weights"],
            pretrained=p["pretrained"] if pretrained is None else pretrained,
        )

    # -- training --------------------------------------------------------------------------
    def _load_training_set(self, data: dict[str, list[Path]]) -> list[tuple[np.ndarray, ...]]:
        from defocus.io.image import read_gray, read_image
        from defocus.io.manifest import read_manifest

        if set(data) != {"train"}:
            raise ValueError(
                f"defusionnet trains on role 'train' only (manifests with binary GT), "
                f"got roles {sorted(data)}"
            )
        samples = []
        for manifest in data["train"]:
            rows = read_manifest(manifest, split="train")
            rows = rows[rows["gt"] != ""]
            for row in rows.itertuples():
                image = read_image(row.image)
                g = read_gray(row.gt)
                # binary GT, 255 = blurred (manifest contract); 16-bit masks scale alike
                top = np.iinfo(g.dtype).max if np.issubdtype(g.dtype, np.integer) else 1.0
                gt = (g > top / 2).astype(np.float32)
                if gt.shape != image.shape[:2]:
                    raise ValueError(
                        f"{manifest}: GT {row.gt} has shape {gt.shape}, "
                        f"image {row.image} has {image.shape[:2]}"
                    )
                samples.append((image, gt))
        if not samples:
            raise ValueError(f"no training images with GT in split 'train' of {data['train']}")
        return samples

    def fit(self, data: dict[str, list[Path]], cfg: dict | None, workdir: Path) -> Path:
        """Train with the shared loop (Sec. 3.3); returns ``workdir/checkpoint.pt``.

        ``cfg``: ``seed``, ``device`` and optionally ``stop_after`` (interrupt after that many
        iterations; used by the resume test).
        """
        from defocus.train.loop import TrainConfig, train

        cfg = dict(cfg or {})
        seed, device = int(cfg.get("seed", 0)), str(cfg.get("device", self.device))
        self.device = device
        p = self.params
        samples = self._load_training_set(data)
        log.info("defusionnet: %d training images", len(samples))
        torch.manual_seed(seed)  # the initialisation of the new layers depends on the seed only
        net = self.build()
        if p["optimizer"] == "sgd":
            opt = torch.optim.SGD(
                net.parameters(),
                lr=p["lr"],
                momentum=p["momentum"],
                weight_decay=p["weight_decay"],
            )
        else:
            opt = torch.optim.Adam(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=p["lr_step"], gamma=p["lr_gamma"])

        def sample_batch(rng: np.random.Generator, dev: str):
            idx = rng.integers(0, len(samples), size=p["batch_size"])
            ims, gts = [], []
            for k in idx:
                im, g = augment(
                    *samples[int(k)],
                    rng,
                    p["crop"],
                    p["aug_rotate_deg"],
                    p["aug_scale_min"],
                    p["aug_flip"],
                )
                ims.append(im)
                gts.append(g)
            x = torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float().div_(255.0)
            y = torch.from_numpy(np.stack(gts))[:, None].float()
            return x.to(dev), y.to(dev)

        def step_loss(model: nn.Module, batch):
            x, y = batch
            return deep_supervision_loss(model(x), y)

        tcfg = TrainConfig(
            iterations=int(p["iterations"]),
            seed=seed,
            ckpt_every=int(p["ckpt_every"]),
            device=device,
            extra={"method": self.name, "params": dict(p)},
        )
        ckpt = train(
            net,
            opt,
            tcfg,
            workdir,
            sample_batch,
            step_loss,
            scheduler=sched,
            stop_after=cfg.get("stop_after"),
        )
        self._net = net.eval()
        return ckpt

    # -- checkpoint ------------------------------------------------------------------------
    def load(self, checkpoint: Path | None) -> None:
        """Load ``model.pt`` (product) or a training ``checkpoint.pt`` written by :meth:`fit`."""
        super().load(checkpoint)
        from defocus.train.loop import load_for_inference

        state = load_for_inference(checkpoint, self.name, self.params, ARCH_KEYS)
        net = self.build(pretrained=False)  # every weight comes from the checkpoint
        net.load_state_dict(state["model"])
        self._net = net.to(self.device).eval()

    # -- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, image: np.ndarray) -> np.ndarray:
        """Blur map in [0, 1] (1 = blurred) of the image's size: sigmoid of the fused map
        (Eq. 4), or of layer k's last-step map for ``output=k``."""
        image = check_image(image)
        if self._net is None:
            raise MethodError("defusionnet has no weights: call load(checkpoint) or fit() first")
        net = self._net.to(self.device).eval()
        h, w = image.shape[:2]
        x = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float().div_(255.0)
        size = self.params["infer_size"]
        if size:
            th, tw = int(size), int(size)
        else:
            th = max(STRIDE, round(h / STRIDE) * STRIDE)
            tw = max(STRIDE, round(w / STRIDE) * STRIDE)
        if (th, tw) != (h, w):
            x = F.interpolate(
                x, size=(th, tw), mode="bilinear", align_corners=False, antialias=th < h or tw < w
            )
        out = net(x)
        k = self.params["output"]
        logits = out["fused"] if k == "fused" else out["side"][-1][k - 1]
        logits = F.interpolate(logits.float(), size=(h, w), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)[0, 0].clamp_(0, 1).cpu().numpy().astype(np.float32)
