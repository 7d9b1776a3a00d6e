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
Each sign has its own counts (``d < 0`` and ``d >= 0``).

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


@cached_njit(nogil=True, inline="always")
def _code(magnitude):
    """The histogram code of ``|d|``: 0 for zero, else 1 + its top bits."""
    bits = _float_bits(magnitude)
    if bits == 0:
        return 0
    return np.int64(bits >> _SHIFT) + 1


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
    candidates,
    found,
):
    """Histograms and worst-row candidates of rows ``start:`` of a chunk.

    ``preds`` is ``(predictions, rows)``; ``weight`` and ``slices`` (slice
    codes) are empty when absent. ``counts`` is ``(predictions, 2, NCODES)``
    (empty: no histogram); ``pages`` ``(predictions, 2, NPAGES)`` (-1: no
    page yet), ``limbs`` ``(predictions, pool, PAGE, LIMBS)`` and ``used``
    (pages used per prediction) hold the exact weight sums from unit
    ``base``; ``odd`` receives the rows whose weight lies outside the window.
    ``heaps`` is ``(predictions, slices, k)`` with ``sizes`` ``(predictions,
    slices)`` (k = 0: no worst rows); ``candidates`` ``(predictions, rows)``.
    ``found`` counts the candidates of each prediction, then the odd rows.
    Rows with a non-finite value, a negative weight or an overflowing
    residual are left out (the exact statistics refuse or skip them).

    Returns the row to resume at when the pool of pages is full, else the
    number of rows.
    """
    n = y_true.shape[0]
    npred = preds.shape[0]
    weighted = weight.shape[0] > 0
    sliced = slices.shape[0] > 0
    histogram = counts.shape[0] > 0
    k = heaps.shape[2]
    pool = limbs.shape[1]
    for i in range(start, n):
        y = y_true[i]
        w = 1.0
        if weighted:
            w = weight[i]
            if not (w >= 0.0 and w <= _LARGEST):
                continue
        kept = True
        for j in range(npred):
            if not (abs(preds[j, i] - y) <= _LARGEST):
                kept = False
                break
        if not kept:
            continue
        mantissa = np.uint64(0)
        shift = np.uint64(0)
        if histogram and weighted and w > 0.0:
            bits = _float_bits(w)
            biased = np.int64(bits >> _C52)
            mantissa = bits & _MANTISSA
            if biased > 0:
                mantissa |= _IMPLICIT
            offset = max(biased, 1) - 1075 - base
            if offset < 0 or offset > WEIGHT_SPAN:
                odd[found[npred]] = i
                found[npred] += 1
                mantissa = np.uint64(0)
            else:
                shift = np.uint64(offset)
                for j in range(npred):
                    d = preds[j, i] - y
                    page = np.uint64(_code(abs(d))) >> _PAGE_SHIFT
                    sign = 1 if d < 0 else 0
                    if pages[j, sign, page] < 0:
                        if used[j] == pool:
                            return i
                        pages[j, sign, page] = used[j]
                        used[j] += 1
        for j in range(npred):
            d = preds[j, i] - y
            magnitude = abs(d)
            if histogram:
                code = _code(magnitude)
                sign = 1 if d < 0 else 0
                counts[j, sign, code] += 1
                if mantissa != 0:
                    page = pages[j, sign, np.uint64(code) >> _PAGE_SHIFT]
                    slot = np.uint64(code) & _SLOT
                    low = mantissa << shift
                    high = mantissa >> (_C64 - shift) if shift > 0 else np.uint64(0)
                    limbs[j, page, slot, 0] += low & _LOW32
                    limbs[j, page, slot, 1] += low >> _C32
                    limbs[j, page, slot, 2] += high & _LOW32
                    limbs[j, page, slot, 3] += high >> _C32
            if k > 0 and w > 0.0:
                s = slices[i] if sliced else 0
                size = sizes[j, s]
                if size < k or magnitude >= heaps[j, s, 0]:
                    candidates[j, found[j]] = i
                    found[j] += 1
                    sizes[j, s] = _push(heaps[j, s], size, magnitude)
    return n
