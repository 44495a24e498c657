"""The shared training loop of the learned methods.

One iteration-based loop for DHDE, Zeng, DeFusionNet and DMENet:

* **seeded and resumable bit-for-bit**: batch ``i`` is drawn from its own generator
  ``np.random.default_rng([seed, rank, i])``, so the data stream does not depend on how many
  iterations ran before; the checkpoint holds the model, optimiser, scheduler, iteration and
  the torch / numpy / python RNG states. A run interrupted at iteration k and resumed ends
  identical (on the CPU) to an uninterrupted one (``tests/test_train.py``).
* checkpoints every ``ckpt_every`` iterations, written atomically by rank 0 only;
* a tqdm progress bar and a CSV loss log (``loss.csv``) with a plot (``loss.png``);
* mixed precision (bfloat16 autocast) on CUDA; plain float32 on the CPU;
* torch.distributed when launched by ``torchrun`` (see :mod:`defocus.train.distributed`):
  the model is wrapped in DistributedDataParallel and every rank draws its own batches.

Methods supply two callables: ``sample_batch(rng, device) -> batch`` and
``step_loss(model, batch) -> (loss, {name: float})``. Methods with several optimisers
(DMENet's alternating discriminator) pass ``step_fn`` instead and do their own updates.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from defocus.io.atomic import atomic_path
from defocus.train import distributed as dist

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def batch_rng(seed: int, rank: int, iteration: int) -> np.random.Generator:
    """The generator of one iteration's batch: independent of the iterations before it."""
    return np.random.default_rng([int(seed), int(rank), int(iteration)])


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary sibling, then rename (never a half-written checkpoint)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (trusted: our own files)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # a truncated or foreign file: one line naming file and fix
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise RuntimeError(
            f"cannot read checkpoint {path} ({reason}); it is truncated or not a torch "
            "checkpoint: delete it and train again (snakemake remakes results/models/...), or "
            "pass the right file"
        ) from e


@dataclass
class TrainConfig:
    """Loop settings shared by every learned method (each method documents its values)."""

    iterations: int
    seed: int = 0
    ckpt_every: int = 100
    log_every: int = 10
    device: str = "cpu"
    amp: bool = True  # bfloat16 autocast, used on CUDA only
    grad_clip: float | None = None
    progress: bool = True
    #: threads that prepare the next batches while the model trains (decoding, augmentation);
    #: batch i depends only on its own generator, so the batches are the same with any value
    loader_workers: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _fingerprint(model: torch.nn.Module, optimizer: Any, cfg: TrainConfig) -> str:
    """What a checkpoint must share with this run to be resumed: the method's parameters
    (``cfg.extra``), the seed, the optimiser class and the network's parameter shapes.
    The iteration count is left out, so a run can be continued to more iterations."""
    import hashlib
    import json

    extra = json.loads(json.dumps(cfg.extra, sort_keys=True, default=str))
    if isinstance(extra.get("params"), dict):
        extra["params"].pop("iterations", None)
        extra["params"].pop("loader_workers", None)  # speed only: the batches are the same
    blob = {
        "extra": extra,
        "seed": cfg.seed,
        "optimizer": type(optimizer).__name__ if optimizer is not None else None,
        "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def _batches(
    sample_batch: Callable[[np.random.Generator, str], Any],
    seed: int,
    rank: int,
    start: int,
    end: int,
    device: str,
    workers: int,
) -> Iterator[Any]:
    """The batches of iterations ``start..end-1`` in order, ``workers`` threads preparing up
    to ``2 * workers`` of them ahead (image decoding releases the GIL). Each batch comes from
    :func:`batch_rng` of its own iteration, so prefetching changes no value."""
    if workers <= 0:
        for it in range(start, end):
            yield sample_batch(batch_rng(seed, rank, it), device)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch")
    pending: deque = deque()
    nxt = start
    try:
        for _ in range(start, end):
            while nxt < end and len(pending) < 2 * workers:
                pending.append(pool.submit(sample_batch, batch_rng(seed, rank, nxt), device))
                nxt += 1
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    cfg: TrainConfig,
    workdir: str | os.PathLike,
    sample_batch: Callable[[np.random.Generator, str], Any],
    step_loss: Callable[[torch.nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]
    | None = None,
    scheduler: Any = None,
    step_fn: Callable[[torch.nn.Module, Any, int], dict[str, float]] | None = None,
    extra_state: dict[str, Any] | None = None,
    stop_after: int | None = None,
) -> Path:
    """Train ``model`` for ``cfg.iterations`` iterations; return ``workdir/checkpoint.pt``.

    Parameters
    ----------
    model, optimizer, scheduler
        The model (not yet wrapped in DDP), its optimiser and an optional per-iteration
        learning-rate scheduler (``scheduler.step()`` after every iteration).
    sample_batch
        ``sample_batch(rng, device) -> batch``, with ``rng`` from :func:`batch_rng`.
    step_loss
        ``step_loss(model, batch) -> (loss tensor, {name: value})``; the loop does backward,
        clipping and the optimiser step.
    step_fn
        Alternative to ``step_loss`` for methods with several optimisers:
        ``step_fn(model, batch, iteration) -> {name: value}`` does everything itself.
    extra_state
        ``{name: object with state_dict/load_state_dict}`` saved with the checkpoint (e.g.
        a second optimiser).
    stop_after
        Stop (after checkpointing) once this many iterations are done — used by the resume
        test to simulate an interruption.

    A ``workdir/checkpoint.pt`` from an earlier, interrupted run is resumed automatically.
    """
    if (step_loss is None) == (step_fn is None):
        raise ValueError("pass exactly one of step_loss and step_fn")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ckpt_path = workdir / "checkpoint.pt"
    rank, world = dist.rank(), dist.world_size()
    device = cfg.device
    model.to(device)
    extra_state = extra_state or {}

    start = 0
    fingerprint = _fingerprint(model, optimizer, cfg)
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        if state.get("fingerprint") != fingerprint:
            # a checkpoint of another configuration (changed parameters, optimiser or
            # network): resuming it would mix two runs, so start afresh and keep it aside
            stale = ckpt_path.with_name("checkpoint.stale.pt")
            os.replace(ckpt_path, stale)
            log.warning(
                "%s was written by a different configuration; moved to %s, training from 0",
                ckpt_path,
                stale.name,
            )
            state = None
    else:
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        if optimizer is not None and state.get("optimizer") is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        for name, obj in extra_state.items():
            obj.load_state_dict(state["extra"][name])
        set_rng_state(state["rng"][min(rank, len(state["rng"]) - 1)])
        start = int(state["iteration"])
        log.info("resumed from %s at iteration %d", ckpt_path, start)
    else:
        seed_everything(cfg.seed + rank)

    net = dist.wrap(model, device)
    use_amp = cfg.amp and str(device).startswith("cuda")
    loss_log = workdir / "loss.csv"
    if start == 0 and rank == 0 and loss_log.exists():
        loss_log.unlink()

    def checkpoint(iteration: int) -> None:
        states = dist.gather_objects(rng_state())
        if rank != 0:
            return
        save_checkpoint(
            ckpt_path,
            {
                "model": _unwrap(net).state_dict(),
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "extra": {k: v.state_dict() for k, v in extra_state.items()},
                "rng": states,
                "iteration": iteration,
                "world_size": world,
                "config": cfg.extra,
                "fingerprint": fingerprint,
            },
        )

    end = cfg.iterations if stop_after is None else min(cfg.iterations, stop_after)
    bar = None
    if cfg.progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=cfg.iterations, initial=start, desc="train", mininterval=2.0)
    rows: list[dict[str, float]] = []
    t0 = time.perf_counter()
    net.train()
    batches = _batches(sample_batch, cfg.seed, rank, start, end, device, int(cfg.loader_workers))
    for it, batch in zip(range(start, end), batches, strict=True):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            if step_fn is not None:
                logs = step_fn(net, batch, it)
            else:
                assert optimizer is not None
                loss, logs = step_loss(net, batch)
        if step_fn is None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            optimizer.step()
            logs = {"loss": float(loss.detach()), **logs}
        if scheduler is not None:
            scheduler.step()
        if optimizer is not None:
            logs["lr"] = optimizer.param_groups[0]["lr"]
        rows.append({"iteration": it + 1, **{k: float(v) for k, v in logs.items()}})
        if bar is not None:
            bar.update(1)
            if (it + 1) % cfg.log_every == 0:
                bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.4g}")
        if (it + 1) % cfg.ckpt_every == 0 or it + 1 == end:
            if rank == 0:
                _append_rows(loss_log, rows)
            rows = []
            checkpoint(it + 1)
    if bar is not None:
        bar.close()
    if rank == 0:
        log.info(
            "trained iterations %d..%d in %.1f s on %s x%d",
            start,
            end,
            time.perf_counter() - t0,
            device,
            world,
        )
        if loss_log.exists():
            plot_loss(loss_log, workdir / "loss.png")
    return ckpt_path


def _append_rows(path: Path, rows: list[dict[str, float]]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerows(rows)


def plot_loss(loss_csv: str | os.PathLike, out_png: str | os.PathLike) -> None:
    """Loss curve(s) from ``loss.csv`` (log scale, smoothed over 1% of the run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(loss_csv)
    cols = [c for c in df.columns if c not in ("iteration", "lr")]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    win = max(1, len(df) // 100)
    for c in cols:
        ax.plot(df["iteration"], df[c].rolling(win, min_periods=1).mean(), label=c)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    if (df[cols] > 0).all().all():
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def finalize(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    method: str,
    params: dict[str, Any],
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write the product checkpoint ``out`` (model weights + method params + metadata)."""
    state = load_checkpoint(checkpoint)
    save_checkpoint(
        out,
        {
            "method": method,
            "params": params,
            "model": state["model"],
            "iteration": state["iteration"],
            "metadata": metadata or {},
        },
    )
    return Path(out)


def load_for_inference(
    checkpoint: str | os.PathLike, method: str, params: dict[str, Any], arch_keys: tuple[str, ...]
) -> dict[str, Any]:
    """Load a product ``model.pt`` or a training ``checkpoint.pt`` for prediction.

    Raises :class:`~defocus.methods.base.MethodError` when the file is missing or when it was
    trained with other values of the network-shape parameters ``arch_keys`` than ``params``.
    """
    from defocus.methods.base import MethodError

    if not Path(checkpoint).is_file():
        raise MethodError(
            f"{method} checkpoint not found: {checkpoint}; "
            f"make one with `snakemake results/models/{method}/model.pt`"
        )
    state = load_checkpoint(checkpoint)
    saved = state.get("params") or state.get("config", {}).get("params") or {}
    differ = {k: (saved[k], params[k]) for k in arch_keys if k in saved and saved[k] != params[k]}
    if differ:
        raise MethodError(
            f"checkpoint {checkpoint} was trained with other network parameters "
            f"(saved, requested): {differ}"
        )
    return state
