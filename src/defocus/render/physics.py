"""Thin-lens circle of confusion and SYNDOF camera sampling (Lee et al. CVPR'19, Sec. 3).

All functions are vectorised and unit-explicit: depths in metres, lens quantities in
millimetres, CoC and Gaussian sigma in pixels of the rendered image.

Constants come from the authors' public MATLAB generator (github.com/codeslake/SYNDOF,
``blur_by_depth.m``, function ``get_cocs``) unless stated otherwise:

* focal lengths {50, 70, 85} mm drawn with weights [0.1, 0.4, 0.4] (normalised here);
* depths shifted so that the nearest point is at least 5 focal lengths away;
* sensor width 36 mm, so ``px_per_mm = width_px / 36``;
* CoC quantised to 0.1 px (``int64(coc * 10) / 10``, i.e. rounding half away from zero);
* the f-number is solved so that the extreme depth reaches exactly ``max_coc`` px (29);
* 200-350 distinct layers, the camera re-sampled up to 20 times otherwise.
"""

from __future__ import annotations

import numpy as np

#: Focal lengths (mm) and their sampling weights (SYNDOF generator ``get_cocs``).
FOCAL_LENGTHS_MM = (50.0, 70.0, 85.0)
FOCAL_LENGTH_WEIGHTS = (0.1, 0.4, 0.4)
#: Nearest depth must be >= this many focal lengths (generator ``depth_scale_factor = 5.0``).
MIN_DEPTH_IN_FOCAL_LENGTHS = 5.0
#: Full-frame sensor width in mm (generator ``sensor_size = 36``).
SENSOR_WIDTH_MM = 36.0
#: Largest CoC in px reached by the extreme depth (generator default call uses 29;
#: the DMENet paper, Sec. 3, states c_max = 28).
MAX_COC_PX = 29.0
#: CoC quantisation step in px (generator ``compute_coc``: ``int64(cocs * 10) / 10``).
COC_STEP_PX = 0.1
#: The generator's ``epsilon = 0.0001`` in depth units (mm: ``generate_blur_by_depth.m``
#: l. 46-50 scales metres by 1000), added to the object distance in the CoC denominator
#: (``blur_by_depth.m`` l. 116-117) and to ``z_f - F`` in the image distance (l. 152, 172).
GENERATOR_EPSILON_MM = 1e-4
#: Layer count bounds and re-sampling budget (generator ``blur_by_depth``: 200, 350, 20).
#: The defaults here are permissive so that the few-plane demo scenes are accepted.
MIN_LAYERS = 1
MAX_LAYERS = 350
MAX_RESAMPLES = 20

SIGMA_FORMULAS = ("generator", "paper")
APERTURE_MODES = ("generator", "paper")


#: Accepted f-numbers of a user-given camera (``defocus render --f-number``): no photographic
#: lens is faster than about f/0.7 (Zeiss Planar 50 mm f/0.7), large-format lenses stop down
#: to f/64-f/128; values outside are typing errors (f/1e-9 gives a sigma of 3.6e9 px).
F_NUMBER_RANGE = (0.5, 256.0)
#: Accepted focal lengths (mm): phone lenses (~2 mm) to super-telephoto (~2000 mm), with room.
FOCAL_LENGTH_RANGE_MM = (1.0, 5000.0)


def check_camera(focal_length_mm: float | None = None, f_number: float | None = None) -> None:
    """Raise ``ValueError`` naming the value and its accepted range when a user-given focal
    length or f-number is not that of a real lens (see :data:`F_NUMBER_RANGE`,
    :data:`FOCAL_LENGTH_RANGE_MM`); ``None`` (sampled) is always accepted."""
    for name, value, (lo, hi), unit in (
        ("focal length", focal_length_mm, FOCAL_LENGTH_RANGE_MM, " mm"),
        ("f-number", f_number, F_NUMBER_RANGE, ""),
    ):
        if value is None:
            continue
        if not np.isfinite(value) or not lo <= value <= hi:
            raise ValueError(
                f"{name} {value!r}{unit} is not that of a real lens; use {lo:g}-{hi:g}{unit}"
            )


def check_depth(depth_m: np.ndarray, source: str = "depth") -> None:
    """Raise ``ValueError`` naming ``source`` when a depth map has finite values <= 0 or no
    finite value at all (readers mark unknown pixels ``nan``; those are filled later)."""
    d = np.asarray(depth_m, dtype=np.float64)
    finite = np.isfinite(d)
    if not finite.any():
        raise ValueError(f"{source} has no finite depth value; depths are metres > 0")
    bad = finite & (d <= 0)
    if bad.any():
        raise ValueError(
            f"{source} has {int(bad.sum())} pixel(s) with depth <= 0 (minimum "
            f"{float(d[finite].min()):g}); depths must be > 0 metres (mark unknown pixels NaN, "
            "scale units with --depth-scale)"
        )


def _check_positive(name: str, value) -> None:
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def coc_px(
    depth_m,
    focus_m: float,
    focal_length_mm: float,
    f_number: float,
    width_px: int,
    sensor_width_mm: float = SENSOR_WIDTH_MM,
    epsilon_mm: float = GENERATOR_EPSILON_MM,
) -> np.ndarray:
    """Thin-lens circle-of-confusion diameter in pixels (not quantised).

    ``c(z) = (W / S) * (z_v / z_f) * A * |z - z_f| / (z + eps)`` with the image-space focal
    distance ``z_v = F z_f / (z_f - F + eps)`` and aperture diameter ``A = F / N``
    (DMENet paper Sec. 3 "Thin lens model"; generator ``compute_coc`` and ``get_cocs``,
    ``blur_by_depth.m`` l. 115-121, 172-194). ``eps`` is the generator's 1e-4 mm
    (:data:`GENERATOR_EPSILON_MM`); it moves a CoC by ~1e-8 relative, which decides the
    0.1 px rounding step of a CoC that lies on a half step. ``epsilon_mm=0`` gives the
    textbook formula.

    Parameters
    ----------
    depth_m : array_like
        Object distances in metres, all > focal length.
    focus_m : float
        Focal (in-focus) distance in metres, > focal length.
    focal_length_mm : float
        Lens focal length F in mm.
    f_number : float
        Aperture number N (A = F / N).
    width_px : int
        Image width in pixels (the sensor width maps onto it).
    sensor_width_mm : float
        Sensor width S in mm (36 mm full frame, generator).
    epsilon_mm : float
        The generator's rounding offset (mm) in both denominators; 0 = none.

    Returns
    -------
    numpy.ndarray
        CoC diameter in pixels, float64, same shape as ``depth_m``.
    """
    for name, v in (
        ("focus_m", focus_m),
        ("focal_length_mm", focal_length_mm),
        ("f_number", f_number),
        ("width_px", width_px),
        ("sensor_width_mm", sensor_width_mm),
    ):
        _check_positive(name, v)
    z_mm = np.asarray(depth_m, dtype=np.float64) * 1000.0
    zf_mm = float(focus_m) * 1000.0
    f_mm = float(focal_length_mm)
    if zf_mm <= f_mm:
        raise ValueError(
            f"focus distance must exceed the focal length: got focus_m={focus_m} "
            f"and focal_length_mm={focal_length_mm}"
        )
    if z_mm.size and np.nanmin(z_mm) <= 0:
        raise ValueError(f"depths must be > 0 m, got minimum {np.nanmin(z_mm) / 1000.0}")
    eps = float(epsilon_mm)
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"epsilon_mm must be finite and >= 0, got {epsilon_mm!r}")
    zv_mm = f_mm * zf_mm / (zf_mm - f_mm + eps)
    aperture_mm = f_mm / float(f_number)
    px_per_mm = float(width_px) / float(sensor_width_mm)
    return px_per_mm * (zv_mm / zf_mm) * aperture_mm * np.abs(z_mm - zf_mm) / (z_mm + eps)


def quantize_coc(coc, step_px: float = COC_STEP_PX) -> np.ndarray:
    """Round CoC to ``step_px`` (0.1 px), half away from zero, as MATLAB ``int64`` does."""
    c = np.asarray(coc, dtype=np.float64)
    return np.floor(c / step_px + 0.5) * step_px


def sigma_from_coc(coc_px, formula: str = "generator") -> np.ndarray:
    """Gaussian sigma (px) of the defocus kernel for a CoC diameter (px).

    ``"generator"``: ``sigma = (c - 1) / 4`` (SYNDOF ``get_blur_kernel`` and ``get_blur_map``);
    ``"paper"``: ``sigma = c / 4`` (DMENet paper Sec. 3, "sigma(x) = c(x)/4 empirically").
    In both, ``c <= 1`` px is left sharp (sigma 0), as the generator does not blur it.
    """
    if formula not in SIGMA_FORMULAS:
        raise ValueError(f"sigma_formula must be one of {SIGMA_FORMULAS}, got {formula!r}")
    c = np.asarray(coc_px, dtype=np.float64)
    s = (c - 1.0) / 4.0 if formula == "generator" else c / 4.0
    return np.where(c > 1.0, s, 0.0)


def f_number_for_max_coc(
    depth_extreme_m: float,
    focus_m: float,
    focal_length_mm: float,
    width_px: int,
    max_coc_px: float = MAX_COC_PX,
    sensor_width_mm: float = SENSOR_WIDTH_MM,
) -> float:
    """f-number N at which a point at ``depth_extreme_m`` has a CoC of exactly ``max_coc_px``.

    Inverts :func:`coc_px` without its rounding offset, as the generator does:
    ``N = F^2 / (z_f - F) * (W / S) / c_max * |z - z_f| / z`` (generator ``get_cocs``,
    "(A)perture" block, ``blur_by_depth.m`` l. 186-191, which has no ``epsilon``; the
    offsets of :func:`coc_px` then put the extreme CoC ~1e-8 relative below ``c_max``).
    Equivalent to the paper's upper bound alpha_up on the lumped parameter alpha.
    """
    _check_positive("max_coc_px", max_coc_px)
    unit = coc_px(
        depth_extreme_m, focus_m, focal_length_mm, 1.0, width_px, sensor_width_mm, epsilon_mm=0.0
    )
    unit = float(unit)
    if unit <= 0:
        raise ValueError(
            f"the extreme depth {depth_extreme_m} m equals the focus distance {focus_m} m; "
            "no f-number gives it a non-zero CoC"
        )
    return unit / float(max_coc_px)


def focus_index_weights(n: int) -> np.ndarray:
    """Weights over ``n`` unique depths sorted far-to-near for drawing the focal distance.

    The generator draws 10 000 samples from N(n, (n/2)^2), histograms them into 2n bins
    and keeps the first n bins (``get_cocs``), which favours near depths. This is the
    noise-free version of that histogram: 2n bins of width 2 over mean +/- 4 sd
    (``[-n, 3n]``), weight = Gaussian density at the centre of each of the first n bins.
    """
    if n < 1:
        raise ValueError(f"need at least one depth to focus on, got n={n}")
    centres = -float(n) + 2.0 * np.arange(n) + 1.0
    sd = max(n / 2.0, 1e-9)
    w = np.exp(-0.5 * ((centres - n) / sd) ** 2)
    return w / w.sum()


def sample_camera(
    depth_m: np.ndarray,
    width_px: int,
    rng: np.random.Generator,
    *,
    focal_lengths_mm=FOCAL_LENGTHS_MM,
    focal_length_weights=FOCAL_LENGTH_WEIGHTS,
    focal_length_mm: float | None = None,
    focus_m: float | None = None,
    f_number: float | None = None,
    max_coc_px: float = MAX_COC_PX,
    aperture_mode: str = "generator",
    depth_scale: float = 1.0,
    min_depth_in_focal_lengths: float = MIN_DEPTH_IN_FOCAL_LENGTHS,
    sensor_width_mm: float = SENSOR_WIDTH_MM,
    min_layers: int = MIN_LAYERS,
    max_layers: int = MAX_LAYERS,
    max_resamples: int = MAX_RESAMPLES,
    sigma_formula: str = "generator",
    kernel_radius_px: int | str | None = "generator",
) -> dict:
    """Draw SYNDOF camera parameters for one scene.

    Parameters
    ----------
    depth_m : numpy.ndarray
        ``(H, W)`` finite depth map in metres (before ``depth_scale``).
    width_px : int
        Width of the image the CoC is expressed in.
    rng : numpy.random.Generator
        Source of randomness (the only one used).
    focal_lengths_mm, focal_length_weights
        Candidate focal lengths and weights (generator: {50, 70, 85}, [0.1, 0.4, 0.4]).
    focal_length_mm, focus_m, f_number : float, optional
        Fixed values instead of sampled ones (``focus_m`` in the units of ``depth_m``; it gets
        the same ``depth_scale`` and near-depth shift as the depth map).
    max_coc_px : float
        CoC (px) of the extreme depth when ``f_number`` is not fixed (generator 29).
    aperture_mode : {"generator", "paper"}
        ``"generator"`` solves N so the extreme depth reaches ``max_coc_px`` exactly;
        ``"paper"`` samples alpha uniformly in (0, alpha_up] (DMENet Sec. 3), i.e. the
        extreme CoC is ``u * max_coc_px`` with ``u ~ U(0, 1]``.
    depth_scale : float
        Multiplier bringing the source depth to metres (per source; 1 for metric depth).
    min_depth_in_focal_lengths : float
        Depths are shifted so that the nearest is at least this many focal lengths (5).
    min_layers, max_layers, max_resamples : int
        Camera re-sampled while the layer count is outside the bounds, at most
        ``max_resamples`` times; the last draw is kept then (as the generator does).
    sigma_formula : {"generator", "paper"}
        Recorded for the renderer, see :func:`sigma_from_coc`.
    kernel_radius_px : int, "generator" or None
        Gaussian window radius. ``"generator"`` (default) = the generator's fixed window of
        ``max_coc`` x ``max_coc`` px (``fspecial('gaussian', [max_coc max_coc], s)``),
        i.e. radius ``floor(max_coc / 2)``; ``None`` = ``ceil(3 sigma)`` per layer.

    Returns
    -------
    dict
        JSON-serialisable parameters: ``focal_length_mm, focus_m, f_number, aperture_mm,
        max_coc_px, sensor_width_mm, width_px, depth_scale, depth_shift_m, n_layers,
        n_draws, focus_fraction, sigma_formula, kernel_radius_px, aperture_mode``.
    """
    if sigma_formula not in SIGMA_FORMULAS:
        raise ValueError(f"sigma_formula must be one of {SIGMA_FORMULAS}, got {sigma_formula!r}")
    if aperture_mode not in APERTURE_MODES:
        raise ValueError(f"aperture_mode must be one of {APERTURE_MODES}, got {aperture_mode!r}")
    depth = np.asarray(depth_m, dtype=np.float64)
    if depth.ndim != 2 or depth.size == 0:
        raise ValueError(f"depth_m must be a non-empty HxW array, got shape {depth.shape}")
    if not np.all(np.isfinite(depth)):
        raise ValueError("depth_m contains NaN or inf; fill invalid depths before rendering")
    _check_positive("depth_scale", depth_scale)
    _check_positive("max_coc_px", max_coc_px)
    if min_layers > max_layers:
        raise ValueError(f"min_layers ({min_layers}) must be <= max_layers ({max_layers})")
    weights = np.asarray(focal_length_weights, dtype=np.float64)
    fls = np.asarray(focal_lengths_mm, dtype=np.float64)
    if weights.shape != fls.shape or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"focal_length_weights {list(weights)} must be >= 0, not all 0, and match "
            f"focal_lengths_mm {list(fls)}"
        )
    weights = weights / weights.sum()
    depth = depth * float(depth_scale)

    params: dict = {}
    for draw in range(max(int(max_resamples), 0) + 1):
        f_mm = (
            float(focal_length_mm)
            if focal_length_mm is not None
            else float(rng.choice(fls, p=weights))
        )
        min_depth_m = min_depth_in_focal_lengths * f_mm / 1000.0
        shift_m = 0.0
        if depth.min() < min_depth_m:
            shift_m = min_depth_m - float(depth.min())
        d = depth + shift_m
        uniq = np.unique(d)[::-1]  # far to near, as the generator
        if focus_m is not None:  # given in source units: same scale and shift as the depth
            zf = float(focus_m) * float(depth_scale) + shift_m
        else:
            zf = float(uniq[rng.choice(len(uniq), p=focus_index_weights(len(uniq)))])
        if zf * 1000.0 <= f_mm:
            raise ValueError(f"focus_m={zf} must exceed the focal length {f_mm} mm")
        if f_number is not None:
            n = float(f_number)
            target = None
        else:
            far, near = float(uniq[0]), float(uniq[-1])
            c_far = coc_px(far, zf, f_mm, 1.0, width_px, sensor_width_mm)
            c_near = coc_px(near, zf, f_mm, 1.0, width_px, sensor_width_mm)
            extreme = far if c_far > c_near else near
            target = float(max_coc_px)
            if aperture_mode == "paper":
                target *= float(1.0 - rng.random())  # u in (0, 1]
            if extreme == zf:  # single-depth scene focused on itself: any N; take f/1
                n = 1.0
            else:
                n = f_number_for_max_coc(extreme, zf, f_mm, width_px, target, sensor_width_mm)
        coc_q = quantize_coc(coc_px(uniq, zf, f_mm, n, width_px, sensor_width_mm))
        # layers: runs of adjacent depths with equal CoC (generator ``adjacent_unique``)
        layer_coc = coc_q[np.concatenate([[True], np.diff(coc_q) != 0])]
        n_layers = len(layer_coc)
        zero = np.flatnonzero(layer_coc == 0)
        params = {
            "focal_length_mm": f_mm,
            "focus_m": zf,
            "f_number": float(n),
            "aperture_mm": float(f_mm / n),
            "max_coc_px": float(max_coc_px),
            "extreme_coc_target_px": target,
            "aperture_mode": aperture_mode,
            "sensor_width_mm": float(sensor_width_mm),
            "width_px": int(width_px),
            "depth_scale": float(depth_scale),
            "depth_shift_m": float(shift_m),
            "n_layers": n_layers,
            "n_draws": draw + 1,
            # generator camera_params(2), blur_by_depth.m l. 195-201: 1 - (1-based index of
            # the first zero-CoC layer, far to near) / #layers, on the merged layers
            "focus_fraction": float(1.0 - (zero[0] + 1) / n_layers) if zero.size else None,
            "sigma_formula": sigma_formula,
            "kernel_radius_px": (
                int(max_coc_px) // 2 if kernel_radius_px == "generator" else kernel_radius_px
            ),
        }
        if min_layers <= n_layers <= max_layers:
            break
    return params
