"""One SYNDOF sample: sample a camera, render, and produce the labels (Lee et al. CVPR'19)."""

from __future__ import annotations

import numpy as np

from defocus.render.layered import render_layered
from defocus.render.physics import coc_px, quantize_coc, sample_camera, sigma_from_coc


def render_sample(
    image_uint8: np.ndarray,
    depth_m: np.ndarray,
    rng: np.random.Generator,
    backend: str = "numpy",
    device=None,
    binary_coc_px: float = 1.0,
    fill: str = "regionfill",
    **camera_overrides,
) -> dict:
    """Render one defocused image and its labels from a sharp image and metric depth.

    Parameters
    ----------
    image_uint8 : numpy.ndarray
        ``(H, W, 3)`` sharp RGB image.
    depth_m : numpy.ndarray
        ``(H, W)`` finite depth in metres (times ``depth_scale`` if given).
    rng : numpy.random.Generator
        The only source of randomness.
    backend, device
        Renderer backend (``"numpy"`` or ``"torch"``) and torch device.
    binary_coc_px : float
        The binary label is ``CoC > binary_coc_px``; 1 px in the SYNDOF generator (a CoC of
        at most one pixel is sharp). Larger values label only visible blur as blurred.
    fill : {"regionfill", "normalized"}
        Background fill under blurred layers in front of the focal plane, see
        :mod:`defocus.render.layered` (default: the generator's ``regionfill``).
    **camera_overrides
        Keyword arguments of :func:`defocus.render.physics.sample_camera` (e.g.
        ``focal_length_mm``, ``f_number``, ``focus_m``, ``max_coc_px``, ``sigma_formula``,
        ``min_layers``, ``max_layers``, ``depth_scale``, ``kernel_radius_px``).

    Returns
    -------
    dict
        ``blurred`` uint8 RGB, ``sigma`` float32 px (Gaussian sigma of the layer each pixel
        belongs to), ``coc`` float32 px (quantised CoC), ``binary`` bool (CoC > 1 px =
        blurred, generator ``get_blur_map``), ``depth`` float32 m (after scale and shift),
        ``params`` JSON-serialisable camera parameters.
    """
    image = np.asarray(image_uint8)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an RGB uint8 image (H, W, 3), got dtype {image.dtype} shape {image.shape}"
        )
    depth = np.asarray(depth_m, dtype=np.float64)
    if depth.shape != image.shape[:2]:
        raise ValueError(f"depth shape {depth.shape} differs from image shape {image.shape[:2]}")
    width_px = image.shape[1]
    params = sample_camera(depth, width_px, rng, **camera_overrides)
    depth_used = depth * params["depth_scale"] + params["depth_shift_m"]
    coc = quantize_coc(
        coc_px(
            depth_used,
            params["focus_m"],
            params["focal_length_mm"],
            params["f_number"],
            width_px,
            params["sensor_width_mm"],
        )
    )
    out = render_layered(
        image.astype(np.float32) / 255.0,
        coc,
        depth_m=depth_used,
        sigma_formula=params["sigma_formula"],
        backend=backend,
        device=None if device is None else device,
        kernel_radius_px=params["kernel_radius_px"],
        fill=fill,
    )
    blurred = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
    params = dict(params, backend=backend, binary_coc_px=float(binary_coc_px), fill=fill)
    return {
        "blurred": blurred,
        "sigma": sigma_from_coc(coc, params["sigma_formula"]).astype(np.float32),
        "coc": coc.astype(np.float32),
        "binary": coc > float(binary_coc_px),
        "depth": depth_used.astype(np.float32),
        "params": params,
    }
