"""Named evaluation protocols: the declared protocol and each paper's own way of scoring.

A *preset* is a named set of protocol keys (:data:`defocus.evaluate.evaluate.DEFAULT_PROTOCOL`)
plus the metric it ranks methods by and the sources it was read from. ``evaluation.protocol:
NAME`` in the config (and ``defocus score --preset NAME``) scores the headline tables under
one preset; ``evaluation.tabulate`` lists the presets of ``results/tables/table_protocols``,
which shows how each paper's choices move every method's score and the ranking.

Built-in presets (:data:`BUILTIN_PRESETS`)
------------------------------------------
``declared``
    The project's protocol (README "The scoring protocol"), from the config's own
    ``evaluation`` keys.
``defusionnet_t1_blurred`` / ``defusionnet_t1_sharp``
    DeFusionNet Table 1 (Tang et al. CVPR 2019, Sec. 4.2: F_beta with beta^2 = 0.3 and MAE,
    CUHK 604/100 split, ``../shared/papers/tang2019_defusionnet_paper.txt``). The paper does
    not say which class is positive nor which F (max, mean or adaptive) it prints. The
    ``sharp`` reading (in-focus region positive) is the more likely one: DUT-DBD marks the
    in-focus region white (Zhao et al. CVPR 2018), BTBNet and DeFusionNet score with the
    salient-object-detection measures on in-focus-bright maps, and D-DFFNet's ``test.py``
    inverts the CUHK GT to match. The ``blurred`` reading is the declared protocol on the
    same 100 images. Both score max-F; ``f_beta_adaptive`` is recorded beside it.
``hifst_cvpr17``
    Golestaneh & Karam CVPR 2017, evaluation code isalirezag/HiFST ``Evaluation/
    PRDataComputation.m`` @ d49a5ccdafa54fcbed63dd9f96976250b74adcf5: all 1000 CUHK images
    (motion included), GT binarised at > 0 (``GT_Img(GT_Img>0.5)=1`` on uint8), each map
    ``mat2gray``-stretched per image and ``imresize``-d (bicubic) to its GT, ``map >= t``
    for t = 0..255, P and R summed over images and divided by the image count. Max-F of that
    curve with beta^2 = 0.3 (the release publishes the PR curve, ``Evaluation/output``).
    Bicubic overshoot is clipped to [0, 1] here; the MATLAB code keeps it, which differs
    only at t = 0 and t = 255 for the overshooting pixels. The max-F (beta^2 = 0.3) of the
    curves the release publishes, which this preset reproduces from those authors' maps:
    HiFST 0.821, Yi 0.797, Shi 0.785, Zhuo 0.773, Su 0.769, Tang 0.737
    (``Evaluation/output/BlurDetection_*_PRCurve.txt``: one "precision recall" line per
    t = 0..255).
``dhde_cvpr17``
    Park et al. CVPR 2017, Sec. 6 (``../shared/papers/park2017_dhde_paper.txt``): the 704
    CUHK defocus images; segmentation accuracy after Eq. 13, ``tau = alpha v_max + (1 -
    alpha) v_min``, alpha = 0.3 (ranking metric ``accuracy_eq13``; per-image accuracy
    averaged over images: the paper does not say whether pixels are pooled); and a PR curve
    over absolute sigma thresholds "from sigma_1 to sigma_L" (0.5 to 2.0 px, the 11 labels
    of Sec. 5.1) for methods with a physical sigma map (``f_beta_sigma``).
``dmenet_cvpr19``
    Lee et al. CVPR 2019 (DMENet), CUHK accuracy and mAP (supplementary Table 5, ``acc /
    mAP``) on its own 200 test images, and RTF sigma MSE / MAE. The RTF part is the released
    code (codeslake/DMENet ``evaluation/RTF/quantitative_RTF.m``: sigma clipped to 3.275 and
    divided by it), applied to every RTF test set whatever the preset. The SYNDOF part
    (supp. Tables 4 and 5, 0.013 / 0.084) is scored in the release's own units, also whatever
    the preset: the network's undecoded output (CoC / 15, ``net/{id}`` of DMENet's
    prediction files with ``target="coc"``) against the test GT / 255 (the manifest's ``coc``
    / 15), both cropped to multiples of 16, per-image mean then mean over images
    (``main.py`` ``evaluate``, lines 483-486, 515-520 and 543;
    :func:`defocus.evaluate.continuous.release_syndof_errors`): summary ``net_mse`` /
    ``net_mae`` on dataset ``dmenet_release_syndof``. For CUHK the
    evaluation code is not released: accuracy is taken to binarise as Park et al.'s Eq. 13
    (DMENet's PR curves vary "tau, the threshold for binarization", the symbol of Eq. 13)
    and mAP to be the mean over images of the average precision of the blurred class
    (:func:`defocus.evaluate.metrics.average_precision`); maps are min-max stretched per
    image first. The 504 / 200 split is the ``train/CUHK`` / ``test/CUHK`` folders of the
    authors' ``datasets.zip`` (dataset ``dmenet_release_cuhk``, whose manifest test split is
    those 200 images); their names are not published as a list, so on dataset ``cuhk`` this
    preset scores the manifest's test split unless a user preset names a text file of them
    (``split: {cuhk: path/to/dmenet_cuhk_test.txt}``, see :func:`split_ids`).

User presets
------------
``evaluation.presets.NAME: {base: PRESET, <protocol keys>...}`` defines a preset from a
built-in one (``base``, default ``declared``) with keys overridden; ``source`` and
``reading`` are free text for the tables' README.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

#: keys of a preset that change how maps are scored (a subset of DEFAULT_PROTOCOL's)
PRESET_KEYS = (
    "beta2",
    "n_thresholds",
    "averaging",
    "positive",
    "fixed_threshold",
    "adaptive_factor",
    "normalise",
    "resize",
    "gt_binarise",
    "eq13_alpha",
    "sigma_levels",
    "split",
    "metric",
)

#: metrics a preset may rank by -> True where higher is better
METRICS: dict[str, bool] = {
    "f_beta": True,
    "f_beta_mean": True,
    "f_beta_adaptive": True,
    "accuracy": True,
    "iou": True,
    "accuracy_eq13": True,
    "map": True,
    "f_beta_sigma": True,
    "mae": False,
    "defocus_mse": False,
    "defocus_mae": False,
}

NORMALISE = ("none", "mat2gray")
#: map -> GT resizing of a preset: none (sizes must match) or an OpenCV interpolation
RESIZE = ("none", "bilinear", "bicubic", "nearest", "area")


@dataclass(frozen=True)
class SplitFile:
    """A named list of image ids shipped in ``defocus/datasets/splits``."""

    name: str
    file: str
    dataset: str
    n: int
    source: str


#: the named split files (each file's header cites its source in full)
SPLITS: dict[str, SplitFile] = {
    s.name: s
    for s in (
        SplitFile(
            "cuhk_btbnet_test",
            "cuhk_btbnet_test.txt",
            "cuhk",
            100,
            "BTBNet 604/100 test split (yuxinjin-whu/D-DFFNet split.txt); DeFusionNet Table 1",
        ),
        SplitFile(
            "cuhk_all",
            "cuhk_all.txt",
            "cuhk",
            1000,
            "all 1000 CUHK images (isalirezag/HiFST Evaluation/GT); HiFST's evaluation",
        ),
        SplitFile(
            "cuhk_defocus",
            "cuhk_defocus.txt",
            "cuhk",
            704,
            "the 704 out_of_focus CUHK images; DHDE Sec. 6",
        ),
        SplitFile(
            "cuhk_kim_train",
            "cuhk_kim_train.txt",
            "cuhk",
            800,
            "Kim et al. 800/200 split, train (HyeongseokSon1/deep_blur_detection_and_"
            "classification dataset/train_list.txt)",
        ),
        SplitFile(
            "cuhk_kim_test",
            "cuhk_kim_test.txt",
            "cuhk",
            200,
            "Kim et al. 800/200 split, test (dataset/test_list.txt of the same repository)",
        ),
    )
}


def is_split_file(name: str) -> bool:
    """Whether a split value names a user's text file rather than a shipped split."""
    return name not in SPLITS and (name.endswith(".txt") or "/" in name)


def split_ids(name: str) -> list[str]:
    """The ids of a named split file (:data:`SPLITS`) or of a user's text file, in file order.

    Lines starting with ``#`` are comments; a line ``N.bmp--<file>`` (BTBNet result name and
    CUHK file) gives the stem of ``<file>``; any other line is an id or a file name (its
    stem is the id). A user's file (a path ending in ``.txt`` or containing ``/``) makes, e.g.,
    DMENet's 200 CUHK test images a split: ``ls test/CUHK/image > dmenet_cuhk_test.txt`` in
    the authors' ``datasets.zip``.
    """
    if is_split_file(name):
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"split file {name} not found (a protocol preset's split names it)")
        text = path
    elif name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; known splits: {', '.join(sorted(SPLITS))}")
    else:
        text = resources.files("defocus.datasets").joinpath(f"splits/{SPLITS[name].file}")
    from defocus.datasets.readers import parse_split

    return parse_split(text.read_text())


@dataclass(frozen=True)
class Preset:
    """A named protocol: ``keys`` over the declared protocol, the ranking ``metric`` (in
    ``keys``), the paper table it reproduces, its sources and what is assumed."""

    name: str
    keys: dict[str, Any] = field(default_factory=dict)
    paper_table: str = ""
    source: str = ""
    reading: str = ""
    #: built-in paper presets fix every key; ``declared`` takes the config's own keys
    from_config: bool = False

    @property
    def metric(self) -> str:
        return str(self.keys.get("metric", "f_beta"))


_DEFUSIONNET_SOURCE = (
    "Tang et al. CVPR 2019 Sec. 4.2 (F_beta, beta^2 = 0.3, MAE; CUHK 604/100); DUT-DBD in-focus "
    "white (Zhao et al. CVPR 2018); D-DFFNet test.py inverts the CUHK GT"
)

BUILTIN_PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "declared",
            {"metric": "f_beta"},
            "every table of this project",
            "this project's declared protocol (README, The scoring protocol)",
            "the config's evaluation keys",
            from_config=True,
        ),
        Preset(
            "defusionnet_t1_blurred",
            {"positive": "blurred", "split": {"cuhk": "cuhk_btbnet_test"}, "metric": "f_beta"},
            "DeFusionNet (Tang CVPR'19) Table 1",
            _DEFUSIONNET_SOURCE,
            "reading 1: blurred class positive (the declared protocol on the 100 test images); "
            "which F the paper prints is not said: max-F here, adaptive F recorded beside it",
        ),
        Preset(
            "defusionnet_t1_sharp",
            {"positive": "sharp", "split": {"cuhk": "cuhk_btbnet_test"}, "metric": "f_beta"},
            "DeFusionNet (Tang CVPR'19) Table 1",
            _DEFUSIONNET_SOURCE,
            "reading 2 (more likely): the in-focus region positive, as DUT and BTBNet score; "
            "max-F here, adaptive F recorded beside it",
        ),
        Preset(
            "hifst_cvpr17",
            {
                "averaging": "image",
                "normalise": "mat2gray",
                "resize": "bicubic",
                "gt_binarise": "nonzero",
                "split": {"cuhk": "cuhk_all"},
                "metric": "f_beta",
            },
            "HiFST (Golestaneh CVPR'17) PR curve on CUHK (Evaluation/output)",
            "isalirezag/HiFST Evaluation/PRDataComputation.m @ "
            "d49a5ccdafa54fcbed63dd9f96976250b74adcf5",
            "read from the released code; the F (max over the PR curve, beta^2 = 0.3) is "
            "derived from the published curve",
        ),
        Preset(
            "dhde_cvpr17",
            {
                "split": {"cuhk": "cuhk_defocus"},
                "eq13_alpha": 0.3,
                "sigma_levels": [0.5, 2.0, 11],
                "metric": "accuracy_eq13",
            },
            "DHDE (Park CVPR'17) Fig. 8 (accuracy, PR)",
            "Park et al. CVPR 2017 Sec. 6, Eq. 13 (alpha = 0.3); sigma labels Sec. 5.1",
            "accuracy per image averaged over images (pooling not stated); tau applied as "
            "map >= tau; sigma PR only for methods with a physical sigma map",
        ),
        Preset(
            "dmenet_cvpr19",
            {
                "normalise": "mat2gray",
                "eq13_alpha": 0.3,
                "metric": "accuracy_eq13",
            },
            "DMENet (Lee CVPR'19) CUHK accuracy (0.878) and supp. Table 5 acc / mAP; Table 2 RTF",
            "codeslake/DMENet evaluation/ (RTF code only); paper Sec. 6 (CUHK 200 test images)",
            "CUHK code not released: accuracy binarised by Eq. 13 and mAP as the mean per-image "
            "AP of the blurred class are inferred; its 200 test images are dataset "
            "dmenet_release_cuhk",
        ),
    )
}


def preset_names(user_presets: Mapping[str, Any] | None = None) -> list[str]:
    """Built-in preset names, then the config's own."""
    return list(BUILTIN_PRESETS) + [n for n in (user_presets or {}) if n not in BUILTIN_PRESETS]


def get_preset(name: str, user_presets: Mapping[str, Any] | None = None) -> Preset:
    """The preset called ``name``: built-in, or defined under ``evaluation.presets``.

    Raises ValueError naming the known presets, or the bad key of a user preset.
    """
    user = dict(user_presets or {})
    if name in BUILTIN_PRESETS:
        if name in user:
            raise ValueError(
                f"config key evaluation.presets.{name}: a built-in preset of that name exists; "
                "choose another name"
            )
        return BUILTIN_PRESETS[name]
    if name not in user:
        raise ValueError(
            f"unknown evaluation protocol preset {name!r}; known: "
            f"{', '.join(preset_names(user))} (define your own under evaluation.presets)"
        )
    entry = dict(user[name] or {})
    base_name = str(entry.pop("base", "declared"))
    if base_name not in BUILTIN_PRESETS:
        raise ValueError(
            f"config key evaluation.presets.{name}.base: {base_name!r} is not a built-in preset "
            f"({', '.join(BUILTIN_PRESETS)})"
        )
    source = str(entry.pop("source", "") or "user-defined in the config")
    reading = str(entry.pop("reading", "") or "")
    bad = sorted(set(entry) - set(PRESET_KEYS))
    if bad:
        raise ValueError(
            f"config key evaluation.presets.{name}: unknown key(s) {bad}; valid keys: base, "
            f"source, reading, {', '.join(PRESET_KEYS)}"
        )
    base = BUILTIN_PRESETS[base_name]
    keys = {**copy.deepcopy(base.keys), **entry}
    _check_keys(name, keys)
    return Preset(
        name,
        keys,
        paper_table=f"user preset (base {base_name})",
        source=source,
        reading=reading,
        from_config=base.from_config,
    )


def _check_keys(name: str, keys: Mapping[str, Any]) -> None:
    where = f"evaluation.presets.{name}"
    if keys.get("metric", "f_beta") not in METRICS:
        raise ValueError(
            f"config key {where}.metric: {keys.get('metric')!r} is not one of {sorted(METRICS)}"
        )
    if keys.get("normalise", "none") not in NORMALISE:
        raise ValueError(f"config key {where}.normalise: expected one of {NORMALISE}")
    if keys.get("resize", "none") not in RESIZE:
        raise ValueError(f"config key {where}.resize: expected one of {RESIZE}")
    for dataset, split in (keys.get("split") or {}).items():
        if split not in SPLITS and split != "test" and not is_split_file(str(split)):
            raise ValueError(
                f"config key {where}.split.{dataset}: unknown split {split!r}; known: "
                f"test, {', '.join(sorted(SPLITS))}, or a path to a text file of ids"
            )
    levels = keys.get("sigma_levels")
    if levels is not None:
        from defocus.evaluate.metrics import sigma_levels as check_levels

        if len(levels) != 3:
            raise ValueError(f"config key {where}.sigma_levels: expected [low, high, n]")
        check_levels(*levels)


def preset_protocol(
    name: str,
    evaluation: Mapping[str, Any],
    seed: int,
    dataset: str,
    *,
    n_bootstrap: int | None = None,
) -> dict[str, Any]:
    """The protocol dict of :func:`defocus.evaluate.evaluate.evaluate_file` for a preset.

    ``evaluation`` is the config's validated ``evaluation`` block: ``declared`` (and user
    presets based on it) start from its keys (:func:`defocus.config.evaluation_protocol`);
    the paper presets start from the project's defaults and fix their own keys, so they
    score the same whatever the config says. The bootstrap size, the seed and the RTF
    normalisation of continuous maps come from the config for every preset;
    ``n_bootstrap`` overrides the resample count (0 = no CIs).
    """
    from defocus.config import evaluation_protocol
    from defocus.evaluate.evaluate import DEFAULT_PROTOCOL

    preset = get_preset(name, evaluation.get("presets"))
    configured = evaluation_protocol(dict(evaluation), seed, dataset)
    if preset.from_config:
        proto = {**DEFAULT_PROTOCOL, **configured}
    else:
        keep = ("n_bootstrap", "seed", "continuous_clip", "continuous_scale", "continuous_crop")
        proto = {**DEFAULT_PROTOCOL, **{k: v for k, v in configured.items() if k in keep}}
    proto.update(copy.deepcopy(preset.keys))
    proto["preset"] = preset.name
    if n_bootstrap is not None:
        proto["n_bootstrap"] = int(n_bootstrap)
    return proto


def split_for(protocol: Mapping[str, Any], dataset: str) -> str | None:
    """The named split a protocol scores ``dataset`` on (None: the manifest's test split)."""
    split = (protocol.get("split") or {}).get(dataset)
    return None if split in (None, "test") else str(split)


def images_text(
    protocol: Mapping[str, Any], dataset: str, n_scored: int | None = None, n_missing: int = 0
) -> str:
    """Which images a protocol scores on ``dataset``, in words (for tables): the manifest's
    test split, or a named split with how many of its ids were scored."""
    name = split_for(protocol, dataset)
    if name is None:
        return "manifest test split"
    n = SPLITS[name].n if name in SPLITS else len(split_ids(name))
    if n_scored is None or not n_missing:
        return f"split {name} ({n} ids)"
    return (
        f"split {name}: {n_scored} of {n} ids (the others are not in the manifest or have no map)"
    )


def select_rows(df, protocol: Mapping[str, Any], dataset: str, split: str = "test"):
    """The manifest rows a protocol scores, and the split ids absent from the manifest.

    Without a named split for ``dataset`` the rows of the manifest split ``split``; with one,
    every manifest row (any split) whose id is in the split file (ids compared
    case-insensitively), in the manifest's order. Raises ValueError when none is present.
    """
    name = split_for(protocol, dataset)
    if name is None:
        return df[df["split"] == split].reset_index(drop=True), []
    wanted = {i.lower(): i for i in split_ids(name)}
    have = df["id"].astype(str).str.lower()
    rows = df[have.isin(set(wanted))].reset_index(drop=True)
    missing = sorted(set(wanted) - set(have))
    if rows.empty:
        raise ValueError(
            f"protocol preset {protocol.get('preset')!r} scores dataset {dataset} on split "
            f"{name} ({len(wanted)} ids), but none of those ids is in its manifest"
        )
    return rows, [wanted[m] for m in missing]


def write_split_manifest(manifest_csv: str | Path, protocol: Mapping[str, Any], dataset: str,
                         out: str | Path) -> tuple[Path, list[str]]:  # fmt: skip
    """A copy of a manifest whose ``test`` rows are the images ``protocol`` scores on
    ``dataset`` (the others become ``train``): lets ``defocus score`` import exactly those
    maps. Returns the new manifest and the split ids absent from the manifest."""
    from defocus.io.manifest import read_manifest, write_manifest

    df = read_manifest(manifest_csv)
    rows, missing = select_rows(df, protocol, dataset)
    chosen = set(rows["id"])
    df = df.assign(split=["test" if i in chosen else "train" for i in df["id"]])
    out = Path(out)
    write_manifest(df.to_dict("records"), out)
    return out, missing


def default_evaluation() -> dict[str, Any]:
    """The config's ``evaluation`` block with every schema default filled (for
    ``defocus score`` without ``--config``)."""
    import yaml

    from defocus.config import SCHEMA_PATH, _validator_with_defaults

    schema = yaml.safe_load(Path(SCHEMA_PATH).read_text())
    sub = {**schema["properties"]["evaluation"]}
    sub["$schema"] = schema.get("$schema", "https://json-schema.org/draft/2020-12/schema")
    evaluation: dict[str, Any] = {}
    _validator_with_defaults(sub).validate(evaluation)
    return evaluation


def preset_info(name: str, evaluation: Mapping[str, Any], seed: int, dataset: str) -> dict:
    """A preset for tables and READMEs: name, paper table, source, reading, metric and its
    protocol in words (:func:`defocus.evaluate.metrics.describe_protocol`) on ``dataset``."""
    from defocus.evaluate.metrics import describe_protocol

    preset = get_preset(name, evaluation.get("presets"))
    proto = preset_protocol(name, evaluation, seed, dataset)
    return {
        "name": preset.name,
        "paper_table": preset.paper_table,
        "source": preset.source,
        "reading": preset.reading,
        "metric": preset.metric,
        "keys": preset.keys,
        "differs": differs_text(proto),
        "text": describe_protocol(**proto),
    }


def differs_text(protocol: Mapping[str, Any]) -> str:
    """The keys of a protocol that differ from the declared defaults, in one short line
    (``metric`` always named): e.g. ``positive = sharp; split cuhk: cuhk_btbnet_test``."""
    from defocus.evaluate.evaluate import DEFAULT_PROTOCOL

    skip = {"preset", "metric", "n_bootstrap", "seed", "ci_level", "continuous_clip"}
    skip |= {"continuous_scale", "continuous_crop"}
    parts = [f"metric {protocol.get('metric', 'f_beta')}"]
    for key, default in DEFAULT_PROTOCOL.items():
        value = protocol.get(key, default)
        if key in skip or value == default:
            continue
        if key == "split":
            value = ", ".join(f"{d}: {s}" for d, s in sorted((value or {}).items()))
        parts.append(f"{key} {value}")
    return "; ".join(parts)


def config_errors(evaluation: Mapping[str, Any]) -> list[str]:
    """One line per unknown or invalid preset named by ``evaluation.protocol``,
    ``evaluation.tabulate`` or defined under ``evaluation.presets`` (checked before any job)."""
    user = evaluation.get("presets") or {}
    errors = []
    names = [("evaluation.protocol", evaluation.get("protocol", "declared"))]
    tabulate = list(evaluation.get("tabulate", []))
    names += [(f"evaluation.tabulate[{i}]", n) for i, n in enumerate(tabulate)]
    names += [(f"evaluation.presets.{n}", n) for n in user]
    seen = set()
    for key, name in names:
        try:
            get_preset(str(name), user)
        except ValueError as e:
            msg = str(e)
            if msg not in seen:
                seen.add(msg)
                errors.append(msg if msg.startswith("config key") else f"config key {key}: {msg}")
    if tabulate and "declared" not in tabulate:
        errors.append(
            "config key evaluation.tabulate: must include declared (Kendall's tau of every "
            "preset is taken against it), or be [] for no table_protocols"
        )
    return errors
