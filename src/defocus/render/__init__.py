"""SYNDOF-style thin-lens defocus rendering (Lee et al. CVPR'19, Sec. 3).

Submodules: :mod:`~defocus.render.physics` (CoC, camera sampling), :mod:`~defocus.render.layered`
(layered blur and compositing; its parts :mod:`~defocus.render.layers`,
:mod:`~defocus.render.footprint`, :mod:`~defocus.render.regionfill` and
:mod:`~defocus.render.backends`, numpy/OpenCV and torch), :mod:`~defocus.render.syndof`
(one labelled sample), :mod:`~defocus.render.scenes` (embedded demo scenes),
:mod:`~defocus.render.build` (dataset builder), :mod:`~defocus.render.cli` (``defocus render``)
and :mod:`~defocus.render.figures`. Torch, SciPy and matplotlib are imported only where used.
"""

from defocus.render.layered import render_layered, render_reference
from defocus.render.physics import coc_px, f_number_for_max_coc, sample_camera, sigma_from_coc
from defocus.render.syndof import render_sample

__all__ = [
    "coc_px",
    "f_number_for_max_coc",
    "render_layered",
    "render_reference",
    "render_sample",
    "sample_camera",
    "sigma_from_coc",
]
