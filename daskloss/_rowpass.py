"""Compiled code of the distribution pass: residual histograms and worst-row candidates.

One loop over a chunk's rows computes each prediction's residual
``d = fl(y_pred - y_true)`` (the very float the exact kernel sums), counts it
in its histogram bin, adds the row's weight to the bin's exact weight sum and
offers ``|d|`` to the slice's running top ``k``. It lives apart from
:mod:`daskloss._kernel` (whose compiled module is keyed to numba's cache by
its own file) and uses nothing of its internals.

Bins: a residual's code is 0 when ``d == 0``, else ``1 +`` the top
``12 + MANTISSA_BITS`` bits of ``|d|``'s IEEE-754 pattern after the sign: its
biased exponent and the first ``MANTISSA_BITS`` bits of its mantissa. A bin
of a normal float64 is ``[m * 2**e, (m + 1) * 2**e)`` with ``m`` from
``2**MANTISSA_BITS`` to ``2**(MANTISSA_BITS + 1) - 1``: the same fixed bins
on every worker, whatever the data's range, so histograms merge by addition.
Each sign has its own counts (``d < 0`` and ``d >= 0``; ``-0.0`` is zero).

Exact weight sums per bin: a weight ``w = M * 2**u`` (``M < 2**53``) whose
unit ``u`` lies within ``WEIGHT_SPAN`` binades above the unit's ``base`` is
the integer ``M << (u - base)`` (below ``2**113``) in units of ``2**base``,
cut into four 32-bit limbs added to plain uint64 sums (room for ``2**32``
rows). Rows whose weight lies outside that window are listed (``odd``) and
added exactly by the driver. The sums of a bin live in a page of
``2**MANTISSA_BITS`` bins, allocated as bins are first touched; when the pool
is full the loop returns the row to resume at, and the driver grows the pool.

Worst rows: per prediction and slice, a min-heap of the ``k`` largest ``|d|``
seen (rows of positive weight only, as ``max_error``). A row is a candidate
when the heap is not full or ``|d|`` is at least its smallest value, ties
included, so every row of the final top ``k`` (under any tie-break) is
among the candidates.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from daskloss._kernel.jit import cached_njit

__all__ = ["LIMBS", "MANTISSA_BITS", "NCODES", "NPAGES", "PAGE", "WEIGHT_SPAN", "observe"]

#: Bits of the mantissa that place a residual in its bin: 2**MANTISSA_BITS bins per binade.
MANTISSA_BITS = 7
_SHIFT = np.uint64(52 - MANTISSA_BITS)
#: Codes: 0 for zero, then one per bin of a finite float64 (the largest is 262016).
NCODES = (2047 << MANTISSA_BITS) + 1
#: Bins per page of exact weight sums, and pages covering every code.
PAGE = 1 << MANTISSA_BITS
NPAGES = -(-NCODES // PAGE)
_PAGE_SHIFT = np.uint64(MANTISSA_BITS)
_SLOT = np.uint64(PAGE - 1)
#: 32-bit limbs of a weight placed in the window (below 2**113).
LIMBS = 4
#: Binades above the window's base that a weight's unit may lie at.
WEIGHT_SPAN = 60
_C52 = np.uint64(52)
_C63 = np.uint64(63)
_ABS = np.uint64((1 << 63) - 1)
_NCODES = np.uint64(NCODES)
_NPAGES = np.uint64(NPAGES)
_C32 = np.uint64(32)
_C64 = np.uint64(64)
_LOW32 = np.uint64(0xFFFFFFFF)
_MANTISSA = np.uint64((1 << 52) - 1)
_IMPLICIT = np.uint64(1 << 52)
_LARGEST = 1.7976931348623157e308


@intrinsic
def _float_bits(typingctx, x):
    """The IEEE-754 bit pattern of a float64 as a uint64."""
    signature = types.uint64(types.float64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return signature, codegen


@cached_njit(nogil=True)
def _push(heap, size, value):
    """Offer ``value`` to the min-heap ``heap[:size]`` of capacity ``len(heap)``; the new size."""
    k = heap.shape[0]
    if size < k:
        at = size
        heap[at] = value
        while at > 0:
            parent = (at - 1) // 2
            if heap[parent] <= heap[at]:
                break
            heap[parent], heap[at] = heap[at], heap[parent]
            at = parent
        return size + 1
    if value <= heap[0]:
        return size
    heap[0] = value
    at = 0
    while True:
        left = 2 * at + 1
        if left >= k:
            break
        child = left
        if left + 1 < k and heap[left + 1] < heap[left]:
            child = left + 1
        if heap[at] <= heap[child]:
            break
        heap[at], heap[child] = heap[child], heap[at]
        at = child
    return size


@cached_njit(nogil=True)
def _kept_rows(y_true, preds, weight):
    """Rows whose values are all finite, their weight non-negative and residuals finite."""
    n = y_true.shape[0]
    kept = np.ones(n, np.bool_)
    weighted = weight.shape[0] > 0
    for i in range(n):
        ok = True
        if weighted:
            w = weight[i]
            ok = w >= 0.0 and w <= _LARGEST
        for j in range(preds.shape[0]):
            ok = ok and abs(preds[j, i] - y_true[i]) <= _LARGEST
        kept[i] = ok
    return kept


@cached_njit(nogil=True)
def observe(
    y_true,
    preds,
    weight,
    slices,
    start,
    counts,
    pages,
    limbs,
    used,
    base,
    odd,
    heaps,
    sizes,
    floors,
    candidates,
    found,
):
    """Histograms and worst-row candidates of a chunk, from step ``start``.

    ``preds`` is ``(predictions, rows)``; ``weight`` and ``slices`` (slice
    codes) are empty when absent. ``counts`` is ``(predictions, 2 * NCODES)``,
    ``d >= 0`` then ``d < 0`` (``(predictions, 0)``: no histogram). ``pages``
    ``(predictions, 2 * NPAGES)`` (-1: no page yet), ``limbs`` ``(predictions,
    pool, PAGE, LIMBS)`` and ``used`` (pages used per prediction) hold the
    exact weight sums from unit ``base``; ``odd`` receives the rows whose
    weight lies outside the window. ``heaps`` is ``(predictions, slices, k)``
    with ``sizes`` and ``floors`` (the heap's smallest value once full, else
    -1) ``(predictions, slices)``; ``candidates`` ``(predictions, rows)``
    (``(predictions, 0)`` and k = 0: no worst rows). ``found`` counts the
    candidates of each prediction, then the odd rows. Rows with a non-finite
    value, a negative weight or an overflowing residual are left out (the
    exact statistics refuse or skip them).

    Step ``j * rows + i`` is row ``i`` of prediction ``j``. Returns the step to
    resume at when the pool of pages is full, else ``predictions * rows``.
    """
    n = y_true.shape[0]
    npred = preds.shape[0]
    masked = npred > 1 or weight.shape[0] > 0
    kept = _kept_rows(y_true, preds, weight) if masked else np.ones(0, np.bool_)
    for j in range(start // n if n else npred, npred):
        first = start - j * n if j * n <= start else 0
        stop = _one_prediction(
            y_true,
            preds[j],
            weight,
            kept,
            slices,
            first,
            counts[j],
            pages[j],
            limbs[j],
            used,
            j,
            base,
            odd,
            heaps[j],
            sizes[j],
            floors[j],
            candidates[j],
            found,
        )
        if stop < n:
            return j * n + stop
    return npred * n


@cached_njit(nogil=True)
def _one_prediction(
    y_true,
    pred,
    weight,
    kept,
    slices,
    first,
    counts,
    pages,
    limbs,
    used,
    j,
    base,
    odd,
    heap,
    sizes,
    floors,
    candidates,
    found,
):
    """One prediction's rows from ``first`` (see :func:`observe`); the row it stopped at."""
    n = y_true.shape[0]
    masked = kept.shape[0] > 0
    weighted = weight.shape[0] > 0
    sliced = slices.shape[0] > 0
    histogram = counts.shape[0] > 0
    k = heap.shape[1]
    pool = limbs.shape[0]
    npred_odd = found.shape[0] - 1
    taken = found[j]
    for i in range(first, n):
        if masked and not kept[i]:
            continue
        d = pred[i] - y_true[i]
        if not masked and not (abs(d) <= _LARGEST):
            continue
        w = weight[i] if weighted else 1.0
        bits = _float_bits(d)
        magnitude = bits & _ABS
        nonzero = np.uint64(magnitude != 0)
        sign = (bits >> _C63) & nonzero
        code = (magnitude >> _SHIFT) + nonzero
        if histogram:
            mantissa = np.uint64(0)
            shift = np.uint64(0)
            slot = np.int64(0)
            if weighted and w > 0.0:
                wbits = _float_bits(w)
                biased = np.int64(wbits >> _C52)
                offset = max(biased, 1) - 1075 - base
                if offset < 0 or offset > WEIGHT_SPAN:
                    if j == 0:
                        odd[found[npred_odd]] = i
                        found[npred_odd] += 1
                else:
                    mantissa = wbits & _MANTISSA
                    if biased > 0:
                        mantissa |= _IMPLICIT
                    shift = np.uint64(offset)
                    at = np.int64(sign * _NPAGES + (code >> _PAGE_SHIFT))
                    slot = pages[at]
                    if slot < 0:
                        if used[j] == pool:
                            found[j] = taken
                            return i
                        slot = used[j]
                        pages[at] = slot
                        used[j] += 1
            counts[np.int64(sign * _NCODES + code)] += 1
            if mantissa != 0:
                cell = np.int64(code & _SLOT)
                low = mantissa << shift
                high = mantissa >> (_C64 - shift) if shift > 0 else np.uint64(0)
                limbs[slot, cell, 0] += low & _LOW32
                limbs[slot, cell, 1] += low >> _C32
                limbs[slot, cell, 2] += high & _LOW32
                limbs[slot, cell, 3] += high >> _C32
        if k > 0 and w > 0.0:
            s = slices[i] if sliced else 0
            value = abs(d)
            if value >= floors[s]:
                candidates[taken] = i
                taken += 1
                size = _push(heap[s], sizes[s], value)
                sizes[s] = size
                if size == k:
                    floors[s] = heap[s, 0]
    found[j] = taken
    return n
