"""The predict rule's per-image seconds leave out one-off first-call costs (warm-up)."""

import time

import numpy as np
import pytest

from defocus.io.image import write_image
from defocus.io.manifest import write_manifest
from defocus.io.predictions import iter_maps, read_attrs
from defocus.methods import registry
from defocus.methods.base import Method
from defocus.predict import TIMING, TIMING_COLD, predict_manifest

#: the first call's one-off cost of :class:`SlowFirstCall`
FIRST_CALL_S = 0.6


class SlowFirstCall(Method):
    """Lazy initialisation on the first predict (as a model load or a JIT compile)."""

    name = "slow_first_call"

    def predict(self, image: np.ndarray) -> np.ndarray:
        if not getattr(self, "_ready", False):
            time.sleep(FIRST_CALL_S)
            self._ready = True
        grey = image.mean(axis=2, dtype=np.float32)
        return (grey - grey.min()) / max(float(np.ptp(grey)), 1e-6)


@pytest.fixture()
def manifest(tmp_path, photo, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "slow_first_call", f"{__name__}:SlowFirstCall")
    rows = []
    for i in range(3):
        path = tmp_path / "image" / f"{i}.png"
        write_image(path, np.roll(photo, 7 * i, axis=1))
        gt = tmp_path / "gt" / f"{i}.png"
        mask = np.zeros(photo.shape[:2], np.uint8)
        mask[:, photo.shape[1] // 2 :] = 255
        write_image(gt, mask)
        rows.append({"id": str(i), "split": "test", "image": path, "gt": gt})
    write_manifest(rows, tmp_path / "manifest.csv")
    return tmp_path / "manifest.csv"


def _seconds_and_maps(path):
    got = list(iter_maps(path, ["0", "1", "2"]))
    return [s for _, _, s in got], {i: m for i, m, _ in got}


def test_first_call_cost_is_not_in_seconds_per_image(manifest, tmp_path):
    warm = predict_manifest("slow_first_call", {}, manifest, tmp_path / "warm.h5")
    seconds, maps = _seconds_and_maps(warm)
    attrs = read_attrs(warm)
    # every image timed, the first one included, none with the first call's cost
    assert len(seconds) == 3 and max(seconds) < FIRST_CALL_S
    assert attrs["seconds_per_image"] < FIRST_CALL_S
    assert attrs["timing"] == TIMING and "warm-up" in attrs["timing"]
    assert attrs["warmup_seconds"] >= FIRST_CALL_S

    cold = predict_manifest("slow_first_call", {}, manifest, tmp_path / "cold.h5", warmup=False)
    cold_seconds, cold_maps = _seconds_and_maps(cold)
    assert cold_seconds[0] >= FIRST_CALL_S and max(cold_seconds[1:]) < FIRST_CALL_S
    assert read_attrs(cold)["timing"] == TIMING_COLD
    assert np.isnan(read_attrs(cold)["warmup_seconds"])
    # the warm-up changes the times only, not the maps
    for i in maps:
        assert maps[i].tobytes() == cold_maps[i].tobytes()


def test_the_runtime_table_gets_the_warm_times(manifest, tmp_path):
    from defocus.evaluate.evaluate import evaluate_file

    out = predict_manifest("slow_first_call", {}, manifest, tmp_path / "p.h5")
    seconds, _ = _seconds_and_maps(out)
    _, _, summary = evaluate_file(out, manifest, protocol={"n_bootstrap": 0})
    assert summary["seconds_per_image"] == pytest.approx(float(np.mean(seconds)))
    assert summary["seconds_per_image"] < FIRST_CALL_S
