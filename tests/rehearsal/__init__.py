"""Miniatures of every real input of config/paper.yaml, built at test time.

Each builder writes a few tiny files in the layout, names and formats of the real download
(facts from /work/shared/DATASETS.md and src/defocus/datasets/registry.py), packs them as the
real archives and says where a local HTTP server must serve them. Nothing here is committed as
data: the tests call :func:`build_all` in a temporary folder.
"""

from rehearsal.builders import Miniatures, build_all

__all__ = ["Miniatures", "build_all"]
