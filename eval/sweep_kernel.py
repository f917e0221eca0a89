"""Compiled one-pass threshold sweep (numba). Used by :mod:`eval.sweep`; import it only through there.

Given a quantized score map ``q`` (uint8 ``[H, W]``, from :func:`quantize_checked` with its value
histogram) and the distinct binarization levels ``t`` (foreground ``q > t``, from
:func:`level_table`), :func:`sweep_buckets` returns, for every level, the best IoU against the GT
boxes of the boxes that ``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)`` would give, without
calling OpenCV. It relies on these facts about OpenCV's contours (each checked against the
installed OpenCV on random maps in ``tests/eval/test_sweep.py`` and ``test_sweep_kernel.py``):

1. pixels outside the image count as background; foreground is 8-connected, background 4-connected;
2. **outer contours** are the 8-connected foreground components; ``cv2.boundingRect`` of one is the
   component's pixel bounding box;
3. **hole contours** are the 4-connected background components that do not touch the image border;
   ``cv2.boundingRect`` of one is the hole's pixel box grown by one pixel on every side (so it lies
   inside the enclosing component's box);
4. ``cv2.contourArea`` of an outer contour is ``#(2x2 pixel blocks fully inside) + 0.5 *
   #(2x2 blocks with 3 pixels inside)`` of the component with its holes filled, i.e. the shoelace
   area of the outer border that OpenCV follows (Suzuki-Abe), which :func:`_outer_area2` follows;
5. a hole contour's area never exceeds its component's outer area, a component nested in a hole
   is strictly smaller than the enclosing one, and parents are listed before their children; so
   the largest contour (V1) is the outer contour of a top-level component;
6. top-level outer contours are listed in decreasing order of their first pixel (row-major), so
   among equal areas ``max()`` keeps the component starting last. This one is probed at run time
   (:func:`eval.sweep.opencv_tie_order`); without it, ties with different outcomes are flagged
   for the caller to resolve with OpenCV.

Algorithm. The pixels are counting-sorted once by the *threshold bucket* they enter
(:func:`_bucket_order`: bucket ``b`` holds ``levels[b-1] < q <= levels[b]``, row-major inside), so
the work is one union-find step per pixel and one box evaluation per requested level, whatever
the number of uint8 values between two cuts. The foreground is swept by a union-find over the
buckets in *decreasing* order (the foreground only grows as ``t`` decreases), a whole bucket
before each level's boxes are read. Each pixel's step is driven by the 8-bit mask of its
neighbours already in the foreground, formed without branches: tables give the few neighbours
whose sets must be looked up (consecutive ring neighbours touch, so one per arc) and the pixel's
change of the set's doubled block area and 4x Euler number (Gray's bit quads for
8-connectivity: ``4E = n1 - n3 - 2 * n_diagonal``; holes = ``1 - E``), all additive because every
foreground pixel of a 2x2 block belongs to the same component. (The data-dependent branch per
neighbour that this replaces was badly predicted on the front and cost half the time; signed
indices another fifth, so the pixel loops index with unsigned integers.) A component without
holes has its exact polygon area; one with holes gets it by following its outer border
(:func:`_outer_area2`, cost: the contour's length), done only at levels where its area decides
between boxes with different outcomes. The background is swept (union-find over the buckets in
*increasing* order, 4-connectivity, the padding ring belongs to an "outside" set) only up to the
highest level with a holed component whose hole boxes could beat the outer boxes (hole boxes lie
inside its box, so ``max |GT inside box| / |GT|`` bounds their IoU).

Union-find layout: ``label`` is the label image padded by one pixel; ``label[p]`` is the set a
pixel joined (``-1`` before it is added). Set ids are allocated sequentially and a small table
(``sp`` parents, ``sd`` data) holds them, so most pixels touch one hot row. Everything here is
pure: arrays in, arrays out. Also here: :func:`fixed_threshold_box`, the old protocol's box in
one raster pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Indexed by the bit mask of a 2x2 block (top-left 1, top-right 2, bottom-left 4, bottom-right 8):
# doubled polygon-area share max(0, k - 2) of a block with k pixels in, and 4x its Euler-number
# share for 8-connected sets (+1 one pixel, -1 three pixels, -2 the diagonal pairs 6 and 9).
_F2 = np.array([max(0, bin(m).count("1") - 2) for m in range(16)], dtype=np.int64)
_EU = np.array(
    [1 if bin(m).count("1") == 1 else -1 if bin(m).count("1") == 3 else -2 if m in (6, 9) else 0 for m in range(16)],
    dtype=np.int64,
)

# Neighbourhood masks. Bit k of an 8-bit mask is set when the k-th neighbour of the pixel being
# added already belongs to the growing set (foreground pass: joined the foreground; background pass:
# joined the background or is the padding ring), in ring order around the pixel:
# 0 NW, 1 N, 2 NE, 3 E, 4 SE, 5 S, 6 SW, 7 W. The mask is formed without branches; the tables below
# turn it into the few union-find operations the pixel needs, which keeps the pixel loop free of
# the data-dependent branches that dominated it (one per neighbour, badly predicted on the front).
_RING_DY = (-1, -1, -1, 0, 1, 1, 1, 0)
_RING_DX = (-1, 0, 1, 1, 1, 0, -1, -1)


def _arc_tables(four: bool):
    """``(n, at)``: for every mask, the ring positions of the neighbours whose sets must be looked
    up (``at[m, :n[m]]``). 8-connectivity: consecutive ring neighbours touch each other, so each
    maximal arc of set neighbours lies in one set and only its first neighbour is looked up.
    4-connectivity: the 4-neighbours N, E, S, W; one is skipped when it and the previous one
    (counter-clockwise) are joined through the diagonal between them."""
    n = np.zeros(256, dtype=np.int64)
    at = np.zeros((256, 4), dtype=np.int64)
    for m in range(256):
        bit = [(m >> k) & 1 for k in range(8)]
        picks = []
        if four:
            ks = [k for k in (1, 3, 5, 7) if bit[k]]
            linked = [k for k in ks if bit[(k - 2) % 8] and bit[(k - 1) % 8]]
            picks = [k for k in ks if k not in linked]
            if ks and not picks:  # all four linked around the pixel: one set
                picks = [ks[0]]
        else:
            picks = [k for k in range(8) if bit[k] and not bit[(k - 1) % 8]]
            if m == 255:
                picks = [0]
        n[m] = len(picks)
        at[m, : len(picks)] = picks
    return n, at


def _block_delta_tables():
    """Doubled area and 4x Euler-number change of the set when a pixel joins it, by the mask of
    its 8 neighbours already in the set: the sum over the four 2x2 blocks that contain the pixel."""
    da = np.zeros(256, dtype=np.int64)
    de = np.zeros(256, dtype=np.int64)
    for m in range(256):
        b = [(m >> k) & 1 for k in range(8)]
        nw, n_, ne, e, se, s, sw, w = b
        # (block bits before the pixel joins, the pixel's own bit): top-left 1, top-right 2,
        # bottom-left 4, bottom-right 8
        blocks = (
            (nw | n_ << 1 | w << 2, 8),
            (n_ | ne << 1 | e << 3, 4),
            (w | s << 3 | sw << 2, 2),
            (e << 1 | s << 2 | se << 3, 1),
        )
        for before, own in blocks:
            da[m] += _F2[before | own] - _F2[before]
            de[m] += _EU[before | own] - _EU[before]
    return da, de


_NARC8, _ARC8 = _arc_tables(four=False)
_NARC4, _ARC4 = _arc_tables(four=True)
_DA8, _DE8 = _block_delta_tables()

# Columns of the set table ``sd`` (int32; written out as literals in the loops below):
# 0 pixels in the set (union by size), 1..4 pixel box x0, y0, x1, y1, 5 position in the live list,
# foreground only: 6 doubled block area, 7 4 * Euler number, 8 first pixel (row-major index).


@njit(cache=True)
def _box_iou(x0, y0, x1, y1, gt):
    """Best IoU (inclusive +1 convention) of box (x0, y0, x1, y1) against the rows of ``gt``,
    computed as the protocol does (integer areas, one float division)."""
    best = 0.0
    area_a = (x1 - x0 + 1) * (y1 - y0 + 1)
    for k in range(gt.shape[0]):
        gx0 = gt[k, 0]
        gy0 = gt[k, 1]
        gx1 = gt[k, 2]
        gy1 = gt[k, 3]
        ix = min(x1, gx1) - max(x0, gx0) + 1
        iy = min(y1, gy1) - max(y0, gy0) + 1
        if ix < 0:
            ix = 0
        if iy < 0:
            iy = 0
        inter = ix * iy
        denom = area_a + (gx1 - gx0 + 1) * (gy1 - gy0 + 1) - inter
        iou = inter / denom if denom > 0 else 0.0
        if iou > best:
            best = iou
    return best


@njit(cache=True)
def _coverage_bound(x0, y0, x1, y1, gt):
    """Upper bound of the IoU of any box inside (x0, y0, x1, y1) against the GT boxes:
    max over GT of ``|GT inside the box| / |GT|``."""
    best = 0.0
    for k in range(gt.shape[0]):
        gx0 = gt[k, 0]
        gy0 = gt[k, 1]
        gx1 = gt[k, 2]
        gy1 = gt[k, 3]
        ix = min(x1, gx1) - max(x0, gx0) + 1
        iy = min(y1, gy1) - max(y0, gy0) + 1
        if ix <= 0 or iy <= 0:
            continue
        c = (ix * iy) / ((gx1 - gx0 + 1) * (gy1 - gy0 + 1))
        if c > best:
            best = c
    return best


@njit(cache=True)
def _same_outcome(a, b, deltas):
    """True when IoUs ``a`` and ``b`` are interchangeable: equal, or (``deltas`` given) on the same
    side of every IoU threshold."""
    if a == b:
        return True
    if deltas.shape[0] == 0:
        return False
    for d in range(deltas.shape[0]):
        if (a >= deltas[d]) != (b >= deltas[d]):
            return False
    return True


@njit(cache=True)
def _may_improve(best, bound, deltas):
    """Could a candidate with IoU ``<= bound`` change the result ``best`` (its value, or with
    ``deltas`` its outcome)?"""
    if bound <= best:
        return False
    if deltas.shape[0] == 0:
        return True
    for d in range(deltas.shape[0]):
        if best < deltas[d] <= bound:
            return True
    return False


@njit(cache=True)
def quantize_checked(s):
    """``(s * 255).astype(uint8)`` of a float ``[H, W]`` map (float32 or float64, each value taken
    as float64 as the protocol does) and the histogram of its values, in one pass: ``(q, hist,
    ok)`` with ``hist`` int64 ``[256]``; ``ok`` is False when some value is NaN, infinite or outside
    ``[0, 1]`` (the caller then reports it, :func:`eval.sweep.check_scoremap`)."""
    H, W = s.shape
    q = np.empty((H, W), dtype=np.uint8)
    hist = np.zeros(256, dtype=np.int64)
    ok = True
    for y in range(H):
        for x in range(W):
            v = np.float64(s[y, x])
            if not (0.0 <= v <= 1.0):  # False for NaN too
                ok = False
                v = 0.0
            u = np.uint8(v * 255.0)  # truncation, as numpy's astype(uint8) of values in [0, 255]
            q[y, x] = u
            hist[u] += 1
    return q, hist, ok


@njit(cache=True)
def _uf_root(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True)
def fixed_threshold_box(s, sigma, normalize, strict):
    """The old protocol's box (CAM 2016 / CutMix 2019) of one float ``[H, W]`` map in one pass
    over the map after its min / max: ``(box, ok)``.

    Each value is taken as float64; ``normalize`` 0 ``s / max``, 1 ``(s - min) / (max - min)``,
    2 as is (a zero normalizer gives the box ``(0, 0, 0, 0)``); foreground ``s' > sigma``
    (``strict``) or ``s' >= sigma``; box ``(x0, y0, x1, y1)`` inclusive int64 of the largest
    8-connected component by pixel count, ties to the component whose first pixel (row-major)
    comes first; ``(0, 0, 0, 0)`` without foreground. ``ok`` is False (box zeros) when a value is
    NaN, infinite or outside ``[0, 1]``. The same arithmetic as numpy on the float64 map, so the
    same mask as :func:`eval.sweep.largest_component_box` gets.

    Labelling: one raster scan; a pixel takes the set of its north neighbour, else north-east
    (joined with west or north-west), else west, else north-west (these neighbours of a pixel
    already share a set when both are foreground), else a new set. Set ids grow in raster order
    and unions keep the smaller id, so a root's id orders components by their first pixel.
    """
    H, W = s.shape
    box = np.zeros(4, dtype=np.int64)
    lo = np.inf
    hi = -np.inf
    for y in range(H):
        for x in range(W):
            v = np.float64(s[y, x])
            if not (0.0 <= v <= 1.0):
                return box, False
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    sub = 0.0
    div = 1.0
    if normalize == 0:
        if hi <= 0.0:
            return box, True
        div = hi
    elif normalize == 1:
        if hi <= lo:
            return box, True
        sub = lo
        div = hi - lo
    cap = H * W // 2 + W + 2
    parent = np.empty(cap, dtype=np.int32)
    cnt = np.zeros(cap, dtype=np.int64)
    bx0 = np.empty(cap, dtype=np.int32)
    bx1 = np.empty(cap, dtype=np.int32)
    by0 = np.empty(cap, dtype=np.int32)
    by1 = np.empty(cap, dtype=np.int32)
    prev = np.full(W + 2, -1, dtype=np.int32)  # labels of the row above, padded by one
    cur = np.full(W + 2, -1, dtype=np.int32)
    n = 0
    for y in range(H):
        for x in range(W):
            v = (np.float64(s[y, x]) - sub) / div
            fg = v > sigma if strict else v >= sigma
            if not fg:
                cur[x + 1] = -1
                continue
            ln = prev[x + 1]
            if ln < 0:
                lne = prev[x + 2]
                lw = cur[x]
                if lw < 0:
                    lw = prev[x]
                if lne >= 0:
                    ln = lne
                    if lw >= 0:
                        ra = _uf_root(parent, lne)
                        rb = _uf_root(parent, lw)
                        if ra < rb:
                            parent[rb] = ra
                        elif rb < ra:
                            parent[ra] = rb
                elif lw >= 0:
                    ln = lw
                else:
                    ln = n
                    parent[n] = n
                    bx0[n] = x
                    bx1[n] = x
                    by0[n] = y
                    n += 1
            cur[x + 1] = ln
            cnt[ln] += 1
            if x < bx0[ln]:
                bx0[ln] = x
            if x > bx1[ln]:
                bx1[ln] = x
            by1[ln] = y
        prev, cur = cur, prev
    if n == 0:
        return box, True
    for i in range(n):  # fold every set's count and box into its root (roots have smaller ids)
        r = _uf_root(parent, i)
        if r != i:
            cnt[r] += cnt[i]
            if bx0[i] < bx0[r]:
                bx0[r] = bx0[i]
            if bx1[i] > bx1[r]:
                bx1[r] = bx1[i]
            if by0[i] < by0[r]:
                by0[r] = by0[i]
            if by1[i] > by1[r]:
                by1[r] = by1[i]
    best = -1
    for i in range(n):
        if parent[i] == i and (best < 0 or cnt[i] > cnt[best]):
            best = i
    box[0] = bx0[best]
    box[1] = by0[best]
    box[2] = bx1[best]
    box[3] = by1[best]
    return box, True


@njit(cache=True)
def level_table(thresholds, q_max):
    """``int(tau * q_max)`` of every threshold, deduplicated: ``(levels, inverse, ok)`` with
    ``levels`` int64 ``[L]`` increasing (the distinct levels), ``inverse`` int64 ``[T]`` (threshold
    ``t`` has level ``levels[inverse[t]]``), ``ok`` False when a threshold is not finite or outside
    ``[0, 1)`` (:func:`eval.sweep.binarization_levels` then reports it). Same float arithmetic as
    ``(thresholds * float(q_max)).astype(int64)``."""
    T = thresholds.shape[0]
    qf = float(q_max)
    lev = np.empty(T, dtype=np.int64)
    index = np.full(256, -1, dtype=np.int64)
    ok = True
    for t in range(T):
        tau = thresholds[t]
        if not (0.0 <= tau < 1.0):
            ok = False
            tau = 0.0
        v = np.int64(tau * qf)
        lev[t] = v
        index[v] = 0
    n = 0
    for v in range(256):
        if index[v] >= 0:
            index[v] = n
            n += 1
    levels = np.empty(n, dtype=np.int64)
    for v in range(256):
        if index[v] >= 0:
            levels[index[v]] = v
    inverse = np.empty(T, dtype=np.int64)
    for t in range(T):
        inverse[t] = index[lev[t]]
    return levels, inverse, ok


@njit(cache=True)
def _histogram(q):
    hist = np.zeros(256, dtype=np.int64)
    H, W = q.shape
    for y in range(H):
        for x in range(W):
            hist[q[y, x]] += 1
    return hist


@njit(cache=True)
def _bucket_order(q, hist, levels):
    """Pixels grouped by the threshold bucket they enter, row-major within a bucket (counting sort).

    Bucket ``b`` (``0..L``) holds the pixels with ``levels[b - 1] < q <= levels[b]`` (``b = 0``:
    ``q <= levels[0]``, never foreground; ``b = L``: ``q > levels[L - 1]``): foreground exactly at
    the levels ``li < b``. Returns ``order`` (int32 ``[N]``: index of each pixel in the label image
    padded by one pixel on every side, ``(y + 1) * (W + 2) + x + 1``) and ``start`` (int64
    ``[L + 2]``: bucket ``b`` is ``order[start[b]:start[b + 1]]``). The union-find passes add a
    whole bucket at a time and evaluate boxes only at the ``L`` cuts, whatever the number of uint8
    values between them.
    """
    H, W = q.shape
    W2 = W + 2
    L = levels.shape[0]
    bucket = np.empty(256, dtype=np.int64)
    start = np.zeros(L + 2, dtype=np.int64)
    b = 0
    for v in range(256):
        while b < L and v > levels[b]:
            b += 1
        bucket[v] = b
        start[b + 1] += hist[v]
    for i in range(L + 1):
        start[i + 1] += start[i]
    fill = start[: L + 1].copy()
    order = np.empty(H * W, dtype=np.int32)
    for y in range(H):
        base = (y + 1) * W2 + 1
        for x in range(W):
            bb = bucket[q[y, x]]
            f = fill[bb]
            order[f] = base + x
            fill[bb] = f + 1
    return order, start


# The pixel loops below are written out by hand: numba helper calls that take several arrays pay
# reference counting on every call, which made them several times slower.


@njit(cache=True, inline="always")
def _merge_sets(sp, sd, live, nlive, rp, rb):
    """Union by size of the live sets ``rp`` and ``rb`` (``sd[:, 0]`` size, ``sd[:, 1:5]`` bbox
    x0 y0 x1 y1, ``sd[:, 5]`` position in ``live``). Returns ``(root, absorbed, nlive)``."""
    if sd[rp, 0] < sd[rb, 0]:
        rp, rb = rb, rp
    sp[rb] = rp
    sd[rp, 0] += sd[rb, 0]
    i = sd[rb, 5]
    last = live[nlive - 1]
    live[i] = last
    sd[last, 5] = i
    nlive -= 1
    if sd[rb, 1] < sd[rp, 1]:
        sd[rp, 1] = sd[rb, 1]
    if sd[rb, 2] < sd[rp, 2]:
        sd[rp, 2] = sd[rb, 2]
    if sd[rb, 3] > sd[rp, 3]:
        sd[rp, 3] = sd[rb, 3]
    if sd[rb, 4] > sd[rp, 4]:
        sd[rp, 4] = sd[rb, 4]
    return rp, rb, nlive


@njit(cache=True, inline="always")
def _new_set(sp, sd, live, nlive, s, x, y):
    """Start set ``s`` with the one pixel (x, y) and append it to ``live``; returns ``nlive``."""
    sp[s] = s
    sd[s, 0] = 1
    sd[s, 1] = x
    sd[s, 2] = y
    sd[s, 3] = x
    sd[s, 4] = y
    sd[s, 5] = nlive
    live[nlive] = s
    return nlive + 1


@njit(cache=True, inline="always")
def _grow_set(sd, rp, x, y):
    """Add pixel (x, y) to set ``rp``: size and bbox."""
    sd[rp, 0] += 1
    if x < sd[rp, 1]:
        sd[rp, 1] = x
    if y < sd[rp, 2]:
        sd[rp, 2] = y
    if x > sd[rp, 3]:
        sd[rp, 3] = x
    if y > sd[rp, 4]:
        sd[rp, 4] = y


# Border following (Suzuki & Abe 1985, as cv2.findContours): directions clockwise on the image
# (y down) starting east.
_TRACE_DY = (0, 1, 1, 1, 0, -1, -1, -1)
_TRACE_DX = (1, 1, 0, -1, -1, -1, 0, 1)


@njit(cache=True)
def _outer_area2(label, s, W2):
    """Doubled ``cv2.contourArea`` of the outer contour of the foreground component whose first
    pixel (row-major) has padded index ``s``: the outer border is followed exactly as OpenCV
    does (Suzuki-Abe: first neighbour clockwise from the west one, then counter-clockwise around
    each border pixel from the one after the previous pixel; stop on returning to the start from
    its first neighbour) and the shoelace sum of its pixel centres taken. Every foreground pixel
    next to a border pixel belongs to the component (8-connectivity), so the walk only asks
    whether a pixel is foreground (``label >= 0``). Cost: the contour's length."""
    off = np.empty(8, dtype=np.int64)
    for k in range(8):
        off[k] = _TRACE_DY[k] * W2 + _TRACE_DX[k]
    found = -1
    for t in range(8):
        k = (4 + t) & 7
        if label[s + off[k]] >= 0:
            found = k
            break
    if found < 0:
        return 0
    first = s + off[found]
    c = s
    cx = 0
    cy = 0
    dp = found  # direction from the current pixel to the previous one
    area2 = 0
    while True:
        k = dp
        for t in range(1, 9):
            k = (dp - t) & 7
            if label[c + off[k]] >= 0:
                break
        n = c + off[k]
        nx = cx + _TRACE_DX[k]
        ny = cy + _TRACE_DY[k]
        area2 += cx * ny - nx * cy
        if n == s and c == first:
            break
        dp = (k + 4) & 7
        c = n
        cx = nx
        cy = ny
    return area2 if area2 >= 0 else -area2


# The pixel loops index with unsigned integers (``np.uint64``: padded pixel indices, set ids and
# neighbour offsets, negative ones as their two's complement, which wraps to the right index):
# numba emits a negative-index wraparound test for every signed index, 20% of the loop's time.
_U1 = np.uint64(1)


@njit(cache=True, inline="always")
def _ring_mask(label, up, uw2):
    """8-bit mask of the ring neighbours of padded pixel ``up`` (uint64; ``uw2 = W + 2``) with a
    set (``label >= 0``), in the ring order of ``_RING_DY``/``_RING_DX``; no branches."""
    return (
        (label[up - uw2 - _U1] >= 0)
        | ((label[up - uw2] >= 0) << 1)
        | ((label[up - uw2 + _U1] >= 0) << 2)
        | ((label[up + _U1] >= 0) << 3)
        | ((label[up + uw2 + _U1] >= 0) << 4)
        | ((label[up + uw2] >= 0) << 5)
        | ((label[up + uw2 - _U1] >= 0) << 6)
        | ((label[up - _U1] >= 0) << 7)
    )


@njit(cache=True, inline="always")
def _uroot(sp, s):
    """Root (uint64) of set ``s`` (path halving), unsigned indices."""
    s = np.uint64(s)
    p = np.uint64(sp[s])
    while p != s:
        g = np.uint64(sp[p])
        sp[s] = g
        s = g
        p = np.uint64(sp[s])
    return s


@njit(cache=True)
def _arc_offsets(narc, arc, W2):
    """``off[m, c]``: padded-index offset of the ``c``-th neighbour to look up for mask ``m``
    (``arc`` positions turned into offsets once per map, so the pixel loop does one lookup)."""
    off = np.zeros((256, 4), dtype=np.uint64)
    for m in range(256):
        for c in range(narc[m]):
            k = arc[m, c]
            off[m, c] = np.uint64(_RING_DY[k] * W2 + _RING_DX[k])  # negative: two's complement
    return off


@njit(cache=True)
def _holes_pass(q, order, start, levels, wanted, gt, hole_best, n_holes):
    """Background sweep: for every level ``li`` with ``wanted[li]``, the best IoU of the hole
    contours' boxes (``hole_best[li]``, 0 without holes) and their number (``n_holes[li]``).

    Union-find over the buckets of :func:`_bucket_order` in increasing order (the background
    ``q <= levels[li]`` is buckets ``0..li``), 4-connectivity; the padding ring of the label image
    belongs to set 0, the outside, so every background component touching the border joins it.
    Holes are the other live sets.
    """
    H, W = q.shape
    W2 = W + 2
    N = H * W
    L = levels.shape[0]
    lmax = -1
    for li in range(L):
        if wanted[li]:
            lmax = li
    if lmax < 0:
        return
    label = np.full((H + 2) * W2, -1, dtype=np.int32)
    for x in range(W2):
        label[x] = 0
        label[(H + 1) * W2 + x] = 0
    for y in range(H + 2):
        label[y * W2] = 0
        label[y * W2 + W + 1] = 0
    off4 = _arc_offsets(_NARC4, _ARC4, W2)
    uw2 = np.uint64(W2)
    sp = np.empty(N + 1, dtype=np.int32)
    sd = np.empty((N + 1, 8), dtype=np.int32)
    live = np.empty(N + 1, dtype=np.int32)
    sp[0] = 0
    sd[0, 0] = 1 << 30  # the outside is the largest set, so it always stays a root
    sd[0, 1] = 0
    sd[0, 2] = 0
    sd[0, 3] = W - 1
    sd[0, 4] = H - 1
    sd[0, 5] = 0
    live[0] = 0  # the outside stays at live[0]; the holes are live[1:]
    nlive = 1
    nsets = 1
    for b in range(lmax + 1):
        row = W2  # padded index of the current row's first pixel: row-major within a bucket
        y = 0
        for j in range(start[b], start[b + 1]):
            pp = np.int64(order[j])
            up = np.uint64(pp)
            if pp >= row + W2:  # a later row (once per row and bucket: the division is rare)
                y = pp // W2 - 1
                row = (y + 1) * W2
            x = pp - row - 1
            m = _ring_mask(label, up, uw2)
            na = _NARC4[m]
            if na == 0:
                s = nsets
                nsets += 1
                nlive = _new_set(sp, sd, live, nlive, s, x, y)
                label[up] = s
                continue
            rp = _uroot(sp, label[up + off4[m, 0]])
            for c in range(1, na):
                rb = _uroot(sp, label[up + off4[m, c]])
                if rb != rp:
                    rp, rb, nlive = _merge_sets(sp, sd, live, nlive, rp, rb)
            label[up] = rp
            _grow_set(sd, rp, x, y)
        if wanted[b]:
            best = 0.0
            for i in range(1, nlive):
                r = live[i]
                iou = _box_iou(sd[r, 1] - 1, sd[r, 2] - 1, min(sd[r, 3] + 2, W - 1), min(sd[r, 4] + 2, H - 1), gt)
                if iou > best:
                    best = iou
            hole_best[b] = best
            n_holes[b] = nlive - 1


@njit(cache=True)
def sweep_levels(q, levels, gt, deltas, want_v1, want_v2, ties_by_order):
    """:func:`sweep_buckets` with the value histogram of ``q`` computed here."""
    return sweep_buckets(q, _histogram(q), levels, gt, deltas, want_v1, want_v2, ties_by_order)


@njit(cache=True)
def sweep_buckets(q, hist, levels, gt, deltas, want_v1, want_v2, ties_by_order):
    """Best IoU of the protocol's boxes at every requested level of one quantized map.

    ``q``: uint8 ``[H, W]``; ``hist``: int64 ``[256]`` its value histogram
    (:func:`quantize_checked`); ``levels``: int64 ``[L]`` strictly increasing, each in ``0..254``
    (foreground ``q > level``); ``gt``: int64 ``[K, 4]`` inclusive GT boxes (K >= 1); ``deltas``:
    float64 ``[D]`` IoU thresholds. With ``deltas`` empty every returned IoU is the protocol's
    value; with ``deltas`` a level is settled as soon as its outcome (``iou >= delta`` for each
    delta) is certain, and the IoU returned is that of a box with the same outcome.

    Returns ``(v2, v1, undecided, n_boxes)``: float64 ``[L]`` best IoU over all contours (valid when
    ``want_v2``); float64 ``[L]`` IoU of the largest contour (valid when ``want_v1`` where
    ``undecided`` is 0); int8 ``[L]`` 1 where V1 must be resolved with OpenCV; int64 ``[L]``
    number of V2 boxes (outer + hole contours, 1 for the empty level's (0, 0, 0, 0) box).
    """
    H, W = q.shape
    W2 = W + 2
    L = levels.shape[0]
    order, start = _bucket_order(q, hist, levels)
    off8 = _arc_offsets(_NARC8, _ARC8, W2)
    uw2 = np.uint64(W2)

    v2 = np.zeros(L, dtype=np.float64)
    v1 = np.zeros(L, dtype=np.float64)
    undecided = np.zeros(L, dtype=np.int8)
    n_boxes = np.zeros(L, dtype=np.int64)
    need_holes = np.zeros(L, dtype=np.bool_)
    iou_empty = _box_iou(0, 0, 0, 0, gt)

    # Foreground sweep: union-find over the buckets in decreasing order, 8-connectivity. The
    # padding ring of the label image stays -1 (never foreground).
    n_fg = start[L + 1] - start[1]
    label = np.full((H + 2) * W2, -1, dtype=np.int32)
    sp = np.empty(n_fg, dtype=np.int32)
    sd = np.empty((n_fg, 10), dtype=np.int32)
    live = np.empty(n_fg, dtype=np.int32)
    ious = np.empty(n_fg, dtype=np.float64)  # IoU of each live set's box at the current level
    a_lo = np.empty(n_fg, dtype=np.int64)  # V1 scratch: bounds of the doubled outer areas
    a_up = np.empty(n_fg, dtype=np.int64)
    known = np.empty(n_fg, dtype=np.bool_)
    cand = np.empty(n_fg, dtype=np.int32)
    nlive = 0
    nsets = 0
    for bucket in range(L, 0, -1):
        row = W2  # padded index of the current row's first pixel: row-major within a bucket
        y = 0
        for j in range(start[bucket], start[bucket + 1]):
            pp = np.int64(order[j])
            up = np.uint64(pp)
            if pp >= row + W2:  # a later row (once per row and bucket: the division is rare)
                y = pp // W2 - 1
                row = (y + 1) * W2
            x = pp - row - 1
            m = _ring_mask(label, up, uw2)
            na = _NARC8[m]
            if na == 0:  # an isolated pixel: a new set (area 0, Euler number 1)
                s = nsets
                nsets += 1
                nlive = _new_set(sp, sd, live, nlive, s, x, y)
                sd[s, 6] = 0
                sd[s, 7] = 4
                sd[s, 8] = y * W + x
                label[up] = s
                continue
            rp = _uroot(sp, label[up + off8[m, 0]])
            for c in range(1, na):
                rb = _uroot(sp, label[up + off8[m, c]])
                if rb == rp:
                    continue
                rp, rb, nlive = _merge_sets(sp, sd, live, nlive, rp, rb)
                sd[rp, 6] += sd[rb, 6]
                sd[rp, 7] += sd[rb, 7]
                if sd[rb, 8] < sd[rp, 8]:
                    sd[rp, 8] = sd[rb, 8]
            label[up] = rp
            _grow_set(sd, rp, x, y)
            sd[rp, 7] += _DE8[m]
            if want_v1:  # areas and first pixels decide V1 only
                sd[rp, 6] += _DA8[m]
                if y * W + x < sd[rp, 8]:
                    sd[rp, 8] = y * W + x
        li = bucket - 1
        if nlive == 0:
            v2[li] = iou_empty
            v1[li] = iou_empty
            n_boxes[li] = 1  # the protocol's single (0, 0, 0, 0) box
            continue
        best = 0.0
        nh = 0
        for i in range(nlive):
            r = live[i]
            iou = _box_iou(sd[r, 1], sd[r, 2], min(sd[r, 3] + 1, W - 1), min(sd[r, 4] + 1, H - 1), gt)
            ious[i] = iou
            if iou > best:
                best = iou
            nh += 1 - sd[r, 7] // 4
        n_boxes[li] = nlive + nh
        v2[li] = best
        if want_v2 and nh > 0:
            for i in range(nlive):
                r = live[i]
                if sd[r, 7] < 4:  # a component with a hole: its hole boxes lie inside its box
                    bound = _coverage_bound(sd[r, 1], sd[r, 2], min(sd[r, 3] + 1, W - 1), min(sd[r, 4] + 1, H - 1), gt)
                    if _may_improve(best, bound, deltas):
                        need_holes[li] = True
                        break
        if not want_v1:
            continue
        if nlive == 1:
            v1[li] = ious[0]
            continue
        same = True
        for i in range(1, nlive):
            if not _same_outcome(ious[0], ious[i], deltas):
                same = False
                break
        if same:
            v1[li] = ious[0]
            continue
        # The largest contour is the outer contour of a component that is not nested in another
        # one's hole, with the largest polygon area. Doubled areas: exact without holes (block
        # count); with holes strictly above that (filling a hole adds to the 2x2 block next to
        # its top-left pixel) and at most the box spanned by the pixel centres; computed exactly
        # (hole filling) only while some candidate with a different outcome could win.
        max_low = -1
        for i in range(nlive):
            r = live[i]
            if sd[r, 7] < 4:
                a_lo[i] = sd[r, 6] + 1
                a_up[i] = 2 * (sd[r, 3] - sd[r, 1]) * (sd[r, 4] - sd[r, 2])
                known[i] = False
            else:
                a_lo[i] = sd[r, 6]
                a_up[i] = sd[r, 6]
                known[i] = True
            if a_lo[i] > max_low:
                max_low = a_lo[i]
        nc = 0
        for i in range(nlive):
            if a_up[i] >= max_low:
                cand[nc] = i
                nc += 1
        decided = False
        result = 0.0
        while True:
            # the largest area is at least ``best``: the components that may still be the
            # largest are those whose upper bound reaches it; stop when they all give the same
            # outcome, else compute the exact area of the one with the largest bound
            best = -1
            for c in range(nc):
                i = cand[c]
                if a_lo[i] > best:
                    best = a_lo[i]
            first = -1
            same = True
            next_i = -1
            for c in range(nc):
                i = cand[c]
                if a_up[i] < best:
                    continue
                if not known[i] and (next_i < 0 or a_up[i] > a_up[next_i]):
                    next_i = i
                if first < 0:
                    first = i
                elif not _same_outcome(ious[first], ious[i], deltas):
                    same = False
            if same:
                decided = True
                result = ious[first]
                break
            if next_i >= 0:
                r = live[next_i]
                fy = sd[r, 8] // W
                a = _outer_area2(label, (fy + 1) * W2 + sd[r, 8] - fy * W + 1, W2)
                a_lo[next_i] = a
                a_up[next_i] = a
                known[next_i] = True
                continue
            # a tie of equal exact areas with different outcomes: OpenCV lists the component whose
            # first pixel (row-major) comes later first and max() keeps the first
            if ties_by_order:
                win = -1
                for c in range(nc):
                    i = cand[c]
                    if a_lo[i] == best and (win < 0 or sd[live[i], 8] > sd[live[win], 8]):
                        win = i
                decided = True
                result = ious[win]
            break
        if decided:
            v1[li] = result
        else:
            undecided[li] = 1
    if want_v2:
        hole_best = np.zeros(L, dtype=np.float64)
        n_holes = np.zeros(L, dtype=np.int64)
        _holes_pass(q, order, start, levels, need_holes, gt, hole_best, n_holes)
        for li in range(L):
            if hole_best[li] > v2[li]:
                v2[li] = hole_best[li]
    return v2, v1, undecided, n_boxes
