"""DMENet's SYNDOF test set in its authors' units: the network's undecoded output (CoC / 15)
stored as ``net/{id}`` and scored against GT / 255 as the release's ``main.py`` ``evaluate``
does (crop to multiples of 16, per-image mean, then the mean over images)."""

import math

import h5py
import numpy as np
import pytest
import torch

from defocus.datasets.dmenet_release import coc_to_sigma
from defocus.evaluate.continuous import net_unit_max_coc, release_syndof_errors
from defocus.evaluate.evaluate import evaluate_file
from defocus.io.image import write_image
from defocus.io.manifest import write_manifest
from defocus.io.predictions import PredictionError, PredictionWriter
from defocus.methods.base import minmax_normalise
from defocus.methods.dmenet import DMENet
from defocus.predict import predict_manifest

TINY = {"width": 1 / 16, "pretrained": False, "batch_size": 2, "crop": 32}


def _manifest(tmp_path, cocs: dict[str, np.ndarray]):
    """A manifest of grey images with ``coc`` (CoC px), ``defocus`` (sigma px) and a mask."""
    rows = []
    rng = np.random.default_rng(1)
    for i, coc in cocs.items():
        h, w = coc.shape
        img = tmp_path / "image" / f"{i}.png"
        write_image(img, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        gt = tmp_path / "gt" / f"{i}.png"
        write_image(gt, np.where(coc > 2.0, 255, 0).astype(np.uint8))
        row = {"id": i, "split": "test", "image": img, "gt": gt}
        for col, arr in (("coc", coc), ("defocus", coc_to_sigma(coc))):
            path = tmp_path / col / f"{i}.npy"
            path.parent.mkdir(exist_ok=True)
            np.save(path, arr.astype(np.float32))
            row[col] = path
        rows.append(row)
    write_manifest(rows, tmp_path / "manifest.csv")
    return tmp_path / "manifest.csv"


def _known_answer():
    """Two images whose release MSE / MAE are worked out by hand (binary-exact values).

    ``a`` (17 x 18): crop 16 x 16; GT CoC 3.75 (GT / 255 = 0.25), net 0.375: d = 0.125, so
    MSE 0.015625, MAE 0.125. Its last row and last two columns (net 1, CoC 0) are cropped off.
    ``b`` (16 x 32): left half GT 0, net 0.0625 (< 1/15: decodes to sigma 0, the clamp acts;
    the release still counts d = 0.0625), right half GT CoC 7.5 = 0.5, net 0.5: MSE
    0.0625^2 / 2 = 0.001953125, MAE 0.03125.
    Release figures (per-image mean, then mean over images): MSE 0.0087890625, MAE 0.078125.
    """
    coc_a = np.zeros((17, 18), np.float32)
    coc_a[:16, :16] = 3.75
    net_a = np.ones((17, 18), np.float32)
    net_a[:16, :16] = 0.375
    coc_b = np.zeros((16, 32), np.float32)
    coc_b[:, 16:] = 7.5
    net_b = np.full((16, 32), 0.0625, np.float32)
    net_b[:, 16:] = 0.5
    return {"a": (coc_a, net_a), "b": (coc_b, net_b)}


def _write(path, nets: dict[str, np.ndarray], unit: str = "coc/15") -> None:
    m = DMENet(**TINY, target="coc")
    with PredictionWriter(path, "dmenet", "syn", raw_unit="px", net_unit=unit) as w:
        for i, net in nets.items():
            raw = m.map_to_sigma(net)
            w.add(i, minmax_normalise(raw), 0.1, raw=raw, net=net if unit else None)


def test_release_syndof_errors_known_answer():
    case = _known_answer()
    a = release_syndof_errors(case["a"][1], case["a"][0], 15.0)
    b = release_syndof_errors(case["b"][1], case["b"][0], 15.0)
    assert a == {"mse": 0.015625, "mae": 0.125}
    assert b == {"mse": 0.001953125, "mae": 0.03125}
    # pooling every pixel would give another figure: the per-image mean is what is cited
    pooled_mse = (256 * 0.015625 + 256 * 0.0625**2) / 768
    assert (a["mse"] + b["mse"]) / 2 == 0.0087890625 != pooled_mse
    with pytest.raises(ValueError, match="one shape"):
        release_syndof_errors(np.zeros((16, 16)), np.zeros((16, 17)))
    with pytest.raises(ValueError, match="smaller than 16"):
        release_syndof_errors(np.zeros((8, 20)), np.zeros((8, 20)))
    assert net_unit_max_coc("coc/15") == 15.0
    assert net_unit_max_coc("coc/7.5") == 7.5
    for unit in ("", "px", "sigma/7", "coc/", "coc/x", "coc/0"):
        assert net_unit_max_coc(unit) is None


def test_evaluate_file_scores_the_net_output_in_release_units(tmp_path):
    case = _known_answer()
    manifest = _manifest(tmp_path, {i: coc for i, (coc, _) in case.items()})
    pred = tmp_path / "pred.h5"
    _write(pred, {i: net for i, (_, net) in case.items()})
    per_image, _, summary = evaluate_file(pred, manifest, protocol={"n_bootstrap": 0})
    assert per_image["net_mse"].tolist() == [0.015625, 0.001953125]
    assert per_image["net_mae"].tolist() == [0.125, 0.03125]
    assert summary["net_mse"] == 0.0087890625
    assert summary["net_mae"] == 0.078125
    assert summary["n_images_net"] == 2 and summary["net_unit"] == "coc/15"
    # the decoded, clamped sigma is scored as before, beside it
    assert summary["n_images_continuous"] == 2 and np.isfinite(summary["defocus_mse"])
    # the same under the dmenet_cvpr19 preset's keys
    from defocus.evaluate.protocols import BUILTIN_PRESETS

    keys = {**BUILTIN_PRESETS["dmenet_cvpr19"].keys, "n_bootstrap": 0}
    _, _, preset_summary = evaluate_file(pred, manifest, protocol=keys)
    assert preset_summary["net_mse"] == 0.0087890625
    assert preset_summary["net_mae"] == 0.078125


def test_files_without_net_output_are_scored_as_before(tmp_path):
    case = _known_answer()
    manifest = _manifest(tmp_path, {i: coc for i, (coc, _) in case.items()})
    plain = tmp_path / "plain.h5"
    _write(plain, {i: net for i, (_, net) in case.items()}, unit="")
    with h5py.File(plain, "r") as f:
        assert "net" not in f and "net_unit" not in f.attrs
    per_image, _, summary = evaluate_file(plain, manifest, protocol={"n_bootstrap": 0})
    assert "net_mse" not in summary and "net_mse" not in per_image.columns
    # a unit these errors do not apply to is not scored
    other = tmp_path / "other.h5"
    _write(other, {i: net for i, (_, net) in case.items()}, unit="sigma/7")
    _, _, summary = evaluate_file(other, manifest, protocol={"n_bootstrap": 0})
    assert "net_mse" not in summary


def test_writer_checks_the_net_output(tmp_path):
    m = np.zeros((4, 5), np.float32)
    with pytest.raises(PredictionError, match="net_unit"):
        with PredictionWriter(tmp_path / "a.h5", "m", "d") as w:
            w.add("x", m, 0.1, net=m)
    with pytest.raises(PredictionError, match="shape"):
        with PredictionWriter(tmp_path / "b.h5", "m", "d", net_unit="coc/15") as w:
            w.add("x", m, 0.1, net=np.zeros((4, 6)))
    with PredictionWriter(tmp_path / "c.h5", "m", "d", net_unit="coc/15") as w:
        w.add("x", m, 0.1, net=m - 0.5)  # not clamped, not range-checked
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert f.attrs["net_unit"] == "coc/15" and f["net/x"].attrs["unit"] == "coc/15"
        np.testing.assert_array_equal(f["net/x"][()], m - 0.5)


@pytest.mark.usefixtures("torch_one_thread")
def test_dmenet_stores_its_output_which_decodes_to_the_stored_sigma(tmp_path):
    from defocus.train.loop import save_checkpoint

    torch.manual_seed(0)
    m = DMENet(**TINY, target="coc")
    state = m.build().state_dict()
    # outputs around 1/15 so the decoding's clamp at sigma 0 acts on some pixels
    head = [k for k in state if k.startswith("blur.head.") and k.endswith(".bias")][-1]
    state[head] = torch.full_like(state[head], float(np.log(1 / 14)))
    ckpt = tmp_path / "checkpoint.pt"
    save_checkpoint(
        ckpt, {"model": state, "iteration": 0, "config": {"method": "dmenet", "params": m.params}}
    )
    rng = np.random.default_rng(0)
    cocs = {"p": rng.uniform(0, 3, (37, 53)), "q": rng.uniform(0, 3, (32, 48))}
    manifest = _manifest(tmp_path, cocs)
    pred = predict_manifest(
        "dmenet", {**TINY, "target": "coc"}, manifest, tmp_path / "p.h5", device="cpu",
        checkpoint=ckpt, warmup=False,
    )  # fmt: skip
    m.load(ckpt)
    clamped = 0
    with h5py.File(pred, "r") as f:
        assert f.attrs["net_unit"] == "coc/15"
        for i in cocs:
            net, raw = f[f"net/{i}"][()], f[f"raw/{i}"][()]
            assert f[f"net/{i}"].attrs["unit"] == "coc/15" and net.shape == cocs[i].shape
            # decoding the stored output gives the stored sigma, bit for bit
            np.testing.assert_array_equal(m.map_to_sigma(net), raw)
            np.testing.assert_allclose(raw, np.maximum((15 * net - 1) / 2, 0), atol=1e-6)
            clamped += int((net < 1 / 15).sum())
            # maps and raw are what the method gives without the stored output
            from defocus.io.image import read_image

            image = read_image(tmp_path / "image" / f"{i}.png")
            np.testing.assert_array_equal(raw, m.predict_raw(image))
            np.testing.assert_array_equal(f[f"maps/{i}"][()], minmax_normalise(raw))
    assert clamped > 0  # the clamp acted: raw alone could not give the release's figure
    _, _, summary = evaluate_file(pred, manifest, protocol={"n_bootstrap": 0})
    with h5py.File(pred, "r") as f:
        want = [release_syndof_errors(f[f"net/{i}"][()], cocs[i].astype(np.float32)) for i in cocs]
    assert summary["net_mse"] == pytest.approx(np.mean([e["mse"] for e in want]), rel=1e-12)
    assert summary["net_mae"] == pytest.approx(np.mean([e["mae"] for e in want]), rel=1e-12)
    # target sigma: no net output is stored
    assert DMENet(**TINY).net_unit == "" and m.net_unit == "coc/15"


def test_continuous_table_shows_the_authors_units_only_where_scored():
    from defocus.evaluate.tables import continuous_table

    base = {"method": "dmenet", "n_images_continuous": 2, "defocus_mse": 0.5, "defocus_mae": 0.4}
    plain = continuous_table([{**base, "dataset": "rtf"}])
    assert list(plain.columns)[-2:] == ["defocus_mse", "defocus_mae"]  # unchanged layout
    net = {"n_images_net": 2, "net_unit": "coc/15", "net_mse": 0.0087890625, "net_mae": 0.078125}
    both = continuous_table([{**base, "dataset": "rtf"}, {**base, "dataset": "syndof", **net}])
    assert list(both.columns)[-4:] == ["n_images_net", "net_unit", "net_mse", "net_mae"]
    row = both.set_index("dataset").loc["syndof"]
    assert row["net_mse"] == 0.0087890625 and row["net_mae"] == 0.078125
    assert math.isnan(both.set_index("dataset").loc["rtf", "net_mse"])
