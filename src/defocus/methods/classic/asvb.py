"""Analyzing spatially-varying blur (``asvb``).

A. Chakrabarti, T. Zickler, W. T. Freeman, "Analyzing spatially-varying blur", CVPR 2010,
pp. 2512-2519.

Chakrabarti et al. score candidate blur kernels at every pixel with a *local Fourier
likelihood*: the image is filtered by derivative filters, and the windowed Fourier
coefficients of a filtered blurred window are modelled as independent complex Gaussians
whose variance is the kernel's transfer function times a latent scale drawn from a
Gaussian scale mixture (GSM) prior on sharp-image derivatives, plus noise. For filter f,
candidate kernel k and window w (paper Sec. 3):

    L(omega) ~ CN(0, v_jk(omega)),   v_jk = ||w||^2 (z_j |K_k(omega)|^2 + s_n^2 |F(omega)|^2)
    log p(y | k) = sum_f log sum_j pi_j prod_omega CN(L_f(omega); 0, v_jk(omega)).

We replace the two wide-window gains ``||w||^2 |K|^2`` and ``||w||^2 |F|^2`` by their exact
values for our truncated Gaussian window (see :func:`coefficient_gains`): without that,
window leakage at the frequencies a blur removes makes large candidates look impossible.

The windowed coefficients are computed for all pixels at once by separable complex
(Gabor-like) filtering, and the log-likelihoods for all (j, k) by one matrix product of
the coefficient energies ``|L|^2`` with ``1 / v``.

Segmentation (paper Sec. 4): pixels are labelled sharp (best kernel with sigma <=
``sharp_sigma``) or blurred (any larger candidate) with a two-label MRF whose unary is the
log-likelihood ratio of the best blurred and best sharp candidates (per coefficient,
divided by the number of coefficients), and whose pairwise term is a Potts penalty
``beta`` on 4-neighbours. **The paper solves it with graph cuts; we run damped mean field**
(vectorised, ``mf_iters`` sweeps) and return the blurred marginal, which is the blur map.

Candidates are Gaussian kernels (the project's defocus model); the paper's defocus
candidates are discs. The GSM scales are a log-spaced grid with uniform weights (the paper
fits its GSM to natural images; our grid spans the derivative variances of 8-bit photos).
All numeric constants below are our choices unless marked.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import cv2
import numpy as np

from defocus.methods.base import Method, check_image
from defocus.methods.classic._common import check_positive, grid_to_full, to_gray

#: derivative filters applied before the local Fourier analysis (horizontal, vertical)
_DERIVS = ("x", "y")


def frequency_grid(n: int) -> np.ndarray:
    """Half-plane frequencies ``2 pi (u, v) / (2 n)`` without DC, ``(M, 2)`` as (wy, wx).

    ``u`` in 0..n, ``v`` in -n+1..n, keeping one of each +-omega pair (the other carries
    the conjugate coefficient of a real signal): ``M = 2 n^2 + 1``.
    """
    if int(n) < 1:
        raise ValueError(f"n_freq must be a positive integer, got {n!r}")
    step = np.pi / int(n)
    out = []
    for uy in range(0, int(n) + 1):
        for ux in range(-int(n) + 1, int(n) + 1):
            if uy == 0 and ux <= 0:
                continue
            if uy == int(n) and ux < 0:
                continue
            out.append((uy * step, ux * step))
    return np.asarray(out, dtype=np.float64)


def window_coefficients(
    r: np.ndarray, freqs: np.ndarray, win_sigma: float, stride: int = 1
) -> np.ndarray:
    """Gaussian-windowed Fourier coefficients of ``r`` at every pixel: (H', W', M) complex.

    ``L(p, omega) = sum_n w(n - p) r(n) exp(-i omega . (n - p))`` with ``w`` a Gaussian of
    sigma ``win_sigma`` truncated at 3 sigma; computed with separable complex filters.
    """
    rad = int(np.ceil(3 * win_sigma))
    t = np.arange(-rad, rad + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / win_sigma) ** 2)
    r = np.ascontiguousarray(r, dtype=np.float32)
    out = []
    for wy, wx in freqs:
        # correlation with w(t) exp(-i w t) per axis; the 2-D kernel is their outer product
        ky = [(w * np.cos(wy * t)).astype(np.float32), (-w * np.sin(wy * t)).astype(np.float32)]
        kx = [(w * np.cos(wx * t)).astype(np.float32), (-w * np.sin(wx * t)).astype(np.float32)]

        def sep(a, b, kx=kx, ky=ky):
            return cv2.sepFilter2D(r, cv2.CV_32F, kx[a], ky[b], borderType=cv2.BORDER_REFLECT)

        re = sep(0, 0) - sep(1, 1)
        im = sep(1, 0) + sep(0, 1)
        out.append((re + 1j * im)[::stride, ::stride])
    return np.stack(out, axis=-1)


def _derivative(gray: np.ndarray, axis: str) -> np.ndarray:
    k = np.array([[-1.0, 1.0]], dtype=np.float32)
    k = k if axis == "x" else k.T
    return cv2.filter2D(gray, cv2.CV_32F, k, anchor=(0, 0), borderType=cv2.BORDER_REFLECT)


def _window_kernel(freq: tuple[float, float], win_sigma: float) -> np.ndarray:
    """2-D complex analysis kernel ``w(n) exp(-i omega . n)`` of :func:`window_coefficients`."""
    rad = int(np.ceil(3 * win_sigma))
    t = np.arange(-rad, rad + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / win_sigma) ** 2)
    gy = w * np.exp(-1j * freq[0] * t)
    gx = w * np.exp(-1j * freq[1] * t)
    return gy[:, None] * gx[None, :]


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 2-D Gaussian kernel of std ``sigma`` (a delta for sigma 0), 4-sigma support."""
    if float(sigma) <= 0:
        return np.ones((1, 1))
    r = int(np.ceil(4 * float(sigma)))
    t = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (t / float(sigma)) ** 2)
    g /= g.sum()
    return g[:, None] * g[None, :]


def coefficient_gains(
    freqs: np.ndarray, sigmas: list[float], win_sigma: float, axis: str
) -> tuple[np.ndarray, np.ndarray]:
    """Exact variance gains of a windowed coefficient under white inputs.

    Returns ``signal (K, M)``: ``||k_k * g_omega||^2``, the variance of ``L(omega)`` per unit
    variance of a white latent *derivative* blurred by kernel k; and ``noise (M,)``:
    ``||d * g_omega||^2``, per unit variance of white image noise seen through the
    derivative ``d``. For wide windows these tend to ``|K(omega)|^2 ||w||^2`` and
    ``|D(omega)|^2 ||w||^2``; computing them exactly also accounts for the window's
    spectral leakage and truncation, which dominate at the frequencies blur removes.
    """
    return _gains_cached(
        tuple(map(tuple, np.asarray(freqs).tolist())),
        tuple(float(x) for x in sigmas),
        float(win_sigma),
        axis,
    )


@functools.lru_cache(maxsize=16)
def _gains_cached(
    freqs: tuple, sigmas: tuple, win_sigma: float, axis: str
) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import fftconvolve

    freqs = np.asarray(freqs)
    d = np.array([[-1.0, 1.0]]) if axis == "x" else np.array([[-1.0], [1.0]])
    signal = np.empty((len(sigmas), len(freqs)))
    noise = np.empty(len(freqs))
    for m, f in enumerate(freqs):
        g = _window_kernel((f[0], f[1]), win_sigma)
        noise[m] = (np.abs(fftconvolve(g, d)) ** 2).sum()
        for k, s in enumerate(sigmas):
            signal[k, m] = (np.abs(fftconvolve(g, gaussian_kernel(s))) ** 2).sum()
    return signal, noise


def kernel_log_likelihoods(
    gray: np.ndarray,
    sigmas: list[float],
    gsm_vars: np.ndarray,
    noise_std: float,
    win_sigma: float,
    n_freq: int,
    stride: int = 1,
) -> np.ndarray:
    """log p(window | kernel sigma_k) at every pixel of the ``stride`` grid: (H', W', K).

    Parameters
    ----------
    gray : ndarray, (H, W) in [0, 1]
    sigmas : list of float
        Candidate Gaussian kernel stds (0 = no blur).
    gsm_vars : ndarray, (J,)
        Variances of the GSM components (uniform weights) of sharp-image derivatives.
    noise_std : float
        Std of white image noise on [0, 1] intensities.
    win_sigma : float
        Std of the Gaussian analysis window (px).
    n_freq : int
        Frequency grid density (see :func:`frequency_grid`).
    """
    freqs = frequency_grid(n_freq)
    gsm_vars = np.asarray(gsm_vars, dtype=np.float64)
    log_pi = -np.log(len(gsm_vars))
    total = None
    for axis in _DERIVS:
        coef = window_coefficients(_derivative(gray, axis), freqs, win_sigma, stride)
        energy = (np.abs(coef) ** 2).astype(np.float64)  # (H', W', M)
        hp, wp, m = energy.shape
        e = energy.reshape(-1, m)
        signal, noise = coefficient_gains(freqs, sigmas, win_sigma, axis)
        per_k = []
        for k in range(len(sigmas)):
            v = gsm_vars[:, None] * signal[k][None, :] + noise_std**2 * noise[None, :]  # (J, M)
            # sum_omega log CN(L; 0, v) = -sum log(pi v) - sum |L|^2 / v
            ll = -np.log(np.pi * v).sum(axis=1)[None, :] - e @ (1.0 / v).T  # (N, J)
            mx = ll.max(axis=1, keepdims=True)
            per_k.append(mx[:, 0] + np.log(np.exp(ll - mx).sum(axis=1)) + log_pi)
        lk = np.stack(per_k, axis=1).reshape(hp, wp, len(sigmas))
        total = lk if total is None else total + lk
    return total


def _neighbour_sum(m: np.ndarray) -> np.ndarray:
    kernel = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32)
    return cv2.filter2D(m, -1, kernel, borderType=cv2.BORDER_CONSTANT)


def potts_mean_field(unary: np.ndarray, beta: float, iters: int, damping: float = 0.5):
    """Marginal P(label 1) of a two-label Potts MRF by damped mean field.

    ``unary`` is the log-odds of label 1 per pixel; ``beta`` the Potts penalty for unequal
    4-neighbours (its logit contribution is ``beta * E[+-1]`` per neighbour).
    """
    u = np.asarray(unary, dtype=np.float32)
    q = 1.0 / (1.0 + np.exp(-np.clip(u, -50, 50)))
    for _ in range(int(iters)):
        field = _neighbour_sum(2.0 * q - 1.0)
        q_new = 1.0 / (1.0 + np.exp(-np.clip(u + beta * field, -50, 50)))
        q = damping * q + (1.0 - damping) * q_new
    return q.astype(np.float32)


class ASVB(Method):
    """Chakrabarti, Zickler, Freeman 2010 local Fourier likelihood with an MRF segmentation.

    Parameters
    ----------
    sigmas : list of float
        Candidate Gaussian kernel stds in px (our choice: 0..4 in steps of 0.5, covering the
        CUHK defocus range).
    sharp_sigma : float
        Candidates with sigma <= this count as "sharp" (our choice: 0.5, JPEG-softened focus).
    win_sigma : float
        Std of the Gaussian analysis window (our choice: 4 px, a 25x25 support).
    n_freq : int
        Frequency grid density, spacing pi / n_freq (our choice: 4, 33 frequencies).
    gsm_min, gsm_max, gsm_n : float, float, int
        Log-spaced GSM variances of sharp derivatives on [0, 1] intensities (our choice:
        1e-6 .. 1e-1, 16 components, uniform weights).
    noise_std : float
        Image noise std on [0, 1] (our choice: 0.0011, the 8-bit quantisation noise
        1 / (255 sqrt 12); larger values let the model explain removed detail as noise and
        over-estimate sigma).
    unary_scale : float
        Multiplier of the per-coefficient log-likelihood ratio in the MRF (our choice: 4).
    beta : float
        Potts weight on 4-neighbours (our choice: 0.5).
    mf_iters : int
        Mean-field sweeps replacing the paper's graph cut (our choice: 10).
    stride : int
        Evaluate the likelihoods every ``stride`` pixels and interpolate (speed; 1 = exact).
    """

    name = "asvb"
    fidelity = {
        "implementation": "substitute",
        "differs": "Gaussian instead of disc kernels; damped mean field instead of graph cuts",
    }
    citation = "Chakrabarti, Zickler, Freeman, Analyzing spatially-varying blur, CVPR 2010"
    defaults: ClassVar[dict[str, Any]] = {
        "sigmas": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0],
        "sharp_sigma": 0.5,
        "win_sigma": 4.0,
        "n_freq": 4,
        "gsm_min": 1e-6,
        "gsm_max": 1e-1,
        "gsm_n": 16,
        "noise_std": 0.0011,
        "unary_scale": 4.0,
        "beta": 0.5,
        "mf_iters": 10,
        "stride": 2,
    }

    def _gsm(self) -> np.ndarray:
        lo = check_positive("gsm_min", self.params["gsm_min"])
        hi = check_positive("gsm_max", self.params["gsm_max"])
        n = int(self.params["gsm_n"])
        if hi <= lo or n < 1:
            raise ValueError(
                "need gsm_min < gsm_max and gsm_n >= 1, "
                f"got {lo!r}, {hi!r}, {self.params['gsm_n']!r}"
            )
        return np.geomspace(lo, hi, n)

    def log_likelihoods(self, image: np.ndarray, stride: int | None = None) -> np.ndarray:
        """(H', W', K) log-likelihood of each candidate sigma on the ``stride`` grid."""
        image = check_image(image)
        sigmas = [float(s) for s in self.params["sigmas"]]
        if len(sigmas) < 2 or min(sigmas) < 0:
            raise ValueError(
                f"sigmas must list >= 2 non-negative stds, got {self.params['sigmas']!r}"
            )
        stride = int(self.params["stride"] if stride is None else stride)
        if stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        return kernel_log_likelihoods(
            to_gray(image),
            sigmas,
            self._gsm(),
            check_positive("noise_std", self.params["noise_std"]),
            check_positive("win_sigma", self.params["win_sigma"]),
            int(self.params["n_freq"]),
            stride,
        )

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        h, w = image.shape[:2]
        sigmas = np.asarray([float(s) for s in self.params["sigmas"]])
        sharp = sigmas <= float(self.params["sharp_sigma"])
        if sharp.all() or not sharp.any():
            raise ValueError(
                f"sharp_sigma={self.params['sharp_sigma']!r} must split sigmas {sigmas.tolist()} "
                "into a sharp and a blurred set"
            )
        ll = self.log_likelihoods(image)
        n_coef = len(frequency_grid(int(self.params["n_freq"]))) * len(_DERIVS)
        llr = (ll[..., ~sharp].max(axis=-1) - ll[..., sharp].max(axis=-1)) / n_coef
        unary = grid_to_full(llr.astype(np.float32), int(self.params["stride"]), (h, w))
        q = potts_mean_field(
            unary * float(self.params["unary_scale"]),
            beta=float(self.params["beta"]),
            iters=int(self.params["mf_iters"]),
        )
        return np.clip(q, 0.0, 1.0).astype(np.float32)
