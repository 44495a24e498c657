"""Datasets: the registry (what and where), verified downloads, and readers that normalise
each source layout into the manifest contract of :mod:`defocus.io.manifest`.

Facts about every dataset are cited from ``/work/shared/DATASETS.md``.
"""

from defocus.datasets.download import DatasetRootError, DownloadError, ensure_dataset, fetch
from defocus.datasets.readers import DatasetLayoutError, PolarityWarning, build_manifest
from defocus.datasets.registry import REGISTRY, DatasetSpec, RemoteFile, get_spec, list_table

__all__ = [
    "REGISTRY",
    "DatasetLayoutError",
    "DatasetRootError",
    "DatasetSpec",
    "DownloadError",
    "PolarityWarning",
    "RemoteFile",
    "build_manifest",
    "ensure_dataset",
    "fetch",
    "get_spec",
    "list_table",
]
