"""The shared training loop: seeded, resumable bit-for-bit on the CPU, logs and checkpoints."""

import numpy as np
import pandas as pd
import pytest
import torch

from defocus.train.loop import TrainConfig, batch_rng, load_checkpoint, train


def _toy():
    torch.manual_seed(123)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1)
    )


W_TRUE = np.array([1.0, -2.0, 0.5, 3.0], np.float32)


def _sample(rng, device):
    x = rng.normal(size=(8, 4)).astype(np.float32)
    return torch.from_numpy(x).to(device), torch.from_numpy(x @ W_TRUE[:, None]).to(device)


def _loss(model, batch):
    x, y = batch
    loss = torch.nn.functional.mse_loss(model(x), y)
    return loss, {}


def _run(workdir, iterations=30, stop_after=None):
    model = _toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    cfg = TrainConfig(iterations=iterations, seed=7, ckpt_every=5, progress=False)
    return train(model, opt, cfg, workdir, _sample, _loss, scheduler=sched, stop_after=stop_after)


def test_batches_do_not_depend_on_history():
    a = batch_rng(7, 0, 12).normal(size=3)
    assert np.array_equal(a, batch_rng(7, 0, 12).normal(size=3))
    assert not np.array_equal(a, batch_rng(7, 1, 12).normal(size=3))


def test_loss_falls_and_logs(tmp_path):
    ckpt = _run(tmp_path / "a", iterations=60)
    log = pd.read_csv(tmp_path / "a" / "loss.csv")
    assert len(log) == 60 and list(log["iteration"]) == list(range(1, 61))
    assert log["loss"].tail(10).mean() < 0.2 * log["loss"].head(10).mean()
    assert log["lr"].iloc[-1] == pytest.approx(0.01 * 0.5**6)
    assert (tmp_path / "a" / "loss.png").stat().st_size > 0
    assert load_checkpoint(ckpt)["iteration"] == 60


def test_resume_is_bit_identical(tmp_path):
    full = load_checkpoint(_run(tmp_path / "full"))
    _run(tmp_path / "cut", stop_after=13)  # "interrupted" after iteration 13 (ckpt at 13)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["iteration"] == 13
    resumed = load_checkpoint(_run(tmp_path / "cut"))
    assert resumed["iteration"] == 30
    for k, v in full["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    a = pd.read_csv(tmp_path / "full" / "loss.csv")
    b = pd.read_csv(tmp_path / "cut" / "loss.csv")
    assert np.array_equal(a["loss"].to_numpy(), b["loss"].to_numpy())


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="cannot read checkpoint"):
        _run(tmp_path)


def test_checkpoint_of_another_configuration_is_not_resumed(tmp_path):
    _run(tmp_path, stop_after=10)
    model = _toy()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)  # another optimiser: a different run
    cfg = TrainConfig(iterations=12, seed=7, ckpt_every=6, progress=False)
    ckpt = train(model, opt, cfg, tmp_path, _sample, _loss)
    assert load_checkpoint(ckpt)["iteration"] == 12
    assert (tmp_path / "checkpoint.stale.pt").exists()
    assert len(pd.read_csv(tmp_path / "loss.csv")) == 12  # started from 0, old log replaced


def test_more_iterations_continue_a_finished_run(tmp_path):
    _run(tmp_path, iterations=10)
    assert load_checkpoint(_run(tmp_path, iterations=15))["iteration"] == 15
    assert len(pd.read_csv(tmp_path / "loss.csv")) == 15


def test_prefetching_threads_give_the_same_batches_in_order():
    from defocus.train.loop import _batches

    def sample(rng, dev):
        return float(rng.random())

    plain = list(_batches(sample, 3, 0, 5, 40, "cpu", 0))
    for workers in (1, 3):
        assert list(_batches(sample, 3, 0, 5, 40, "cpu", workers)) == plain
    # stopping early leaves no thread behind
    gen = _batches(sample, 3, 0, 0, 1000, "cpu", 2)
    assert next(gen) == list(_batches(sample, 3, 0, 0, 1, "cpu", 0))[0]
    gen.close()
