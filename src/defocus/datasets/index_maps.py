"""Index maps: result-file names of released maps -> dataset image ids.

BTBNet/DeFusionNet-style result folders name their maps ``1.bmp`` ... ``100.bmp`` rather
than by image. An index map translates such names: ``btbnet_cuhk`` is the BTBNet CUHK test
split shipped in ``splits/cuhk_btbnet_test.txt`` (``N.bmp--<CUHK file>``, DATASETS.md
section 3); a path names a text file in the same ``<result name>--<image file>`` format.

:func:`defocus.datasets.readers.parse_split` reads the same files as a split (the image
side of each line, tolerant of lines without ``--``); :func:`read_index_map` keeps both
sides and rejects malformed or contradicting lines, since a wrong translation would score
maps against the wrong GT.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from defocus.io.maps import ExternalMapsError

#: built-in index maps (name -> file shipped in ``defocus.datasets``)
INDEX_MAPS = {"btbnet_cuhk": "splits/cuhk_btbnet_test.txt"}


def read_index_map(spec: str | os.PathLike | None) -> dict[str, str]:
    """Result-file stem -> image id stem, both lower-cased.

    Parameters
    ----------
    spec : None, ``"btbnet_cuhk"`` or path
        ``None`` gives an empty mapping; a name of :data:`INDEX_MAPS` reads the file shipped
        with the package; a path reads a text file of lines ``<result name>--<image file>``
        (e.g. ``1.bmp--out_of_focus0037.jpg``; blank lines and ``#`` comments skipped).
        Extensions on either side are dropped.

    Raises
    ------
    ExternalMapsError
        If the file is missing, a line has no ``--``, or a result name appears twice.
    """
    if spec is None or spec == "":
        return {}
    if str(spec) in INDEX_MAPS:
        text = resources.files("defocus.datasets").joinpath(INDEX_MAPS[str(spec)]).read_text()
        where = f"index map {spec!r}"
    else:
        path = Path(spec)
        if not path.is_file():
            raise ExternalMapsError(
                f"index map {spec!r} is neither a built-in ({sorted(INDEX_MAPS)}) nor a file"
            )
        text = path.read_text()
        where = f"index map {path}"
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "--" not in line:
            raise ExternalMapsError(
                f"{where}, line {n}: expected '<result name>--<image file>', got {raw!r}"
            )
        left, right = (s.strip() for s in line.split("--", 1))
        key, value = Path(left).stem.lower(), Path(right).stem.lower()
        if not key or not value:
            raise ExternalMapsError(f"{where}, line {n}: empty name in {raw!r}")
        if key in out and out[key] != value:
            raise ExternalMapsError(f"{where}: result name {left!r} appears twice (line {n})")
        out[key] = value
    return out
