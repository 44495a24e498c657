"""HiFST's sorted high-frequency DCT layers at every pixel (stride 1), fast and exact.

The layers are those of :func:`defocus.methods.classic.hifst.sorted_high_frequency` applied
to the block of every pixel: for each block side ``m`` the orthonormal 2-D DCT-II of the
``m x m`` block of the zero-padded gradient magnitude centred on the pixel, the absolute
coefficients with ``u + v >= m - 1``, pooled over the block sides, the ``n_layers`` smallest
sorted ascending. They are computed in float64 and rounded to float32 at the end, so they
equal a float64 evaluation of the block DCTs up to float64 rounding (about 1e-8 of a layer's
range on photographs; :func:`reference_layers`).

Algorithm
---------
1. Rows: ``Q_v(y, x) = sum_l C[v, l] G(y, x + l)`` for every block side and frequency ``v``,
   one matrix product per pixel column (BLAS).
2. Columns: for a fixed vertical frequency ``u`` the coefficient ``S(y) = sum_k C[u, k]
   Q_v(y + k, x)`` of consecutive rows obeys the second-order recurrence (sliding DCT)

       S(y + 2) = 2 cos(w) S(y + 1) - S(y) + a cos(w / 2) (d(y + 1) - d(y)),
       d(j) = (-1)^u Q_v(j + m, x) - Q_v(j, x),   w = pi u / m,

   (a the DCT row's scale), so each coefficient costs one multiply-add per pixel instead of
   ``m``; ``u = 0`` is a running sum. The first two rows are direct sums. Each pixel column
   walks down the image; four columns are processed together.
3. Selection: the coefficients of a pixel are packed, as float32 absolute values, into a
   candidate list when at most a threshold predicted from the pixel above (AVX-512
   compress where the CPU has it). The list is cut to the smallest threshold of three that
   keeps between ``n_layers`` and ``cap`` values (all coefficients are rescanned when none
   does), padded with +inf and sorted with NumPy; the first ``n_layers`` are the layers.
   Thresholds only choose how many values are sorted: the result is the exact order
   statistic whatever they are.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: pixel columns processed together by the column kernel
GROUP = 4


# -- 8-wide vector steps (LLVM IR; masked.compressstore is lowered to vcompressps on
#    AVX-512 and to scalar code elsewhere) ----------------------------------------------
def _splat(builder, val, n):
    vt = ir.VectorType(val.type, n)
    v = builder.insert_element(ir.Constant(vt, ir.Undefined), val, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(
        v, ir.Constant(vt, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n)
    )


def _ptr(context, builder, aryty, ary, idx, vt):
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.bitcast(builder.gep(data, [idx]), vt.as_pointer())


def _select_store(builder, s, dst, t):
    """Store the lanes of ``|float32(s)| <= t`` packed at ``dst``; return how many (i64)."""
    mod = builder.module
    f32x8 = ir.VectorType(ir.FloatType(), 8)
    i1x8 = ir.VectorType(ir.IntType(1), 8)
    fabs = cgutils.get_or_insert_function(mod, ir.FunctionType(f32x8, [f32x8]), "llvm.fabs.v8f32")
    a = builder.call(fabs, [builder.fptrunc(s, f32x8)])
    mask = builder.fcmp_ordered("<=", a, _splat(builder, t, 8))  # NaN lanes never pass
    store = cgutils.get_or_insert_function(
        mod,
        ir.FunctionType(ir.VoidType(), [f32x8, dst.type, i1x8]),
        "llvm.masked.compressstore.v8f32",
    )
    builder.call(store, [a, dst, mask])
    popcount = cgutils.get_or_insert_function(
        mod, ir.FunctionType(ir.IntType(8), [ir.IntType(8)]), "llvm.ctpop.i8"
    )
    n = builder.call(popcount, [builder.bitcast(mask, ir.IntType(8))])
    return builder.zext(n, ir.IntType(64))


@intrinsic
def _step8(typingctx, s1, s2, dd, i, k, a, b, lst, nl, t):
    """``s2[i:i+8] = a s1[i:i+8] - s2[i:i+8] + b dd[k:k+8]``, then select its lanes
    ``|float32| <= t`` into ``lst[nl:]``; return how many were selected."""
    sig = types.int64(s1, s2, dd, i, k, a, b, lst, nl, t)

    def codegen(context, builder, signature, args):
        s1_, s2_, dd_, i_, k_, a_, b_, lst_, nl_, t_ = args
        f64x8 = ir.VectorType(ir.DoubleType(), 8)
        f32x8 = ir.VectorType(ir.FloatType(), 8)
        p1 = _ptr(context, builder, signature.args[0], s1_, i_, f64x8)
        p2 = _ptr(context, builder, signature.args[1], s2_, i_, f64x8)
        pd = _ptr(context, builder, signature.args[2], dd_, k_, f64x8)
        pl = _ptr(context, builder, signature.args[7], lst_, nl_, f32x8)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(f64x8, [f64x8, f64x8, f64x8]), "llvm.fma.v8f64"
        )
        v1 = builder.load(p1, align=8)
        v2 = builder.load(p2, align=8)
        vd = builder.load(pd, align=8)
        s = builder.call(fma, [_splat(builder, a_, 8), v1, builder.fneg(v2)])
        s = builder.call(fma, [_splat(builder, b_, 8), vd, s])
        builder.store(s, p2, align=8)
        return _select_store(builder, s, pl, t_)

    return sig, codegen


@intrinsic
def _sel8(typingctx, s, i, lst, nl, t):
    """Select the lanes ``|float32(s[i:i+8])| <= t`` into ``lst[nl:]``; return how many."""
    sig = types.int64(s, i, lst, nl, t)

    def codegen(context, builder, signature, args):
        s_, i_, lst_, nl_, t_ = args
        f64x8 = ir.VectorType(ir.DoubleType(), 8)
        f32x8 = ir.VectorType(ir.FloatType(), 8)
        p = _ptr(context, builder, signature.args[0], s_, i_, f64x8)
        pl = _ptr(context, builder, signature.args[2], lst_, nl_, f32x8)
        return _select_store(builder, builder.load(p, align=8), pl, t_)

    return sig, codegen


# -- tables -------------------------------------------------------------------------------
def dct_matrix64(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix in float64 (MATLAB ``dctmtx``)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    c[0] /= np.sqrt(2.0)
    return c


def _tables(sizes: list[int]) -> tuple:
    """One run per (block side m, u >= 1): the coefficients v = m - 1 - u .. m - 1, stored
    contiguously and padded to a multiple of 8 slots; one 'box' per block side for
    (u, v) = (0, m - 1)."""
    run_lo, run_n, run_v0, run_qoff, run_m, run_a, run_b, run_odd = ([] for _ in range(8))
    init = []
    big = max(sizes)
    slot = 0
    qoff = 0
    box_q, box_m, box_alpha = [], [], []
    for m in sizes:
        cm = dct_matrix64(m)
        for u in range(1, m):
            w = np.pi * u / m
            run_lo.append(slot)
            run_n.append(u + 1)
            run_v0.append(m - 1 - u)
            run_qoff.append(qoff)
            run_m.append(m)
            run_a.append(2.0 * np.cos(w))
            run_b.append(np.sqrt(2.0 / m) * np.cos(w / 2))
            run_odd.append(u % 2)
            row = np.zeros(big + 1)
            row[:m] = cm[u]
            init.append(row)
            slot += -(-(u + 1) // 8) * 8
        box_q.append(qoff + m - 1)
        box_m.append(m)
        box_alpha.append(np.sqrt(1.0 / m))
        qoff += m
    run_lo.append(slot)
    i64 = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    f64 = lambda x: np.asarray(x, dtype=np.float64)  # noqa: E731
    init_arr = np.array(init) if init else np.zeros((0, big + 1))
    return (
        i64(run_lo), i64(run_n), i64(run_v0), i64(run_qoff), i64(run_m), f64(run_a),
        f64(run_b), i64(run_odd), init_arr, i64(box_q), i64(box_m), f64(box_alpha),
    )  # fmt: skip


# -- selection helpers ---------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def _finish(lst, nl, t0, t1, t2, n_layers, cap, out):
    """From candidates ``lst[:nl]`` (every value <= t2) write those <= the lowest of t0 < t1
    < t2 that keeps between n_layers and cap of them to ``out``, then +inf. Return (count,
    threshold), or (-1, t1) when no threshold fits."""
    n0 = 0
    n1 = 0
    for i in range(nl):
        v = lst[i]
        n0 += v <= t0
        n1 += v <= t1
    if n_layers <= n0 <= cap:
        t, k = t0, n0
    elif n_layers <= n1 <= cap:
        t, k = t1, n1
    elif n_layers <= nl <= cap:
        t, k = t2, nl
    else:
        return -1, t1
    n = 0
    for i in range(nl):
        v = lst[i]
        out[n] = v
        n += v <= t
    for i in range(k, cap):
        out[i] = np.inf
    return k, t


@nb.njit(cache=True, nogil=True)
def _retry(row, tau, n_layers, cap, out):
    """All of a pixel's values in ``row``: find a threshold keeping n_layers..cap of them
    (or sort them all), write as :func:`_finish` does; return (count, threshold)."""
    nc = row.shape[0]
    target = n_layers + n_layers // 8 + 4
    if np.isfinite(tau):
        for _ in range(8):
            cnt = 0
            for c in range(nc):
                cnt += row[c] <= tau
            if cnt < n_layers:
                tau = np.float32(tau * 2.0 * target / max(cnt, 1)) if tau > 0 else np.float32(1e-30)
                continue
            if cnt > cap:
                if tau == 0.0:  # more than cap exact zeros: the smallest are all zero
                    for i in range(n_layers):
                        out[i] = 0.0
                    for i in range(n_layers, cap):
                        out[i] = np.inf
                    return cnt, tau
                tau = np.float32(tau * target / cnt)
                continue
            n = 0
            for c in range(nc):
                v = row[c]
                out[n] = v
                n += v <= tau
            for i in range(cnt, cap):
                out[i] = np.inf
            return cnt, tau
    s = np.sort(row)
    for i in range(n_layers):
        out[i] = s[i]
    for i in range(n_layers, cap):
        out[i] = np.inf
    return nc, np.float32(s[n_layers - 1])


# -- the column kernel ---------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def _columns(q, h, run_lo, run_n, run_v0, run_qoff, run_m, run_a, run_b, run_odd, init, box_q,
             box_m, box_alpha, n_layers, cand):  # fmt: skip
    """Candidate lists of GROUP (= 4) pixel columns.

    q : (h + big, 4, nq) float64, the row transforms of the 4 columns (rows past a block
        side's h + m - 1 are unused).
    cand : (4, h, cap) float32 out; row ``cand[g, y]`` holds the n_layers smallest values of
        pixel (y, g) among its first entries, unsorted, then values > them and +inf.
    """
    cap = cand.shape[2]
    nrun = run_v0.shape[0]
    ncp = run_lo[nrun]
    nbox = box_q.shape[0]
    nq = q.shape[2]
    ndd = nq + 8
    nls = ncp + nbox + 16
    # recurrence states of rows y - 1 and y - 2 (swapped each row); NaN padding slots are
    # never selected
    sa = np.full(4 * ncp, np.nan)
    sb = np.full(4 * ncp, np.nan)
    bx = np.empty((4, nbox))
    lst = np.empty(4 * nls, dtype=np.float32)
    tmp = np.empty(ncp + nbox, dtype=np.float32)
    dde = np.zeros(4 * ndd)
    ddo = np.zeros(4 * ndd)
    tau = np.full(4, np.inf, dtype=np.float32)
    t0 = np.empty(4, dtype=np.float32)
    t2 = np.empty(4, dtype=np.float32)
    nl = np.zeros(4, dtype=np.int64)
    target = n_layers + n_layers // 8 + 4
    # rows 0 and 1 directly
    for g in range(4):
        for r in range(nrun):
            m = run_m[r]
            lo = g * ncp + run_lo[r]
            n = run_n[r]
            qo = run_qoff[r] + run_v0[r]
            s0r = sb[lo : lo + n]
            s1r = sa[lo : lo + n]
            for j in range(n):
                s0r[j] = 0.0
                s1r[j] = 0.0
            for k in range(m):
                w = init[r, k]
                qa = q[k, g, qo : qo + n]
                qb = q[k + 1, g, qo : qo + n]
                for j in range(n):
                    s0r[j] += w * qa[j]
                    s1r[j] += w * qb[j]
        for i in range(nbox):
            s0 = 0.0
            for k in range(box_m[i]):
                s0 += q[k, g, box_q[i]]
            bx[g, i] = s0 * box_alpha[i]
    for y in range(h):
        for g in range(4):
            t0[g] = tau[g] * np.float32(0.8)
            t2[g] = tau[g] * np.float32(1.3)
        ta, tb, tc, td = t2[0], t2[1], t2[2], t2[3]
        na = 0
        nb_ = nls
        nc_ = 2 * nls
        nd = 3 * nls
        if y < 2:
            cur = sb if y == 0 else sa
            for i in range(0, ncp, 8):
                na += _sel8(cur, i, lst, na, ta)
                nb_ += _sel8(cur, ncp + i, lst, nb_, tb)
                nc_ += _sel8(cur, 2 * ncp + i, lst, nc_, tc)
                nd += _sel8(cur, 3 * ncp + i, lst, nd, td)
        else:
            # the state of row y overwrites that of row y - 2
            if y % 2 == 0:
                s1, s2 = sa, sb
            else:
                s1, s2 = sb, sa
            for r in range(nrun):
                m = run_m[r]
                qo = run_qoff[r]
                if r == 0 or run_qoff[r - 1] != qo:  # first run of a block side: its inputs
                    for g in range(4):
                        q0 = q[y - 2, g, qo : qo + m]
                        q1 = q[y - 1, g, qo : qo + m]
                        q2 = q[y - 2 + m, g, qo : qo + m]
                        q3 = q[y - 1 + m, g, qo : qo + m]
                        de = dde[g * ndd + qo : g * ndd + qo + m]
                        do = ddo[g * ndd + qo : g * ndd + qo + m]
                        for v in range(m):
                            dm = q3[v] - q2[v]
                            d0 = q1[v] - q0[v]
                            de[v] = dm - d0
                            do[v] = -dm - d0
                dd = ddo if run_odd[r] else dde
                a = run_a[r]
                b = run_b[r]
                lo = run_lo[r]
                v0 = qo + run_v0[r]
                for i in range(0, run_lo[r + 1] - lo, 8):
                    na += _step8(s1, s2, dd, lo + i, v0 + i, a, b, lst, na, ta)
                    nb_ += _step8(s1, s2, dd, ncp + lo + i, ndd + v0 + i, a, b, lst, nb_, tb)
                    nc_ += _step8(
                        s1, s2, dd, 2 * ncp + lo + i, 2 * ndd + v0 + i, a, b, lst, nc_, tc
                    )
                    nd += _step8(s1, s2, dd, 3 * ncp + lo + i, 3 * ndd + v0 + i, a, b, lst, nd, td)
            cur = s2
        nl[0] = na
        nl[1] = nb_ - nls
        nl[2] = nc_ - 2 * nls
        nl[3] = nd - 3 * nls
        for g in range(4):
            if y >= 1:  # u = 0: running sums
                for i in range(nbox):
                    m = box_m[i]
                    bx[g, i] += box_alpha[i] * (q[y - 1 + m, g, box_q[i]] - q[y - 1, g, box_q[i]])
            row = lst[g * nls : (g + 1) * nls]
            k = nl[g]
            for i in range(nbox):
                v = abs(np.float32(bx[g, i]))
                row[k] = v
                k += v <= t2[g]
            out = cand[g, y]
            k, t = _finish(row, k, t0[g], tau[g], t2[g], n_layers, cap, out)
            if k < 0:
                nt = 0
                for r in range(nrun):
                    lo = g * ncp + run_lo[r]
                    for j in range(run_n[r]):
                        tmp[nt] = abs(np.float32(cur[lo + j]))
                        nt += 1
                for i in range(nbox):
                    tmp[nt] = abs(np.float32(bx[g, i]))
                    nt += 1
                k, t = _retry(tmp[:nt], t, n_layers, cap, out)
            tau[g] = np.float32(t * target / k) if k > 0 else t
    return 0


def sorted_layers_dense(grad: np.ndarray, sizes: list[int], n_layers: int) -> np.ndarray:
    """The ``n_layers`` smallest sorted absolute high-frequency DCT coefficients at every
    pixel (see the module docstring).

    Parameters
    ----------
    grad : ndarray (H, W)
        Gradient magnitude; zero-padded by ``max(sizes) // 2`` here.
    sizes : list of int
        Odd block sides.
    n_layers : int
        How many of the smallest sorted coefficients to keep.

    Returns
    -------
    ndarray, float32 (W, H, n_layers)
        Ascending along the last axis; note the (column, row) order.
    """
    sizes = sorted(int(m) for m in sizes)
    h, w = grad.shape
    total = sum(m * (m + 1) // 2 for m in sizes)
    if not 1 <= n_layers <= total:
        raise ValueError(f"n_layers must be in [1, {total}], got {n_layers!r}")
    big = sizes[-1]
    pad = big // 2
    wp = -(-w // GROUP) * GROUP
    gp = np.zeros((h + 2 * pad, wp + 2 * pad), dtype=np.float64)
    gp[pad : pad + h, pad : pad + w] = grad
    tabs = _tables(sizes)
    cap = n_layers + n_layers // 2 + 16
    mats = {m: dct_matrix64(m).T.copy() for m in sizes}
    q = np.zeros((h + big, GROUP, sum(sizes)))
    out = np.empty((w, h, n_layers), dtype=np.float32)
    cols = 64  # columns whose candidates are sorted together
    for x0 in range(0, wp, cols):
        gw = min(cols, wp - x0)
        cand = np.empty((gw, h, cap), dtype=np.float32)
        for j in range(0, gw, GROUP):
            for g in range(GROUP):
                x = x0 + j + g
                qoff = 0
                for m in sizes:
                    off = pad - m // 2
                    sub = gp[off : off + h - 1 + m, off + x : off + x + m]
                    np.matmul(sub, mats[m], out=q[: h - 1 + m, g, qoff : qoff + m])
                    qoff += m
            _columns(q, h, *tabs, n_layers, cand[j : j + GROUP])
        cand.sort(axis=2)
        xe = min(w, x0 + gw)
        out[x0:xe] = cand[: xe - x0, :, :n_layers]
    return out


@nb.njit(cache=True, nogil=True)
def max_normalised_layer(layers: np.ndarray) -> np.ndarray:
    """``max_t (L_t - min L_t) / (max L_t - min L_t)`` over the last axis, min and max over
    the image, in float32 exactly as NumPy evaluates it in ``HiFST.feature_map`` (a range
    <= 1e-12 divides by 1). layers: (A, B, n) float32; returns (A, B) float32."""
    na, nb_, nl = layers.shape
    lo = layers[0, 0].copy()
    hi = layers[0, 0].copy()
    for i in range(na):
        for j in range(nb_):
            row = layers[i, j]
            for t in range(nl):
                v = row[t]
                lo[t] = min(lo[t], v)
                hi[t] = max(hi[t], v)
    den = np.empty(nl, dtype=np.float32)
    for t in range(nl):
        d = hi[t] - lo[t]
        den[t] = d if d > np.float32(1e-12) else np.float32(1.0)
    out = np.empty((na, nb_), dtype=np.float32)
    for i in range(na):
        for j in range(nb_):
            row = layers[i, j]
            m = (row[0] - lo[0]) / den[0]
            for t in range(1, nl):
                m = max(m, (row[t] - lo[t]) / den[t])
            out[i, j] = m
    return out


def reference_layers(grad: np.ndarray, sizes: list[int], n_layers: int) -> np.ndarray:
    """Slow float64 evaluation of the same layers, block by block (tests): (H, W, n)."""
    from numpy.lib.stride_tricks import sliding_window_view

    sizes = sorted(int(m) for m in sizes)
    h, w = grad.shape
    pad = sizes[-1] // 2
    gp = np.pad(grad.astype(np.float64), pad)
    out = np.empty((h, w, n_layers), dtype=np.float32)
    for y in range(h):
        feats = []
        for m in sizes:
            off = pad - m // 2
            blocks = sliding_window_view(gp[off + y : off + y + m, off : off + w - 1 + m], (m, m))
            c = dct_matrix64(m)
            coef = np.abs(c @ blocks[0] @ c.T)
            u = np.arange(m)
            feats.append(coef[:, (u[:, None] + u[None, :]) >= m - 1])
        out[y] = np.sort(np.concatenate(feats, axis=1), axis=1)[:, :n_layers]
    return out
