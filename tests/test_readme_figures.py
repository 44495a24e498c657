"""Every figure the README states has a script that prints it: here the DHDE release's
(benchmarks/dhde_release_figures.py). The release weights need the network, so the script is
run on a DHDE checkpoint with random weights: what is checked is that it prints each figure
the README quotes, from the inputs it names."""

from __future__ import annotations

import importlib.util
import re

import pytest


@pytest.fixture(scope="module")
def script(root):
    spec = importlib.util.spec_from_file_location(
        "dhde_release_figures", root / "benchmarks" / "dhde_release_figures.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_figures_are_the_scripts(root, script):
    readme = (root / "README.md").read_text()
    # the figures the README quotes for dhde@weights=release, and the blurs the script uses
    assert "73.8 %" in readme and "90.1 %" in readme
    assert "1.25 / 1.7 / 2.0 for blur 1.0 / 1.5 / 2.0" in readme
    assert script.BLURS == (0.0, 1.0, 1.5, 2.0)
    doc = script.__doc__
    assert "73.8 %" in doc and "90.1 %" in doc and "config/dhde_cpu.yaml" in doc


def test_script_prints_each_figure(tmp_path, script, monkeypatch, capsys):
    from defocus.methods.dhde import DHDE
    from defocus.train.loop import save_checkpoint

    m = DHDE()
    ckpt = tmp_path / "model.pt"
    net = m.build_net()
    save_checkpoint(ckpt, {"model": net.state_dict(), "params": m.params, "iteration": 0})
    # the patch scoring itself is DHDE.patch_accuracy (tested with DHDE); here its wiring
    calls = []

    def fake_accuracy(self, paths, split="val"):
        calls.append((paths, split))
        return {"accuracy": 0.738, "exact": 0.3, "n": 100}

    monkeypatch.setattr(DHDE, "patch_accuracy", fake_accuracy)
    rc = script.main(
        ["--weights", str(ckpt), "--patches", str(tmp_path / "p.h5"), "--size", "96x64"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert calls == [([tmp_path / "p.h5"], "val")]
    assert "accuracy within 0.15 73.8 %" in out
    lines = re.findall(r"Gaussian blur ([\d.]+) px: median sparse sigma (\S+)", out)
    assert [b for b, _ in lines] == ["0", "1", "1.5", "2"]
    assert all(float(s) >= 0 or s == "nan" for _, s in lines)


def test_script_names_missing_weights(tmp_path, script, capsys):
    assert script.main(["--weights", str(tmp_path / "absent.caffemodel")]) == 2
    assert "release.caffemodel" in capsys.readouterr().err
