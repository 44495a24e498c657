"""defocus-bench: defocus blur detection and defocus map estimation, reproduced.

The package is importable without Snakemake; the workflow in ``workflow/`` calls it.
Conventions used everywhere (see ``ARCHITECTURE.md`` of the project):

* images are RGB ``uint8`` arrays of shape ``(H, W, 3)``;
* a *blur map* is ``float32`` ``(H, W)`` in ``[0, 1]`` with **1 = out of focus (blurred)**;
* physical defocus maps (Gaussian sigma or circle of confusion) are in pixels.
"""

__version__ = "0.1.0"
