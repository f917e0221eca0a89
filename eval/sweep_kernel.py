"""Compiled one-pass threshold sweep (numba). Used by :mod:`eval.sweep`; import it only through there.

Given a quantized score map ``q`` (uint8 ``[H, W]``) and the distinct binarization levels ``t``
(foreground ``q > t``), :func:`sweep_levels` returns, for every level, the best IoU against the GT
boxes of the boxes that ``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)`` would give, without
calling OpenCV. It relies on these facts about OpenCV's contours (each checked against the
installed OpenCV on random maps in ``tests/eval/test_sweep.py``):

1. pixels outside the image count as background; foreground is 8-connected, background 4-connected;
2. **outer contours** are the 8-connected foreground components; ``cv2.boundingRect`` of one is the
   component's pixel bounding box;
3. **hole contours** are the 4-connected background components that do not touch the image border;
   ``cv2.boundingRect`` of one is the hole's pixel box grown by one pixel on every side (so it lies
   inside the enclosing component's box);
4. ``cv2.contourArea`` of an outer contour is ``#(2x2 pixel blocks fully inside) + 0.5 *
   #(2x2 blocks with 3 pixels inside)`` of the component with its holes filled;
5. a hole contour's area never exceeds its component's outer area, a component nested in a hole
   is strictly smaller than the enclosing one, and parents are listed before their children; so
   the largest contour (V1) is the outer contour of a top-level component;
6. top-level outer contours are listed in decreasing order of their first pixel (row-major), so
   among equal areas ``max()`` keeps the component starting last. This one is probed at run time
   (:func:`eval.sweep.opencv_tie_order`); without it, ties with different outcomes are flagged
   for the caller to resolve with OpenCV.

Algorithm: the foreground is swept once by a union-find over pixels in *decreasing* ``q`` (the
foreground only grows as ``t`` decreases). Each component keeps its box, its first pixel, its
doubled block area and 4x its Euler number (Gray's bit quads for 8-connectivity:
``4E = n1 - n3 - 2 * n_diagonal``; holes = ``1 - E``), all additive because every foreground pixel
of a 2x2 block belongs to the same component. A component without holes has its exact polygon
area; one with holes gets it by filling its holes inside its box (:func:`_filled_area2`), done
only at levels where its area decides between boxes with different outcomes. The background is
swept (union-find in *increasing* ``q``, 4-connectivity, the padding ring belongs to an
"outside" set) only for levels with a holed component whose hole boxes could beat the outer boxes
(hole boxes lie inside its box, so ``max |GT inside box| / |GT|`` bounds their IoU).

Union-find layout: ``label`` is the label image padded by one pixel; ``label[p]`` is the set a
pixel joined (``-1`` before it is added). Set ids are allocated sequentially and a small table
(``sp`` parents, ``sd`` data) holds them, so most pixels touch one hot row. Everything here is
pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Indexed by the bit mask of a 2x2 block (top-left 1, top-right 2, bottom-left 4, bottom-right 8):
# doubled polygon-area share max(0, k - 2) of a block with k pixels in, and 4x its Euler-number
# share for 8-connected sets (+1 one pixel, -1 three pixels, -2 the diagonal pairs 6 and 9).
_F2 = np.array([max(0, bin(m).count("1") - 2) for m in range(16)], dtype=np.int64)
_EU = np.array([1 if bin(m).count("1") == 1 else -1 if bin(m).count("1") == 3 else
                -2 if m in (6, 9) else 0 for m in range(16)], dtype=np.int64)

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
def _sort_by_value(q):
    """Counting sort of the pixels by value (row-major within a value).

    Returns ``order`` (int32 ``[N]``: index of each pixel in the label image padded by one pixel on
    every side, ``(y + 1) * (W + 2) + x + 1``) and the bucket starts ``start`` (int64 ``[257]``:
    pixels of value ``v`` are ``order[start[v]:start[v + 1]]``). Only one array is scattered (the
    coordinates are recovered with :func:`_yx`), which keeps the sort cache-friendly.
    """
    H, W = q.shape
    W2 = W + 2
    start = np.zeros(257, dtype=np.int64)
    for y in range(H):
        for x in range(W):
            start[q[y, x] + 1] += 1
    for v in range(256):
        start[v + 1] += start[v]
    fill = start[:256].copy()
    order = np.empty(H * W, dtype=np.int32)
    for y in range(H):
        base = (y + 1) * W2 + 1
        for x in range(W):
            v = q[y, x]
            f = fill[v]
            order[f] = base + x
            fill[v] = f + 1
    return order, start


@njit(cache=True)
def _yx(pp, W2, inv_w2):
    """Image coordinates ``(y, x)`` of padded index ``pp`` (``inv_w2 = 1 / (W + 2)``; the float
    quotient is exact to far below 1/W2 for any image that fits in memory)."""
    yp = int((pp + 0.5) * inv_w2)
    return yp - 1, pp - yp * W2 - 1


@njit(cache=True, inline="always")
def _sroot(sp, s):
    """Root of set ``s`` (path halving)."""
    while sp[s] != s:
        g = sp[sp[s]]
        sp[s] = g
        s = g
    return s


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


@njit(cache=True)
def _filled_area2(label, sp, r, x0, y0, x1, y1, W2):
    """Doubled polygon area of the outer contour of set ``r`` (pixel box ``x0..x1, y0..y1``): the
    block area of the set with its holes filled. The outside of the set is flooded (4-connectivity)
    from a one-pixel margin around its box through every pixel not in the set."""
    w = x1 - x0 + 3
    h = y1 - y0 + 3
    # state: 1 = in the set, 2 = outside (flooded), 0 = enclosed
    st = np.zeros(w * h, dtype=np.uint8)
    for yy in range(1, h - 1):
        base = (y0 + yy) * W2 + x0  # padded label index of pixel (x0 + xx - 1, y0 + yy - 1)
        for xx in range(1, w - 1):
            s = label[base + xx]
            if s >= 0 and _sroot(sp, s) == r:
                st[yy * w + xx] = 1
    stack = np.empty(w * h, dtype=np.int32)
    top = 0
    for i in range(w):
        for c in (i, (h - 1) * w + i):
            if st[c] == 0:
                st[c] = 2
                stack[top] = c
                top += 1
    for yy in range(1, h - 1):
        for c in (yy * w, yy * w + w - 1):
            if st[c] == 0:
                st[c] = 2
                stack[top] = c
                top += 1
    while top > 0:
        top -= 1
        c = stack[top]
        cy = c // w
        cx = c - cy * w
        if cx > 0 and st[c - 1] == 0:
            st[c - 1] = 2
            stack[top] = c - 1
            top += 1
        if cx < w - 1 and st[c + 1] == 0:
            st[c + 1] = 2
            stack[top] = c + 1
            top += 1
        if cy > 0 and st[c - w] == 0:
            st[c - w] = 2
            stack[top] = c - w
            top += 1
        if cy < h - 1 and st[c + w] == 0:
            st[c + w] = 2
            stack[top] = c + w
            top += 1
    area2 = 0
    for yy in range(h - 1):
        for xx in range(w - 1):
            c = yy * w + xx
            k = ((st[c] != 2) + (st[c + 1] != 2) + (st[c + w] != 2) + (st[c + w + 1] != 2))
            if k > 2:
                area2 += k - 2
    return area2


@njit(cache=True)
def _holes_pass(q, order, start, levels, wanted, gt, hole_best, n_holes):
    """Background sweep: for every level ``li`` with ``wanted[li]``, the best IoU of the hole
    contours' boxes (``hole_best[li]``, 0 without holes) and their number (``n_holes[li]``).

    Union-find over pixels in increasing ``q`` (the background ``q <= t`` grows with ``t``),
    4-connectivity; the padding ring of the label image belongs to set 0, the outside, so every
    background component touching the border joins it. Holes are the other live sets.
    """
    H, W = q.shape
    W2 = W + 2
    inv_w2 = 1.0 / W2
    N = H * W
    L = levels.shape[0]
    tmax = -1
    level_index = np.full(257, -1, dtype=np.int64)
    for li in range(L):
        if wanted[li]:
            level_index[levels[li]] = li
            tmax = levels[li]
    if tmax < 0:
        return
    label = np.full((H + 2) * W2, -1, dtype=np.int32)
    for x in range(W2):
        label[x] = 0
        label[(H + 1) * W2 + x] = 0
    for y in range(H + 2):
        label[y * W2] = 0
        label[y * W2 + W + 1] = 0
    offs = np.array([-1, 1, -W2, W2], dtype=np.int64)
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
    for v in range(tmax + 1):
        for j in range(start[v], start[v + 1]):
            pp = order[j]
            y, x = _yx(pp, W2, inv_w2)
            rp = -1
            for k in range(4):
                nb = pp + offs[k]
                s = label[nb]
                if s < 0 or s == rp:
                    continue
                rb = _sroot(sp, s)
                if rb != s:
                    label[nb] = rb
                if rp < 0:
                    rp = rb
                    continue
                if rb == rp:
                    continue
                rp, rb, nlive = _merge_sets(sp, sd, live, nlive, rp, rb)
            if rp < 0:
                s = nsets
                nsets += 1
                nlive = _new_set(sp, sd, live, nlive, s, x, y)
                label[pp] = s
            else:
                label[pp] = rp
                _grow_set(sd, rp, x, y)
        li = level_index[v]
        if li >= 0:
            best = 0.0
            for i in range(1, nlive):
                r = live[i]
                iou = _box_iou(sd[r, 1] - 1, sd[r, 2] - 1, min(sd[r, 3] + 2, W - 1),
                               min(sd[r, 4] + 2, H - 1), gt)
                if iou > best:
                    best = iou
            hole_best[li] = best
            n_holes[li] = nlive - 1


@njit(cache=True)
def sweep_levels(q, levels, gt, deltas, want_v1, want_v2, ties_by_order):
    """Best IoU of the protocol's boxes at every requested level of one quantized map.

    ``q``: uint8 ``[H, W]``; ``levels``: int64 ``[L]`` strictly increasing, each in ``0..254``
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
    inv_w2 = 1.0 / W2
    W1 = W + 1
    N = H * W
    L = levels.shape[0]
    level_index = np.full(257, -1, dtype=np.int64)
    for li in range(L):
        level_index[levels[li]] = li
    order, start = _sort_by_value(q)

    v2 = np.zeros(L, dtype=np.float64)
    v1 = np.zeros(L, dtype=np.float64)
    undecided = np.zeros(L, dtype=np.int8)
    n_boxes = np.zeros(L, dtype=np.int64)
    need_holes = np.zeros(L, dtype=np.bool_)
    iou_empty = _box_iou(0, 0, 0, 0, gt)

    # Foreground sweep: union-find over pixels in decreasing q, 8-connectivity. The padding ring
    # of the label image stays -1 (never foreground).
    label = np.full((H + 2) * W2, -1, dtype=np.int32)
    offs = np.array([-W2 - 1, -W2, -W2 + 1, -1, 1, W2 - 1, W2, W2 + 1], dtype=np.int64)
    sp = np.empty(N, dtype=np.int32)
    sd = np.empty((N, 10), dtype=np.int32)
    live = np.empty(N, dtype=np.int32)
    kb = np.zeros((H + 1) * W1, dtype=np.uint8)  # bit mask of each 2x2 block, by top-left + (1, 1)
    ious = np.empty(N, dtype=np.float64)  # IoU of each live set's box at the current level
    a_lo = np.empty(N, dtype=np.int64)  # V1 scratch: bounds of the doubled outer areas
    a_up = np.empty(N, dtype=np.int64)
    known = np.empty(N, dtype=np.bool_)
    cand = np.empty(N, dtype=np.int32)
    nlive = 0
    nsets = 0
    for v in range(255, levels[0], -1):
        for j in range(start[v], start[v + 1]):
            pp = order[j]
            y, x = _yx(pp, W2, inv_w2)
            rp = -1
            for k in range(8):
                nb = pp + offs[k]
                s = label[nb]
                if s < 0 or s == rp:
                    continue
                rb = _sroot(sp, s)
                if rb != s:
                    label[nb] = rb
                if rp < 0:
                    rp = rb
                    continue
                if rb == rp:
                    continue
                rp, rb, nlive = _merge_sets(sp, sd, live, nlive, rp, rb)
                sd[rp, 6] += sd[rb, 6]
                sd[rp, 7] += sd[rb, 7]
                if sd[rb, 8] < sd[rp, 8]:
                    sd[rp, 8] = sd[rb, 8]
            # p is the bottom-right, bottom-left, top-right and top-left pixel of the 2x2 blocks
            # with top-left corners (x-1, y-1), (x, y-1), (x-1, y), (x, y)
            b = y * W1 + x
            m = kb[b]
            kb[b] = m | 8
            da = _F2[m | 8] - _F2[m]
            de = _EU[m | 8] - _EU[m]
            m = kb[b + 1]
            kb[b + 1] = m | 4
            da += _F2[m | 4] - _F2[m]
            de += _EU[m | 4] - _EU[m]
            m = kb[b + W1]
            kb[b + W1] = m | 2
            da += _F2[m | 2] - _F2[m]
            de += _EU[m | 2] - _EU[m]
            m = kb[b + W1 + 1]
            kb[b + W1 + 1] = m | 1
            da += _F2[m | 1] - _F2[m]
            de += _EU[m | 1] - _EU[m]
            if rp < 0:
                s = nsets
                nsets += 1
                nlive = _new_set(sp, sd, live, nlive, s, x, y)
                sd[s, 6] = da
                sd[s, 7] = de
                sd[s, 8] = y * W + x
                label[pp] = s
            else:
                label[pp] = rp
                _grow_set(sd, rp, x, y)
                sd[rp, 6] += da
                sd[rp, 7] += de
                if y * W + x < sd[rp, 8]:
                    sd[rp, 8] = y * W + x
        li = level_index[v - 1]
        if li < 0:
            continue
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
                    bound = _coverage_bound(sd[r, 1], sd[r, 2], min(sd[r, 3] + 1, W - 1),
                                            min(sd[r, 4] + 1, H - 1), gt)
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
        # count); with holes between that and the box spanned by the pixel centres, computed
        # exactly (hole filling) only while some candidate with a different outcome could win.
        max_low = -1
        for i in range(nlive):
            r = live[i]
            a_lo[i] = sd[r, 6]
            if sd[r, 7] < 4:
                a_up[i] = 2 * (sd[r, 3] - sd[r, 1]) * (sd[r, 4] - sd[r, 2])
                known[i] = False
            else:
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
            best = -1
            for c in range(nc):
                i = cand[c]
                if known[i] and a_lo[i] > best:
                    best = a_lo[i]
            # the components that may still be the largest: known with the best area, unknown
            # whose bound reaches it; stop when they all give the same outcome
            first = -1
            same = True
            next_i = -1
            for c in range(nc):
                i = cand[c]
                if known[i]:
                    if a_lo[i] != best:
                        continue
                elif a_up[i] < best:
                    continue
                elif next_i < 0 or a_up[i] > a_up[next_i]:
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
                a = _filled_area2(label, sp, r, sd[r, 1], sd[r, 2], sd[r, 3], sd[r, 4], W2)
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
