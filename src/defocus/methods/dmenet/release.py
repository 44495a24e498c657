"""The authors' trained DMENet (``DMENet_BDCS.npz``) as this package's :class:`DMENet`.

Source: github.com/codeslake/DMENet (cited as "release"). The release trains with TensorFlow
1.15 and TensorLayer 1.11.1 (``install_CUDA10.0.sh``) and saves its checkpoint with
``tl.files.save_npz_dict(save_vars, ...)`` (``main.py`` line 433), where ``save_vars`` are all
variables under ``main_net`` and ``discriminator`` (``main.py`` line 187). That function
(TensorLayer ``files/utils.py``) writes one array per variable, keyed by the TF variable name
(``tensor.name``, e.g. ``main_net/defocus_net/encoder/conv1_1/kernel:0``).

Variable names (release ``model.py`` and ``main.py`` lines 103-120):

* scopes ``main_net/defocus_net/encoder`` (``VGG19_down``: ``conv1_1`` .. ``conv5_4``),
  ``main_net/defocus_net/decoder`` (``UNet_up``: ``u4_aux``, ``u3``, ``u3_aux``, ``u2``,
  ``u2_aux``, ``u1``, ``u1_aux``, ``u0`` (``c_init``, ``c{i}_1``, ``c{i}_2``, ``c_res{i}``),
  ``u0_aux``, ``uf``), ``main_net/binary_net`` (``Binary_Net``: ``l1`` .. ``l4``) and
  ``discriminator/feature`` (``feature_discriminator``: ``h0`` .. ``h4``);
* TensorLayer 1.11 ``Conv2d`` is a ``tf.layers.Conv2D``: ``<layer>/kernel`` (HWIO: kernel
  rows, kernel columns, input channels, output channels) and ``<layer>/bias`` (absent with
  ``b_init=None``: the discriminator). TensorLayer <= 1.8 named them ``W_conv2d`` /
  ``b_conv2d``; both spellings are read;
* ``BatchNormLayer``: ``beta``, ``moving_mean``, ``moving_variance``, and ``gamma`` only when
  ``gamma_init`` is set, which the release never does in the decoder, S or D (so gamma = 1);
  epsilon 1e-5 (TensorLayer's default, as :func:`defocus.methods.dmenet.layers._bn`);
* the training graph also builds a VGG classification head in the encoder scope
  (``model.py`` lines 78-88: ``conv6_1``, ``c_logits_1``, ``c_logits_2``) that no output
  uses; those variables are recognised and skipped.

Layouts: NHWC activations, so a concat of ``[upsampled, skip]`` on axis 3 is PyTorch's concat
on axis 1 in the same channel order; kernels HWIO -> PyTorch OIHW; the encoder's 3x3 convs
pad 1 px ``"Symmetric"`` then convolve ``VALID`` (= this package's edge replication), the
discriminator's 4x4 stride-2 convs pad ``'SAME'`` (:func:`defocus.methods.dmenet.layers._pad_same`).
The encoder's input is BGR, 0-255, minus the Caffe mean (``vgg_input="caffe"``), and the
network's output is CoC / 15 (``target="coc"``).

Download: the ``dmenet`` entry (``DMENet_BDCS.zip``, its member ``DMENet_BDCS.npz``) and the
``vgg19`` entry (``vgg19.zip``, its member ``vgg19.npy``) of :mod:`defocus.releases`. No
digest is published: the first download logs its sha256, to be pinned in config as
``releases.dmenet.sha256`` / ``releases.vgg19.sha256``.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

ENCODER = "main_net/defocus_net/encoder/"
DECODER = "main_net/defocus_net/decoder/"
BINARY = "main_net/binary_net/"
DISCRIMINATOR = "discriminator/feature/"
#: convs per VGG19 block (``VGG19_down``: conv1_1..1_2, 2_1..2_2, 3_1..3_4, 4_1..4_4, 5_1..5_4)
VGG19_BLOCKS = (2, 2, 4, 4, 4)
#: the unused classification head of the training graph (model.py lines 78-88)
_TRAINING_HEAD = re.compile(r"^" + re.escape(ENCODER) + r"(conv6_1|c_logits_\d+(_\d+)?)/")
#: TensorLayer's spellings of a conv's variables: 1.9+ (tf.layers) and <= 1.8
_KERNEL = ("kernel", "W_conv2d")
_BIAS = ("bias", "b_conv2d")


class ReleaseCheckpointError(ValueError):
    """A TensorLayer checkpoint does not hold the release's DMENet variables."""


def _conv_bn(seq: nn.Sequential) -> tuple[nn.Conv2d, nn.BatchNorm2d | None]:
    conv = seq[0]
    bn = seq[1] if len(seq) > 1 and isinstance(seq[1], nn.BatchNorm2d) else None
    return conv, bn


def release_layers(model: nn.Module, disc: nn.Module | None = None) -> list[tuple]:
    """``(group, conv scope, conv, bn scope or None, bn or None)`` for every conv of the
    release's graph that ``model`` (a :class:`~defocus.methods.dmenet.DMENetModel`) and
    ``disc`` hold; group ``"B"`` (blur network), ``"S"`` (``Binary_Net``) or ``"D"``."""
    out: list[tuple] = []
    b = model.blur
    convs = [m for m in b.encoder if isinstance(m, nn.Conv2d)]
    names = [f"conv{k}_{i}" for k, n in enumerate(VGG19_BLOCKS, 1) for i in range(1, n + 1)]
    if len(convs) != len(names):
        raise ReleaseCheckpointError(f"the encoder has {len(convs)} convs, VGG19 has 16")
    out += [("B", ENCODER + n, c, None, None) for n, c in zip(names, convs, strict=True)]

    def cb(scope: str, c: str, bn: str, seq: nn.Sequential) -> None:
        conv, norm = _conv_bn(seq)
        out.append(("B", f"{DECODER}{scope}/{c}", conv, f"{DECODER}{scope}/{bn}", norm))

    def aux(scope: str, head: nn.Module) -> None:
        cb(scope, "c1", "b1", head.body)
        cb(scope, "c2", "b2", head.out)

    if b.aux is not None:
        aux("u4_aux", b.aux[0])
    for level, scope in enumerate(("u3", "u2", "u1")):
        for i, seq in enumerate(b.up[level], 1):
            cb(scope, f"c{i}", f"b{i}", seq)
        if b.aux is not None:
            aux(f"{scope}_aux", b.aux[level + 1])
    cb("u0", "c_init", "b_init", b.up_full)
    if b.aux is not None:
        aux("u0_aux", b.aux[4])
    for i, block in enumerate(b.refine):
        cb("u0", f"c{i}_1", f"b{i}_1", block.body[0])
        cb("u0", f"c{i}_2", f"b{i}_2", block.body[1])
        cb("u0", f"c_res{i}", f"b_res{i}", block.shortcut)
    cb("uf", "c1", "b1", b.head[0])
    cb("uf", "c2", "b2", b.head[1])
    out.append(("B", DECODER + "uf/c3", b.head[2], None, None))
    if getattr(model, "calib", None) is not None:
        mods = list(model.calib.body)
        for j in range(3):
            for k in range(3):
                conv, norm = _conv_bn(mods[3 * j + k])
                out.append(
                    ("S", f"{BINARY}l{j + 1}/c{k + 1}", conv, f"{BINARY}l{j + 1}/b{k + 1}", norm)
                )
        out.append(("S", BINARY + "l4/c1", mods[9], None, None))
    if disc is not None:
        for i, layer in enumerate(disc.layers):
            conv, norm = _conv_bn(layer)
            bn = f"{DISCRIMINATOR}h{i}/b1" if norm is not None else None
            out.append(("D", f"{DISCRIMINATOR}h{i}/c1", conv, bn, norm))
    return out


def expected_variables(model: nn.Module, disc: nn.Module | None = None) -> dict[str, tuple]:
    """TF variable name (``:0`` included, TensorLayer 1.11 spelling) -> TF shape, for the
    release's graph as ``model`` and ``disc`` hold it (BN without gamma, as the release)."""
    out: dict[str, tuple] = {}
    for _, scope, conv, bn_scope, bn in release_layers(model, disc):
        o, i, kh, kw = conv.weight.shape
        out[f"{scope}/kernel:0"] = (kh, kw, i, o)
        if conv.bias is not None:
            out[f"{scope}/bias:0"] = (o,)
        if bn is not None:
            for v in ("beta", "moving_mean", "moving_variance"):
                out[f"{bn_scope}/{v}:0"] = (bn.num_features,)
    return out


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """A ``save_npz_dict`` file: TF variable name (without ``:0``) -> array."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ReleaseCheckpointError(f"{path}: not a readable .npz checkpoint ({e})") from None
    out: dict[str, np.ndarray] = {}
    for k, v in arrays.items():
        name = k[:-2] if k.endswith(":0") else k
        if name in out:
            raise ReleaseCheckpointError(f"{path}: variable {name} appears twice")
        out[name] = v
    return out


def _take(arrays: dict[str, np.ndarray], scope: str, spellings: tuple[str, ...]) -> str | None:
    for s in spellings:
        if f"{scope}/{s}" in arrays:
            return f"{scope}/{s}"
    return None


def release_state_dict(
    path: str | Path, model: nn.Module, disc: nn.Module | None = None
) -> dict[str, Any]:
    """Convert the release's ``.npz`` into state dicts of ``model`` (B and, if it has one, S)
    and ``disc``, matched by variable name with shape checks.

    Returns ``{"model": state dict, "disc": state dict or None, "skipped": [names]}``.
    Group B (encoder + decoder) must be complete; S and D are optional as groups (a group
    present in the file must be complete). Batch norms without ``gamma`` get scale 1.

    Raises
    ------
    ReleaseCheckpointError
        Listing every missing variable, every variable of the file that matches nothing of
        the release's graph, and every shape mismatch (TF shape in the file vs expected).
    """
    path = Path(path)
    arrays = read_npz(path)
    layers = release_layers(model, disc)
    names = {id(m): n for n, m in model.named_modules()}
    dnames = {id(m): n for n, m in disc.named_modules()} if disc is not None else {}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    dstate = {k: v.clone() for k, v in disc.state_dict().items()} if disc is not None else None
    used: set[str] = set()
    missing: dict[str, list[str]] = {"B": [], "S": [], "D": []}
    bad: list[str] = []
    found = {"B": 0, "S": 0, "D": 0}

    def put(group: str, module: nn.Module, attr: str, value: np.ndarray, name: str) -> None:
        target, prefix = (dstate, dnames) if group == "D" else (state, names)
        key = f"{prefix[id(module)]}.{attr}"
        want = tuple(target[key].shape)
        if tuple(value.shape) != want:
            bad.append(f"{name}: file {tuple(value.shape)}, expected {want}")
            return
        target[key] = torch.from_numpy(np.ascontiguousarray(value, np.float32))

    for group, scope, conv, bn_scope, bn in layers:
        k = _take(arrays, scope, _KERNEL)
        if k is None:
            missing[group].append(f"{scope}/kernel")
        else:
            used.add(k)
            found[group] += 1
            w = arrays[k]
            if w.ndim != 4:
                bad.append(f"{k}: file {tuple(w.shape)}, expected a 4-d HWIO kernel")
            else:  # HWIO -> OIHW
                o, i, kh, kw = conv.weight.shape
                if tuple(w.shape) != (kh, kw, i, o):
                    bad.append(f"{k}: file {tuple(w.shape)}, expected {(kh, kw, i, o)}")
                else:
                    put(group, conv, "weight", w.transpose(3, 2, 0, 1), k)
        if conv.bias is not None:
            kb = _take(arrays, scope, _BIAS)
            if kb is None:
                missing[group].append(f"{scope}/bias")
            else:
                used.add(kb)
                put(group, conv, "bias", arrays[kb], kb)
        if bn is not None:
            for var, attr in (("beta", "bias"), ("moving_mean", "running_mean"),
                              ("moving_variance", "running_var")):  # fmt: skip
                name = f"{bn_scope}/{var}"
                if name not in arrays:
                    missing[group].append(name)
                    continue
                used.add(name)
                put(group, bn, attr, arrays[name], name)
            gamma = f"{bn_scope}/gamma"
            if gamma in arrays:  # a BN trained with a scale
                used.add(gamma)
                put(group, bn, "weight", arrays[gamma], gamma)
            else:  # release: gamma_init=None, no scale
                put(group, bn, "weight", np.ones(bn.num_features, np.float32), gamma)
    skipped = sorted(n for n in arrays if n not in used and _TRAINING_HEAD.match(n))
    # S and D of the release that this model does not hold (e.g. subnets without S)
    foreign = sorted(
        n
        for n in arrays
        if n not in used
        and n not in skipped
        and (
            (n.startswith(BINARY) and getattr(model, "calib", None) is None)
            or (n.startswith(DISCRIMINATOR) and disc is None)
        )
    )
    leftover = sorted(set(arrays) - used - set(skipped) - set(foreign))
    problems = []
    if missing["B"]:
        problems.append(f"missing {len(missing['B'])} variable(s) of B: {missing['B']}")
    for g, what in (("S", "Binary_Net (S)"), ("D", "feature_discriminator (D)")):
        if found[g] and missing[g]:  # a group present in the file must be whole
            problems.append(f"missing {len(missing[g])} variable(s) of {what}: {missing[g]}")
    if leftover:
        problems.append(f"{len(leftover)} variable(s) matching nothing of DMENet: {leftover}")
    if bad:
        problems.append(f"{len(bad)} shape mismatch(es): {bad}")
    if problems:
        raise ReleaseCheckpointError(
            f"{path} is not the release's DMENet checkpoint for this network (width "
            f"{getattr(model.blur, 'feat_channels', '?')} at full resolution): "
            + "; ".join(problems)
        )
    if getattr(model, "calib", None) is not None and not found["S"]:
        log.info("%s holds no Binary_Net (S): S keeps its initial weights", path)
    if disc is not None and not found["D"]:
        log.info("%s holds no discriminator (D): D keeps its initial weights", path)
        dstate = None
    if skipped or foreign:
        log.info("%s: skipped %d variable(s) this network has no use for", path,
                 len(skipped) + len(foreign))  # fmt: skip
    return {"model": state, "disc": dstate, "skipped": skipped + foreign}


#: the layers of ``vgg19.npy`` the release loads: every conv before ``fc6`` (``main.py`` lines
#: 256-267: the sorted items up to ``fc6``, each ``[W, b]``, into the encoder and into C)
VGG19_NPY_LAYERS = tuple(
    f"conv{k}_{i}" for k, n in enumerate(VGG19_BLOCKS, 1) for i in range(1, n + 1)
)


def vgg19_npy_state_dict(path: str | Path, features: nn.Sequential) -> dict[str, torch.Tensor]:
    """A state dict of ``features`` (this package's VGG19 ``features``, torchvision layout)
    from the release's ``vgg19.npy`` (github machrisaa/tensorflow-vgg, linked by the release
    README step 6): a pickled dict ``{layer: [W (HWIO), b]}`` of the Caffe VGG19, whose input is
    BGR in 0-255 minus the Caffe mean (``vgg_input="caffe"``).

    The file is a Python pickle (the release loads it with ``allow_pickle=True``); it is read
    with :func:`defocus.io.safe_npy.load_pickled_npy`, which builds numpy arrays and plain
    containers only, so a tampered file cannot run code.
    """
    from defocus.io.safe_npy import load_pickled_npy

    path = Path(path)
    try:
        data = load_pickled_npy(path)
        if not isinstance(data, dict):
            raise ValueError(f"holds a {type(data).__name__}, not a dict")
    except (OSError, ValueError, AttributeError, pickle.UnpicklingError) as e:
        raise ReleaseCheckpointError(f"{path}: not a vgg19.npy dict of layers ({e})") from None
    convs = [(i, m) for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    missing = [n for n in VGG19_NPY_LAYERS if n not in data]
    if missing or len(convs) != len(VGG19_NPY_LAYERS):
        raise ReleaseCheckpointError(
            f"{path}: missing VGG19 layer(s) {missing} (has {sorted(data)[:20]})"
            if missing
            else f"the network has {len(convs)} convs, VGG19 has {len(VGG19_NPY_LAYERS)}"
        )
    out: dict[str, torch.Tensor] = {}
    bad = []
    for name, (idx, conv) in zip(VGG19_NPY_LAYERS, convs, strict=True):
        w, b = (np.asarray(a, np.float32) for a in data[name][:2])
        o, i, kh, kw = conv.weight.shape
        if w.shape != (kh, kw, i, o) or b.shape != (o,):
            bad.append(f"{name}: file {w.shape} / {b.shape}, expected {(kh, kw, i, o)} / {(o,)}")
            continue
        out[f"{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
        out[f"{idx}.bias"] = torch.from_numpy(b)
    if bad:
        raise ReleaseCheckpointError(f"{path}: shape mismatch(es): {bad}")
    return out
