"""Multi-process training through torchrun (DDP, gloo on the CPU).

Two CPU processes train a tiny DeFusionNet (no BatchNorm: its CReLU-free VGG has none, so
the ranks' batches only meet in the gradient all-reduce) through the shared entry point
``python -m torch.distributed.run --standalone --nproc_per_node 2 -m defocus.train``.

What "the same global batch" means here. The loop draws batch ``i`` of rank ``r`` from
``batch_rng(seed, r, i)`` with the method's ``batch_size`` samples, so N ranks train on a
global batch of N x batch_size: the union of the N rank streams. DDP averages the ranks'
gradients, and each rank's loss is a mean over its own equal-sized batch, so one DDP step
equals one single-process step on the concatenation of the N rank batches. The reference run
below is exactly that: one process, whose iteration ``i`` concatenates
``sample_batch(batch_rng(seed, r, i))`` for r = 0..N-1 (by wrapping the loop's sampler; no
change to the package). Tolerance: 1e-5 absolute on every weight after 4 SGD steps — the
only difference is the float summation order of the gradient all-reduce (observed ~1e-8).

Resume under torchrun: a run stopped after 2 iterations (its checkpoint holds both ranks'
RNG states) and restarted to 4 ends bit-identical to an uninterrupted 2-process run.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from defocus.methods.defusionnet import DeFusionNet
from defocus.train import loop
from defocus.train.loop import load_checkpoint

NPROC = 2
SEED = 3
PARAMS = {
    "vgg_width": 1 / 16,
    "side_channels": 4,
    "pretrained": False,
    "crop": 32,
    "batch_size": 1,  # per rank: the global batch is NPROC x 1
    "iterations": 4,
    "lr": 1e-2,
    "lr_step": 3,
    "ckpt_every": 2,
}


def _images(root):
    """Two photographs (scikit-image), right / top half Gaussian-blurred, as a manifest."""
    import cv2
    from skimage import data

    from defocus.io.image import write_image
    from defocus.io.manifest import write_manifest

    size = 48
    yy, xx = np.mgrid[:size, :size]
    rows = []
    root.mkdir(parents=True, exist_ok=True)
    for name, mask in (("astronaut", xx >= size // 2), ("coffee", yy < size // 2)):
        sharp = cv2.resize(getattr(data, name)(), (size, size), interpolation=cv2.INTER_AREA)
        image = np.where(mask[..., None], cv2.GaussianBlur(sharp, (0, 0), 2.5), sharp)
        write_image(root / f"{name}.png", image)
        write_image(root / f"{name}_gt.png", mask.astype(np.uint8) * 255)
        rows.append({"id": name, "split": "train", "image": f"{name}.png", "gt": f"{name}_gt.png"})
    write_manifest(rows, root / "manifest.csv")
    return root / "manifest.csv"


def _torchrun(manifest, workdir, out, params=PARAMS):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", str(NPROC), "-m", "defocus.train", "--method", "defusionnet"]
    cmd += ["--params", json.dumps(params), "--data", json.dumps({"train": [str(manifest)]})]
    cmd += ["--workdir", str(workdir), "--out", str(out), "--device", "cpu"]
    # no --log: torchrun's parser takes "--log" for an abbreviation of its own --log-dir /
    # --logs-specs ("ambiguous option"); the log goes to stderr (see test_train_rule_...)
    cmd += ["--seed", str(SEED)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    (workdir.parent / f"{workdir.name}.log").write_text(r.stderr)
    return load_checkpoint(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    manifest = _images(tmp / "data")
    ddp = _torchrun(manifest, tmp / "ddp", tmp / "ddp.pt")
    return tmp, manifest, ddp


def test_ddp_matches_one_process_on_the_same_global_batch(runs, monkeypatch):
    tmp, manifest, ddp = runs
    state = load_checkpoint(tmp / "ddp" / "checkpoint.pt")
    assert state["world_size"] == NPROC and len(state["rng"]) == NPROC
    assert ddp["iteration"] == PARAMS["iterations"]

    # reference: one process; iteration i trains on the concatenation of the NPROC rank batches
    monkeypatch.setattr(loop, "batch_rng", lambda seed, rank, it: (seed, it))
    train = loop.train

    def global_batch_train(model, optimizer, cfg, workdir, sample_batch, *args, **kw):
        def sample_global(key, device):
            seed, it = key
            parts = [
                sample_batch(np.random.default_rng([seed, r, it]), device) for r in range(NPROC)
            ]
            return tuple(torch.cat(t) for t in zip(*parts, strict=True))

        return train(model, optimizer, cfg, workdir, sample_global, *args, **kw)

    monkeypatch.setattr(loop, "train", global_batch_train)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ckpt = DeFusionNet(**PARAMS).fit({"train": [manifest]}, {"seed": SEED}, tmp / "one")
    finally:
        torch.set_num_threads(n)
    one = load_checkpoint(ckpt)
    assert one["world_size"] == 1 and one["iteration"] == PARAMS["iterations"]
    moved = 0.0
    for k, v in one["model"].items():
        assert torch.allclose(ddp["model"][k], v, rtol=0, atol=1e-5), k
        moved = max(moved, float((v - _initial()[k]).abs().max()))
    assert moved > 1e-4  # the weights did train: the comparison is not of two initialisations


def _initial():
    torch.manual_seed(SEED)
    return DeFusionNet(**PARAMS).build().state_dict()


def test_resume_under_torchrun_is_bit_identical(runs):
    tmp, manifest, ddp = runs
    cut = tmp / "cut"
    half = _torchrun(manifest, cut, tmp / "half.pt", {**PARAMS, "iterations": 2})
    assert half["iteration"] == 2
    resumed = _torchrun(manifest, cut, tmp / "resumed.pt")
    assert "resumed from" in (tmp / "cut.log").read_text()
    assert resumed["iteration"] == PARAMS["iterations"]
    for k, v in ddp["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


@pytest.mark.slow
def test_train_rule_with_nproc_2_runs_torchrun(root, tmp_path):
    """The workflow's own train rule with training.nproc = 2 (the tiny config's zeng)."""
    extra = tmp_path / "nproc.yaml"
    extra.write_text("training:\n  nproc: 2\n")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile")]
    cmd += ["--cores", "2", "--configfile", str(root / "config" / "test.yaml"), str(extra)]
    cmd += ["--", "results/models/zeng/model.pt"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    log = tmp_path / "logs" / "train" / "zeng.log"
    assert r.returncode == 0, r.stderr[-3000:] + (log.read_text()[-2000:] if log.exists() else "")
    state = load_checkpoint(tmp_path / "results" / "models" / "zeng" / "work" / "checkpoint.pt")
    assert state["world_size"] == 2
