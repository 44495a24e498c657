"""torch.distributed glue: one code path for 1 process, torchrun on CPU (gloo) or GPUs (nccl).

``torchrun --nproc_per_node N -m defocus.train ...`` sets RANK / WORLD_SIZE / LOCAL_RANK;
:func:`init` reads them (falling back to SLURM's variables, then to a single process), the
model is wrapped in DistributedDataParallel, every rank draws its own batches, and only rank 0
writes checkpoints and logs.
"""

from __future__ import annotations

import os
from typing import Any

import torch


def _env_int(*names: str, default: int) -> int:
    for n in names:
        if n in os.environ:
            return int(os.environ[n])
    return default


def world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def init(device: str = "cpu") -> str:
    """Initialise the process group when launched by torchrun; return this rank's device."""
    world = _env_int("WORLD_SIZE", default=1)
    if world <= 1 or torch.distributed.is_initialized():
        return device
    local = _env_int("LOCAL_RANK", "SLURM_LOCALID", default=0)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    torch.distributed.init_process_group(backend=backend)
    return device


def wrap(model: torch.nn.Module, device: str) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` when more than one process runs."""
    if world_size() <= 1:
        return model
    ids = [torch.device(device).index] if str(device).startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` as a list indexed by rank (a one-element list without DDP)."""
    if world_size() <= 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if world_size() > 1:
        torch.distributed.barrier()


def shutdown() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
