"""DMENet training (release ``main.py``; paper Sec. 4): the losses ``L_g`` and ``L_d`` and
one iteration's alternating D / G update, with the networks and optimisers they need."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from defocus.methods.dmenet.layers import resize_nearest_tf
from defocus.methods.dmenet.net import ContentNet, Discriminator, DMENetModel

#: valid subnetwork letters (paper Sec. 4: blur estimation, domain adaptation, content, sharpness)
SUBNETS = "BDCS"


def _freeze_bn_scale(net: nn.Module) -> None:
    """Batch norms without a trained scale, as the release's (``gamma_init=None``): scale 1,
    excluded from the gradient (the optimisers skip parameters without gradients)."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.ones_(m.weight)
            m.weight.requires_grad_(False)


def _check_subnets(subnets: Any) -> str:
    s = str(subnets).upper()
    if not s or "B" not in s or set(s) - set(SUBNETS) or len(set(s)) != len(s):
        raise ValueError(
            f"subnets must be letters of {SUBNETS!r} including 'B' (e.g. 'B', 'BD', 'BDC', "
            f"'BDCS'), got {subnets!r}"
        )
    return "".join(c for c in SUBNETS if c in s)


class Trainer:
    """Networks, optimisers and the alternating D / G update of one DMENet configuration.

    Parameters
    ----------
    params : dict
        :attr:`DMENet.defaults` with overrides.
    """

    def __init__(self, params: dict[str, Any]) -> None:
        p = self.params = params
        self.subnets = _check_subnets(p["subnets"])
        w, weights, pre = float(p["width"]), p["vgg_weights"], bool(p["pretrained"])
        vin = str(p["vgg_input"])
        self.model = DMENetModel(w, bool(p["aux"]), "S" in self.subnets, weights, pre, vin)
        c64 = self.model.blur.feat_channels
        self.disc = Discriminator(c64, w) if "D" in self.subnets else None
        if not bool(p["bn_scale"]):
            for net in (self.model, self.disc):
                if net is not None:
                    _freeze_bn_scale(net)
        self.content = ContentNet(w, weights, pre, vin) if "C" in self.subnets else None
        betas = (float(p["beta1"]), 0.999)  # TF Adam defaults beta2 0.999, eps 1e-8
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=float(p["lr"]), betas=betas)
        self.opt_d = None
        if self.disc is not None:
            lr_d = float(p["lr"]) * float(p["lambda_lr_d"])
            self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=lr_d, betas=betas)

    def _disc_trainable(self) -> None:
        """D's parameters get gradients again (its BN scales stay frozen without bn_scale)."""
        assert self.disc is not None
        self.disc.requires_grad_(True)
        if not bool(self.params["bn_scale"]):
            for m in self.disc.modules():
                if isinstance(m, nn.BatchNorm2d) and m.weight is not None:
                    m.weight.requires_grad_(False)

    @property
    def real_roles(self) -> list[str]:
        """Batches fed to B besides the synthetic one."""
        roles = []
        if "D" in self.subnets:
            roles.append("real")
        if "S" in self.subnets:
            roles.append("binary")
        return roles

    def extra_state(self) -> dict[str, Any]:
        """Objects saved with the checkpoint besides the model (D and its optimiser)."""
        if self.disc is None:
            return {}
        return {"disc": self.disc, "opt_d": self.opt_d}

    def to(self, device: str) -> Trainer:
        self.model.to(device)
        for m in (self.disc, self.content):
            if m is not None:
                m.to(device)
        return self

    # -- losses ----------------------------------------------------------------------------
    def generator_losses(
        self, out: dict[str, dict[str, Any]], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_g`` without the adversarial term, and its parts (release ``loss_main``)."""
        p = self.params
        y = batch["synthetic_gt"]
        syn = out["synthetic"]
        pred = syn["map"].float()
        parts = {"blur": F.mse_loss(pred, y)}
        total = parts["blur"]
        if syn["aux"]:
            parts["aux"] = sum(
                F.mse_loss(a.float(), resize_nearest_tf(y, a.shape[-2:])) for a in syn["aux"]
            )
            total = total + float(p["lambda_aux"]) * parts["aux"]
        if self.content is not None:
            parts["content"] = F.mse_loss(self.content(pred).float(), self.content(y).float())
            total = total + float(p["lambda_c"]) * parts["content"]
        if "calib" in out.get("binary", {}):
            logits = out["binary"]["calib"].float()
            parts["calib"] = F.binary_cross_entropy_with_logits(logits, batch["binary_gt"])
            total = total + float(p["lambda_s"]) * parts["calib"]
        return total, parts

    def _real_feats(self, out: dict[str, dict[str, Any]]) -> list[torch.Tensor]:
        return [out[r]["feat"] for r in ("real", "binary") if r in out]

    def discriminator_loss(self, out: dict[str, dict[str, Any]]) -> torch.Tensor:
        """``L_d`` on detached features (release ``loss_d``; z = 1 synthetic, 0 real)."""
        assert self.disc is not None
        bce = F.binary_cross_entropy_with_logits
        ls = self.disc(out["synthetic"]["feat"].detach()).float()
        loss = bce(ls, torch.ones_like(ls))
        reals = [self.disc(f.detach()).float() for f in self._real_feats(out)]
        loss_r = sum(bce(lr, torch.zeros_like(lr)) for lr in reals) / len(reals)
        # release: (2 L_syn + L_real + L_real_no_label) / 2 * lambda_adv
        return float(self.params["lambda_adv"]) * (loss + loss_r)

    def adversarial_loss(self, out: dict[str, dict[str, Any]]) -> torch.Tensor:
        """``L_adv``: real features classified as synthetic (release ``loss_g_feature``)."""
        assert self.disc is not None
        logits = [self.disc(f).float() for f in self._real_feats(out)]
        bce = F.binary_cross_entropy_with_logits
        return sum(bce(lg, torch.ones_like(lg)) for lg in logits) / len(logits)

    # -- one iteration ---------------------------------------------------------------------
    def step(self, net: nn.Module, batch: dict[str, torch.Tensor], iteration: int = 0):
        """One D update then one B/S update on ``batch`` (``step_fn`` of the shared loop).

        B's forward is shared by both updates: B does not change between them, so its maps
        and features equal those of the release's second forward pass.
        """
        del iteration
        out = net(batch["synthetic"], batch.get("real"), batch.get("binary"))
        logs: dict[str, float] = {}
        if self.disc is not None:
            assert self.opt_d is not None
            # the discriminator's lr follows the generator's schedule (release: one
            # learning_rate variable, D's optimiser uses learning_rate * lambda_lr_d)
            for g in self.opt_d.param_groups:
                g["lr"] = self.opt_g.param_groups[0]["lr"] * float(self.params["lambda_lr_d"])
            self._disc_trainable()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d = self.discriminator_loss(out)
            loss_d.backward()
            _all_reduce_grads(self.disc)
            self.opt_d.step()
            logs["disc"] = float(loss_d.detach())
        total, parts = self.generator_losses(out, batch)
        if self.disc is not None:
            self.disc.requires_grad_(False)  # D is not updated by L_g
            parts["adv"] = self.adversarial_loss(out)
            total = total + float(self.params["lambda_adv"]) * parts["adv"]
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        if self.disc is not None:
            self._disc_trainable()
        return {
            "loss": float(total.detach()),
            **{k: float(v.detach()) for k, v in parts.items()},
            **logs,
        }


def _all_reduce_grads(module: nn.Module) -> None:
    """Average gradients over ranks for a module outside DistributedDataParallel (D)."""
    from defocus.train import distributed as dist

    world = dist.world_size()
    if world <= 1:
        return
    for prm in module.parameters():
        if prm.grad is not None:
            torch.distributed.all_reduce(prm.grad)
            prm.grad.div_(world)
