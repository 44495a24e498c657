"""The dataset registry: what each public dataset is, where it lives and how it is labelled.

Every fact here comes from ``/work/shared/DATASETS.md`` (section numbers in comments);
``(R)`` there means "reported by public code, not checked against the live server". No data
owner publishes checksums, so most files have ``sha256=None``: the downloader then logs the
sha256 it computed so a user can pin it in config (``datasets.<name>.sha256``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Polarity = Literal["white_blurred", "white_sharp"]
Kind = Literal["binary", "continuous", "depth", "sharp", "unlabeled"]


class UnknownNameError(KeyError):
    """A name that a registry (datasets, releases) does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class UnknownDatasetError(UnknownNameError):
    """A dataset name that the registry does not know."""


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file.

    Attributes
    ----------
    url : str
        Direct download address.
    fname : str
        Local file name under the download folder.
    sha256 : str or None
        Expected sha256 (hex), or None when nobody publishes one.
    size : int or None
        Size in bytes when known (informational; pooch verifies the hash, not the size).
    unpack : bool
        Whether the file is a zip/tar archive to extract into the dataset root.
    verified : bool
        False when ``sha256`` comes from a secondary source that was not checked here.
    """

    url: str
    fname: str
    sha256: str | None = None
    size: int | None = None
    unpack: bool = True
    verified: bool = True


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: citation, files to fetch and how its labels read.

    ``files`` is empty for datasets that cannot be fetched unattended (login, cloud drives
    with confirmation pages); those need ``datasets.<name>.root`` in config.
    ``gt_polarity`` says what white means in the source GT masks (None: no binary GT).
    """

    name: str
    title: str
    citation: str
    page: str
    files: tuple[RemoteFile, ...]
    gt_polarity: Polarity | None
    kind: Kind
    split_source: str
    notes: str = ""
    mirrors: tuple[str, ...] = field(default_factory=tuple)
    #: the registry dataset whose download (or ``root``) this one reads a part of ("": none)
    part_of: str = ""

    @property
    def downloadable(self) -> bool:
        """True when the files can be fetched without a login or a manual step."""
        return bool(self.files)

    @property
    def total_size(self) -> int | None:
        """Sum of the known file sizes, or None if any is unknown."""
        sizes = [f.size for f in self.files]
        return None if not sizes or any(s is None for s in sizes) else sum(sizes)

    @property
    def checksum_status(self) -> str:
        """``pinned``, ``unverified`` (from a secondary source), ``partial`` (some files only,
        possibly ``partial, unverified``), ``none`` or ``n/a`` (nothing to download)."""
        if not self.files:
            return "n/a"
        known = [f for f in self.files if f.sha256]
        if not known:
            return "none"
        unverified = any(not f.verified for f in known)
        if len(known) < len(self.files):
            return "partial, unverified" if unverified else "partial"
        return "unverified" if unverified else "pinned"


# Middlebury 2014: the 23 scenes with public ground truth (10 training + 13 additional),
# each as "<Scene>-perfect.zip" (DATASETS.md section 8; the same 23 names appear in public
# download scripts, e.g. wget lists of vision.middlebury.edu/stereo/data/scenes2014/zip/).
MIDDLEBURY2014_SCENES = (
    "Adirondack",
    "Backpack",
    "Bicycle1",
    "Cable",
    "Classroom1",
    "Couch",
    "Flowers",
    "Jadeplant",
    "Mask",
    "Motorcycle",
    "Piano",
    "Pipes",
    "Playroom",
    "Playtable",
    "Recycle",
    "Shelves",
    "Shopvac",
    "Sticks",
    "Storage",
    "Sword1",
    "Sword2",
    "Umbrella",
    "Vintage",
)
MIDDLEBURY2014_BASE = "https://vision.middlebury.edu/stereo/data/scenes2014/zip/"
# DATASETS.md section 8 (R): "one public note gives" this sha256; not checked here.
_ADIRONDACK_SHA256 = "df1d9fdde1780dcba9b045898324226132405b33ad1d3fde399d2ce4b619c85a"

CUHK_BASE = "http://www.cse.cuhk.edu.hk/leojia/projects/dblurdetect/data/"


def _middlebury_files() -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(
            url=f"{MIDDLEBURY2014_BASE}{scene}-perfect.zip",
            fname=f"{scene}-perfect.zip",
            sha256=_ADIRONDACK_SHA256 if scene == "Adirondack" else None,
            verified=scene != "Adirondack",
        )
        for scene in MIDDLEBURY2014_SCENES
    )


REGISTRY: dict[str, DatasetSpec] = {
    "cuhk": DatasetSpec(
        name="cuhk",
        title="CUHK blur detection dataset (1000 images: 296 motion, 704 defocus)",
        citation="Shi, Xu, Jia. Discriminative Blur Detection Features. CVPR 2014.",
        page="http://www.cse.cuhk.edu.hk/~leojia/projects/dblurdetect/dataset.html",
        # DATASETS.md section 1 (R): both archives from a public download script; they unzip
        # to image/ and gt/.
        files=(
            RemoteFile(CUHK_BASE + "BlurDatasetImage.zip", "BlurDatasetImage.zip"),
            RemoteFile(CUHK_BASE + "BlurDatasetGT.zip", "BlurDatasetGT.zip"),
        ),
        gt_polarity="white_blurred",  # section 1 (V): white = blurred, checked by eye
        kind="binary",
        split_source=(
            "BTBNet 604/100 split of the 704 out_of_focus images: 100 test names shipped in "
            "datasets/splits/cuhk_btbnet_test.txt, from yuxinjin-whu/D-DFFNet split.txt @ "
            "e542850c02dac68be988917465c665cf341123c5 (DATASETS.md section 3)"
        ),
        notes=(
            "Some image names end in upper-case .JPG; GT is <id>.png (lower case). Only "
            "out_of_focus* images are used for defocus. Kim et al. use another 800/200 split."
        ),
        mirrors=("https://www.dropbox.com/s/zxjhzuxsxh4v0cv/CUHK.zip?dl=1 (layout not checked)",),
    ),
    "dut": DatasetSpec(
        name="dut",
        title="DUT-DBD defocus blur detection dataset (600 train / 500 test)",
        citation=(
            "Zhao, Zhao, Lu, Wang. Defocus Blur Detection via Multi-Stream Bottom-Top-Bottom "
            "Fully Convolutional Network. CVPR 2018."
        ),
        page="http://ice.dlut.edu.cn/ZhaoWenda/BTBCRLNet.html",
        # DATASETS.md section 2: hosting behind the page is not checked and the known mirror is
        # a Google Drive file (confirmation page for large files): no unattended download.
        files=(),
        # white = in focus: checked on the first author's sample masks (github wdzhao123/DENets,
        # AENet/dataset/dut500-gt/1..5.bmp: white is the sharp foreground, 21-47 % of the
        # image) and on D-DFFNet / depth-distillation, which invert CUHK but not DUT
        gt_polarity="white_sharp",
        kind="binary",
        split_source="folder names: DUT600S_Training/DUT600GT_Training and DUT500S-Testing/"
        "DUT500GT-Testing",
        notes=(
            "Download by hand from the page (or the Google Drive test-set mirror, file id "
            "1Qmcu6GDgKhiHVgLxeQg23tfy5I1Xg5Xk, used by vinthony/depth-distillation) and set "
            "datasets.dut.root. GT is .bmp with the image's stem (test images 1..500). White = in "
            "focus (checked on the authors' samples); build_manifest warns if the mean blurred "
            "fraction is < 0.5. The lab's copies named dut500-source / dut500-gt are read too."
        ),
    ),
    "rtf": DatasetSpec(
        name="rtf",
        title="RTF defocus map dataset (22 images, noise levels 0 / 1 / 1.6)",
        citation=(
            "D'Andres, Salvador, Kochale, Susstrunk. Non-Parametric Blur Map Regression for "
            "Depth of Field Extension. IEEE TIP 2016."
        ),
        page="https://github.com/codeslake/DMENet/tree/master/evaluation/RTF",
        # DATASETS.md section 4 (R): DMENet's evaluation copy; gives RTF/gt/<noise>/*.mat
        # (variable blurMap) and RTF/out/BDCS/<noise>/... (DMENet's results).
        files=(
            RemoteFile(
                "https://www.dropbox.com/s/ph9pvj5g53vea6h/RTF_our_results_gt.zip?dl=1",
                "RTF_our_results_gt.zip",
            ),
            # The author's original zip, linked from the same DMENet readme; it should hold the
            # input images, which the GT zip lacks. Layout not checked.
            RemoteFile(
                "https://www.dropbox.com/s/f2bkay9xykgmouc/Defocus_Blur_Dataset.zip?dl=1",
                "Defocus_Blur_Dataset.zip",
            ),
        ),
        gt_polarity=None,
        kind="continuous",
        split_source="all 22 images are test images (DMENet paper)",
        notes=(
            "GT blurMap is in the RTF paper's PSF scale; DMENet maps it to a Gaussian sigma "
            "with evaluation/RTF/convertion.mat (nearest match, column 2 -> column 1). The "
            "GT zip holds gt/ and out/ only; the input images come from the author's original "
            "Defocus_Blur_Dataset.zip (linked in DMENet evaluation/RTF/readme.md; layout not "
            "checked)."
        ),
    ),
    "sintel": DatasetSpec(
        name="sintel",
        title="MPI Sintel depth (training: clean images + .dpt depth)",
        citation=(
            "Butler, Wulff, Stanley, Black. A Naturalistic Open Source Movie for Optical Flow "
            "Evaluation. ECCV 2012."
        ),
        page="http://sintel.is.tue.mpg.de/depth",
        # DATASETS.md section 6 (R, many scripts).
        files=(
            RemoteFile(
                "http://files.is.tue.mpg.de/jwulff/sintel/MPI-Sintel-depth-training-20150305.zip",
                "MPI-Sintel-depth-training-20150305.zip",
            ),
            RemoteFile(
                "http://files.is.tue.mpg.de/sintel/MPI-Sintel-training_images.zip",
                "MPI-Sintel-training_images.zip",
            ),
        ),
        gt_polarity=None,
        kind="depth",
        split_source="none: all frames are source scenes for SYNDOF rendering (split train)",
        notes="training/depth/<scene>/frame_NNNN.dpt + training/clean/<scene>/frame_NNNN.png",
    ),
    "synthia": DatasetSpec(
        name="synthia",
        title="SYNTHIA-SEQS (RGB + 16-bit depth), the subset SYNDOF renders from",
        citation=(
            "Ros, Sellart, Materzynska, Vazquez, Lopez. The SYNTHIA Dataset: A Large Collection "
            "of Synthetic Images for Semantic Segmentation of Urban Scenes. CVPR 2016."
        ),
        page="http://synthia-dataset.net/downloads/",
        # DATASETS.md section 7: one archive (.rar) per sequence behind the downloads page; the
        # direct file addresses are not known, so no unattended download.
        files=(),
        gt_polarity=None,
        kind="depth",
        split_source="none: all frames are source scenes for SYNDOF rendering (split train)",
        notes=(
            "Download sequences (e.g. SYNTHIA-SEQS-01-NIGHT) by hand and set "
            "datasets.synthia.root. Layout SYNTHIA-SEQS-XX-YYY/{RGB,Depth}/Stereo_Right/Omni_F/"
            "000000.png (sequences come as .rar archives). Depth = R channel in cm (SYNDOF's "
            "generator and other SEQS readers; SYNTHIA's README not seen); 65535 = far."
        ),
    ),
    "middlebury2014": DatasetSpec(
        name="middlebury2014",
        title="Middlebury 2014 stereo, 23 scenes with GT ('perfect' rectification)",
        citation=(
            "Scharstein, Hirschmuller, Kitajima, Krathwohl, Nesic, Wang, Westling. "
            "High-Resolution Stereo Datasets with Subpixel-Accurate Ground Truth. GCPR 2014."
        ),
        page="https://vision.middlebury.edu/stereo/data/scenes2014/",
        files=_middlebury_files(),
        gt_polarity=None,
        kind="depth",
        split_source="none: all scenes are source scenes for SYNDOF rendering (split train)",
        notes=(
            "About 30-140 MB per zip (R). Only Adirondack has a sha256, from one public note, "
            "not checked here (marked unverified). depth = baseline*f/(d+doffs) from disp0.pfm "
            "at full resolution (SYNDOF's own Middlebury input was quarter-resolution, "
            "hole-filled depth)."
        ),
    ),
    "ilsvrc": DatasetSpec(
        name="ilsvrc",
        title="ILSVRC 2012 sharp images (DHDE trains on 300 random training images)",
        citation=(
            "Russakovsky et al. ImageNet Large Scale Visual Recognition Challenge. IJCV 2015; "
            "used by Park, Tai, Cho, Kweon. A Unified Approach of Multi-scale Deep and "
            "Hand-crafted Features for Defocus Estimation. CVPR 2017."
        ),
        page="https://image-net.org/download.php",
        files=(),  # image-net.org needs a login: no unattended download (DATASETS.md section 9)
        gt_polarity=None,
        kind="sharp",
        split_source="none released: sample n images with a fixed seed (split train)",
        notes=(
            "Set datasets.ilsvrc.root to a local folder of sharp natural images (e.g. an "
            "extracted ILSVRC2012_img_val.tar, md5 29b22e2961454d5413ddabcf34fc5622)."
        ),
    ),
}

# The DMENet authors' training and test data (github codeslake/DMENet README, step 3:
# datasets.zip) and its parts; readers in defocus.datasets.dmenet_release.
DMENET_RELEASE_PAGE = "https://github.com/codeslake/DMENet"
_DMENET_CITATION = (
    "Lee, Lee, Cho, Lee. Deep Defocus Map Estimation Using Domain Adaptation. CVPR 2019 "
    "(data as released with the code)."
)
REGISTRY["dmenet_release"] = DatasetSpec(
    name="dmenet_release",
    title="DMENet release data: train/{SYNDOF,CUHK,Flickr}, test/{CUHK,RTF,SYNDOF}",
    citation=_DMENET_CITATION,
    page=DMENET_RELEASE_PAGE,
    # README step 3 (Dropbox link; OneDrive in mirrors); no published digest
    files=(
        RemoteFile("https://www.dropbox.com/s/xkx1me8dvuv3xd0/datasets.zip?dl=1", "datasets.zip"),
    ),
    gt_polarity="white_blurred",  # CUHK masks: the target of Binary_Net (1 = blurred)
    kind="continuous",
    split_source="folders train/ and test/ of the release (config.py lines 37-57)",
    notes=(
        "Every part in one listing (ids prefixed syndof_, cuhk_, flickr_, rtf0_, rtf1_, "
        "rtf1_6_); training and scoring use the parts dmenet_release_{syndof,cuhk,flickr,"
        "rtf,rtf1,rtf1_6}, which read this download (or datasets.dmenet_release.root)."
    ),
    mirrors=(
        "https://onedrive.live.com/download?resid=94530B7E5F49D254%2116358"
        "&authkey=!AETJe-m59LJctQM",
    ),
)
for _part, _title, _kind, _split in (
    ("syndof", "SYNDOF as released (train + test; CoC maps, CoC/15 targets)", "continuous",
     "train/SYNDOF and test/SYNDOF"),
    ("cuhk", "CUHK as split by DMENet: 504 train / 200 test", "binary",
     "train/CUHK (504) and test/CUHK (200)"),
    ("flickr", "Flickr: unlabelled real defocused photos (DMENet's real_no_label)", "unlabeled",
     "all train (train/Flickr)"),
    ("rtf", "RTF as released by DMENet, noise 0 (test set RTF0)", "continuous", "all test"),
    ("rtf1", "RTF as released by DMENet, noise 1 (test set RTF1)", "continuous", "all test"),
    ("rtf1_6", "RTF as released by DMENet, noise 1.6 (test set RTF1_6)", "continuous",
     "all test"),
):  # fmt: skip
    REGISTRY[f"dmenet_release_{_part}"] = DatasetSpec(
        name=f"dmenet_release_{_part}",
        title=_title,
        citation=_DMENET_CITATION,
        page=DMENET_RELEASE_PAGE,
        files=(),
        gt_polarity="white_blurred" if _kind == "binary" else None,
        kind=_kind,
        split_source=_split,
        notes=(
            "A part of dmenet_release: read from its download (defocus datasets fetch "
            "dmenet_release) or datasets.dmenet_release.root."
        ),
        part_of="dmenet_release",
    )
REGISTRY["photos"] = DatasetSpec(
    name="photos",
    title="A folder of real photographs without GT (unlabelled real images)",
    citation="the user's own photographs",
    page="(a local folder)",
    files=(),
    gt_polarity=None,
    kind="unlabeled",
    split_source="all train",
    notes=(
        "Set datasets.photos.root to a folder of images (searched recursively); e.g. DMENet's "
        "real role (domain adaptation) with your own defocused photos."
    ),
)


def lookup(table: dict, name: str, what: str, error: type[Exception]):
    """``table[name]``, or ``error`` naming ``what`` was asked for and every known name (the
    dataset and release registries)."""
    try:
        return table[name]
    except KeyError:
        raise error(f"unknown {what} {name!r}; known: {', '.join(sorted(table))}") from None


def text_table(rows: list[tuple[str, ...]]) -> str:
    """Rows (the first is the header) as left-aligned plain-text columns, a rule under the
    header (``defocus datasets list``, ``defocus weights``)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` registered as ``name``."""
    return lookup(REGISTRY, name, "dataset", UnknownDatasetError)


def _fmt_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"


def list_table() -> str:
    """A plain-text table of the registry for ``defocus datasets list``.

    Columns: name, kind, number of files (``manual`` when there is no unattended download),
    total size, checksum status and GT polarity.
    """
    header = ("name", "kind", "files", "size", "checksum", "gt polarity")
    rows = [header]
    for spec in REGISTRY.values():
        rows.append(
            (
                spec.name,
                spec.kind,
                str(len(spec.files)) if spec.files else "manual",
                _fmt_size(spec.total_size) if spec.files else "-",
                spec.checksum_status,
                spec.gt_polarity or "-",
            )
        )
    return text_table(rows)
