"""Compiled code: every exact sum of a block of rows, by the row path or the window paths.

Everything numba compiles lives in this one module, so that numba's on-disk
cache (keyed by this file) can never run stale code. How the paths work, and
why they give the same integers, is written up in ``docs/kernel.md``.

Sinks: exact sums are kept in a *sink*, a tuple of arrays holding each sum
as a fixed-point multiword integer placed around its first term, with a
full-range integer in a pool for terms outside that range (:func:`add_wide`).
Signs are kept apart, so every add is of a non-negative integer.

* The *row path* (:func:`rows_unweighted`, :func:`rows_weighted`) adds every
  term of every row to the sink: the reference, and the road for stretches
  holding non-finite values.
* The *window paths* (:func:`windows_unweighted`, :func:`windows_weighted`)
  sum 26-bit limbs of values placed in a window of binades in plain uint64
  lanes, one stretch of rows at a time, then add the lane sums to the sink.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from daskloss._kernel.jit import cached_njit
from daskloss.exact import FRACTION_BITS

__all__ = [
    "ACCUMULATORS",
    "ANCHOR_BELOW",
    "COUNTS",
    "FULL_WORDS",
    "HEADER_ROWS",
    "NBINS",
    "POOL_ROWS",
    "STATE_COLUMNS",
    "STRETCH_ROWS",
    "WEIGHTED_STRETCH_ROWS",
    "WORDS",
    "rows_unweighted",
    "rows_weighted",
    "windows_unweighted",
    "windows_weighted",
]


#: Binades a window spans (three 26-bit limbs hold a 53-bit mantissa shifted by up to 25).
WINDOW = np.uint64(25)
#: Binades a window reaches above the largest value that placed it, so the next
#: stretch's window (placed from this one's largest value) rarely misses.
_HEADROOM = np.uint64(3)
#: The largest finite float's biased exponent, and the unit of its mantissa.
_LARGEST_BIASED = np.uint64(2046)
_LARGEST_UNIT = 2046 - 1075
#: Bits of a full-range integer: every unit from ``2**-FRACTION_BITS`` up to the top
#: bit of a product of five largest floats (``w * d**4``), with the headroom a window
#: can have above its values, and 64 bits to spare.
NBINS = FRACTION_BITS + 5 * (_LARGEST_UNIT + 53 + int(_HEADROOM)) + 64
#: Words of a sum's fixed-point integer in a sink (the top one is headroom for carries).
WORDS = 16
#: Bits a sum's fixed-point range keeps below its first non-zero term.
ANCHOR_BELOW = 384
#: The highest shift a 128-bit term may have: it spans three words, below the headroom word.
_TOP_SHIFT = 64 * (WORDS - 3) - 1
#: Columns of a state row: the words, the anchor (int64 bits), the pool entry (0: none).
STATE_COLUMNS = WORDS + 2
_ANCHOR, _ENTRY = WORDS, WORDS + 1
#: Words of a full-range integer (every unit from ``2**-FRACTION_BITS`` up), and the
#: state rows a pool entry takes.
FULL_WORDS = (NBINS + 128) // 64 + 3
POOL_ROWS = -(-FULL_WORDS // STATE_COLUMNS)
#: The header row of a state array: where the pool starts, entries used and their room.
_HEADER, _POOL_START, _POOL_USED, _POOL_ROOM = 0, 0, 1, 2
HEADER_ROWS = 1
UNSET = np.int64(-(2**62))

_FRACTION_MASK = np.uint64((1 << 52) - 1)
_LOW53 = np.uint64((1 << 53) - 1)
_U0 = np.uint64(0)
_U1 = np.uint64(1)


@intrinsic
def _float_bits(typingctx, x):
    """The IEEE-754 bit pattern of a float64 as a uint64."""
    signature = types.uint64(types.float64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return signature, codegen


@intrinsic
def _mul_wide(typingctx, a, b):
    """The full 128-bit product of two uint64 as ``(high, low)`` words."""
    signature = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, sig, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        low = builder.trunc(product, ir.IntType(64))
        high = builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
        return context.make_tuple(builder, sig.return_type, [high, low])

    return signature, codegen


@njit(inline="always")
def split(x):
    """``(m, u)`` with ``|x| == m * 2**u`` for a finite float64 ``x``.

    ``m`` is the integer mantissa (uint64, below 2**53) and ``u`` the exponent
    of its unit (from -1074): the unit of a product is the sum of the units.
    """
    bits = _float_bits(x)
    biased = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF))
    mantissa = (bits & _FRACTION_MASK) | (np.uint64(biased != 0) << np.uint64(52))
    return mantissa, max(biased, 1) - 1075


@njit(inline="always")
def _shifted(shift, high, low):
    """``(high * 2**64 + low) << (shift % 64)`` as three words, lowest first."""
    r = np.uint64(shift & 63)
    if r == _U0:
        return low, high, _U0
    left = np.uint64(64) - r
    return low << r, (high << r) | (low >> left), high >> left


@njit(inline="always")
def _add_words(words, row, shift, high, low):
    """Add ``(high * 2**64 + low) << shift`` to the multiword integer in ``words[row]``.

    Words are little-endian; the caller leaves a word of headroom above the
    term, which absorbs every carry.
    """
    q = shift >> 6
    w0, w1, w2 = _shifted(shift, high, low)
    total = words[row, q] + w0
    carry = _U1 if total < w0 else _U0
    words[row, q] = total
    total = words[row, q + 1] + w1
    next_carry = _U1 if total < w1 else _U0
    total += carry
    next_carry += _U1 if total < carry else _U0
    words[row, q + 1] = total
    total = words[row, q + 2] + w2
    carry = _U1 if total < w2 else _U0
    total += next_carry
    carry += _U1 if total < next_carry else _U0
    words[row, q + 2] = total
    i = q + 3
    while carry != _U0:
        total = words[row, i] + carry
        carry = _U1 if total < carry else _U0
        words[row, i] = total
        i += 1


@njit(nogil=True)
def _add_outside(state, row, unit, high, low):
    """A term outside the fixed-point range of sum ``row``: place the range, or use the pool.

    A sum's first non-zero term places its range (``ANCHOR_BELOW`` bits under
    the term); a later term outside it goes to the sum's full-range integer,
    an entry of the pool opened on first use (the segment driver keeps room).
    """
    if (high | low) == _U0:
        return
    if np.int64(state[row, _ANCHOR]) == UNSET:
        state[row, _ANCHOR] = np.uint64(unit - ANCHOR_BELOW)
        _add_words(state, row, ANCHOR_BELOW, high, low)
        return
    entry = state[row, _ENTRY]
    if entry == _U0:
        state[_HEADER, _POOL_USED] += _U1
        entry = state[_HEADER, _POOL_USED]
        state[row, _ENTRY] = entry
    first = np.int64(state[_HEADER, _POOL_START]) + (np.int64(entry) - 1) * POOL_ROWS
    flat = state[first : first + POOL_ROWS].reshape(1, POOL_ROWS * STATE_COLUMNS)
    _add_words(flat, 0, unit + FRACTION_BITS, high, low)


@njit(nogil=True)
def add_wide(sink, k, unit, high, low):
    """Add the 128-bit ``high * 2**64 + low`` times ``2**unit`` to sum ``k`` of the sink.

    A sink is ``(state, first)``: sum ``k`` is row ``first + k`` of ``state``,
    a fixed-point integer of ``WORDS`` words whose lowest bit is worth
    ``2**anchor``, placed by the sum's first non-zero term; terms outside that
    range go to a full-range integer in the pool (see ``docs/kernel.md``).
    Either way nothing is rounded.
    """
    state, first = sink
    row = first + k
    shift = unit - np.int64(state[row, _ANCHOR])
    if shift >= 0 and shift <= _TOP_SHIFT:  # not when the range is unplaced (UNSET)
        _add_words(state, row, shift, high, low)
    else:
        _add_outside(state, row, unit, high, low)


@njit(inline="always")
def add_mantissa(sink, k, unit, m):
    """Add ``m * 2**unit`` to sum ``k``."""
    add_wide(sink, k, unit, _U0, m)


@njit(inline="always")
def add_product(sink, k, unit, a, b):
    """Add ``a * b * 2**unit`` (two mantissas) to accumulator ``k``; return ``a * b``.

    The product comes back as ``(high, low)`` words for :func:`add_triple`.
    """
    high, low = _mul_wide(a, b)
    add_wide(sink, k, unit, high, low)
    return high, low


@njit(inline="always")
def add_triple(sink, k, unit, high, low, c):
    """Add ``(high * 2**64 + low) * c * 2**unit`` for a product of two mantissas.

    The 106-bit product is split into 53-bit halves; each half times the
    mantissa ``c`` fits 128 bits.
    """
    upper = (high << np.uint64(11)) | (low >> np.uint64(53))
    add_product(sink, k, unit + 53, upper, c)
    add_product(sink, k, unit, low & _LOW53, c)


#: The sums of a sink: one exact sum each, signs apart.
ACCUMULATORS: tuple[str, ...] = (
    "weight",
    "squared_error",
    "positive_error",
    "negative_error",
    "target_positive",
    "target_negative",
    "target_squared",
)
_WEIGHT, _SQUARED, _POSITIVE, _NEGATIVE, _TARGET_POS, _TARGET_NEG, _TARGET_SQUARED = range(
    len(ACCUMULATORS)
)
#: The slots of the counts array: rows summed, and rows left out and why.
COUNTS: tuple[str, ...] = (
    "rows",
    "skipped",
    "nonfinite_true",
    "nonfinite_pred",
    "nonfinite_weight",
    "negative_weight",
    "residual_overflow",
)
_ROWS, _SKIPPED, _BAD_TRUE, _BAD_PRED, _BAD_WEIGHT, _NEGATIVE_WEIGHT, _OVERFLOW = range(len(COUNTS))


@njit(inline="always")
def _count_nonfinite(y, p, w, counts):
    """Count a row with a non-finite value, or whose finite values overflow."""
    bad_true = not math.isfinite(y)
    bad_pred = not math.isfinite(p)
    bad_weight = not math.isfinite(w)
    counts[_BAD_TRUE] += bad_true
    counts[_BAD_PRED] += bad_pred
    counts[_BAD_WEIGHT] += bad_weight
    if bad_true or bad_pred or bad_weight:
        counts[_SKIPPED] += 1
    else:
        counts[_OVERFLOW] += 1


@cached_njit(nogil=True)
def rows_unweighted(y_true, y_pred, weight, sink, counts):
    return _accumulate_block(y_true, y_pred, weight, False, sink, counts)


@cached_njit(nogil=True)
def rows_weighted(y_true, y_pred, weight, sink, counts):
    return _accumulate_block(y_true, y_pred, weight, True, sink, counts)


@njit(inline="always")
def _accumulate_block(y_true, y_pred, weight, weighted, sink, counts):
    """Accumulate one block of rows into ``sink`` and ``counts``; return max |d|.

    Inlined into one compiled function per value of ``weighted``, so the
    unweighted loop carries no trace of weights. Rows with a non-finite value,
    a negative weight or an overflowing residual are counted in their slot of
    ``counts`` and left out of every sum.
    """
    max_abs = 0.0
    rows = 0  # counted locally: a store to counts per row costs 15%
    for j in range(y_true.size):
        i = np.uint64(j)  # unsigned: numba skips negative-index wraparound
        y = y_true[i]
        p = y_pred[i]
        w = weight[i] if weighted else 1.0
        d = p - y
        if not (math.isfinite(d) and math.isfinite(y) and math.isfinite(w)):
            _count_nonfinite(y, p, w, counts)
        elif w < 0.0:
            counts[_NEGATIVE_WEIGHT] += 1
        else:
            rows += 1
            a = _add_row(sink, y, d, w, weighted)
            max_abs = max(max_abs, a if w > 0.0 else 0.0)
    counts[_ROWS] += rows
    return max_abs


@njit(inline="always")
def _add_row(sink, y, d, w, weighted):
    """Add one finite row (weight ``w >= 0``) to every sum; return ``|d|``."""
    a = abs(d)
    md, ud = split(a)
    my, uy = split(y)
    side = _POSITIVE if d > 0.0 else _NEGATIVE
    target_side = _TARGET_POS if y > 0.0 else _TARGET_NEG
    if weighted:
        mw, uw = split(w)
        add_mantissa(sink, _WEIGHT, uw, mw)
        high, low = add_product(sink, side, uw + ud, mw, md)
        add_triple(sink, _SQUARED, uw + 2 * ud, high, low, md)
        high, low = add_product(sink, target_side, uw + uy, mw, my)
        add_triple(sink, _TARGET_SQUARED, uw + 2 * uy, high, low, my)
    else:
        add_mantissa(sink, side, ud, md)
        add_product(sink, _SQUARED, 2 * ud, md, md)
        add_mantissa(sink, target_side, uy, my)
        add_product(sink, _TARGET_SQUARED, 2 * uy, my, my)
    return a


#: Rows per stretch: limb products below 2**52 leave 12 bits of headroom in a uint64.
STRETCH_ROWS = 4096
#: Windows per stretch and sum before the remaining small values go term by term to the sink.
MAX_WINDOWS = 3

_LIMB_MASK = np.uint64((1 << 26) - 1)
_LOW52 = np.uint64((1 << 52) - 1)
_MAGNITUDE = np.uint64((1 << 63) - 1)
_EXPONENT_MASK = np.uint64(0x7FF)
_C26, _C52, _C63 = np.uint64(26), np.uint64(52), np.uint64(63)


@njit(inline="always")
def _umax(a, b):
    """``max`` of two uint64, written out: the builtin is a call that can stop vectorisation."""
    return a if a > b else b


@njit(inline="always")
def _umin(a, b):
    """``min`` of two uint64, written out (see :func:`_umax`)."""
    return a if a < b else b


@intrinsic
def _bits_float(typingctx, bits):
    """The float64 with this IEEE-754 bit pattern."""
    signature = types.float64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return signature, codegen


@njit(nogil=True)
def _biased_unit(magnitude):
    """The unit of a float's mantissa as a biased exponent: ``u + 1075``, at least 1."""
    return _umax(magnitude >> _C52, _U1)


@njit(inline="always")
def _magnitude(x):
    """The bits of ``|x|``: ordered as the magnitudes are (non-finite values last)."""
    return _float_bits(x) & _MAGNITUDE


@njit(nogil=True)
def _base_unit(base):
    """The unit (exponent of ``2``) of a window's base, a biased exponent."""
    return np.int64(base) - 1075


@njit(nogil=True)
def _window_below(magnitude):
    """The window base whose top binade holds a value of this magnitude.

    Non-finite values count as the largest finite ones, so that no window (and
    no bin index) lies beyond those of finite values.
    """
    biased = _umin(_biased_unit(magnitude), _LARGEST_BIASED)
    return _umax(biased, WINDOW + _U1) - WINDOW


@njit(nogil=True)
def _above_window(magnitude, base):
    """Whether a value of this magnitude lies above the window at ``base``."""
    return _biased_unit(magnitude) > base + WINDOW


@njit(nogil=True)
def _window_around(magnitude):
    """The window base placed from a stretch's largest magnitude, with headroom above."""
    return _window_below(magnitude) + _HEADROOM


@njit(inline="always")
def _add_sides(sink, positive, negative, unit, total, negatives):
    """Add a sum of magnitudes whose negative terms sum to ``negatives``, signs apart."""
    add_mantissa(sink, positive, unit, total - negatives)
    add_mantissa(sink, negative, unit, negatives)


@njit(inline="always")
def _window_limbs(x, base):
    """``x`` in the window at ``base``: ``(magnitude, low, high, sign_mask)``.

    ``|x| = (low + high * 2**52) * 2**(base - 1075)`` with ``low < 2**52`` and
    ``high < 2**26`` when ``x`` lies in the window; both are zero when it does not.
    """
    bits = _float_bits(x)
    magnitude = bits & _MAGNITUDE
    biased = magnitude >> _C52
    m = (bits & _FRACTION_MASK) | (np.uint64(biased != _U0) << _C52)
    shift = _umax(biased, _U1) - base
    inside = shift <= WINDOW
    m = m if inside else _U0
    shift = shift if inside else _U0
    low = (m << shift) & _LOW52
    high = (m >> (_C52 - shift)) & _LIMB_MASK
    return magnitude, low, high, _U0 - (bits >> _C63)


@njit(nogil=True)
def _add_limbs(sums, low, high, sign_mask):
    """Add a window value, its negative part and its square (as limb products) to ``sums``.

    The square of ``v = a0 + a1 * 2**26 + a2 * 2**52`` is kept as the six limb products.
    """
    total_low, total_high, negative_low, negative_high, p00, p01, p02, p11, p12, p22 = sums
    a0 = low & _LIMB_MASK
    a1 = low >> _C26
    return (
        total_low + low, total_high + high,
        negative_low + (low & sign_mask), negative_high + (high & sign_mask),
        p00 + a0 * a0, p01 + a0 * a1, p02 + a0 * high,
        p11 + a1 * a1, p12 + a1 * high, p22 + high * high,
    )  # fmt: skip


_NO_SUMS = (_U0,) * 10


@njit(nogil=True)
def _window_value(y_true, y_pred, i, residual):
    """Row ``i``'s residual, or its target."""
    return y_pred[i] - y_true[i] if residual else y_true[i]


@njit(inline="always")
def _window_pass(y_true, y_pred, start, stop, base, residual):
    """Window sums of the residuals (or targets) of rows ``[start, stop)``."""
    sums = _NO_SUMS
    for j in range(start, stop):
        x = _window_value(y_true, y_pred, np.uint64(j), residual)
        _, low, high, sign_mask = _window_limbs(x, base)
        sums = _add_limbs(sums, low, high, sign_mask)
    return sums


@njit(inline="always")
def _both_windows(y_true, y_pred, start, stop, residual_base, target_base):
    """Residual and target window sums in one pass.

    For each: ``(sums, largest magnitude, smallest non-zero magnitude minus one)``
    (the minus one wraps zero to the largest uint64, out of the way).
    """
    residual_sums = _NO_SUMS
    target_sums = _NO_SUMS
    residual_top = _U0
    target_top = _U0
    residual_bottom = ~_U0
    target_bottom = ~_U0
    for j in range(start, stop):
        i = np.uint64(j)
        y = y_true[i]
        magnitude, low, high, sign_mask = _window_limbs(y_pred[i] - y, residual_base)
        residual_sums = _add_limbs(residual_sums, low, high, sign_mask)
        residual_top = _umax(residual_top, magnitude)
        residual_bottom = _umin(residual_bottom, magnitude - _U1)
        magnitude, low, high, sign_mask = _window_limbs(y, target_base)
        target_sums = _add_limbs(target_sums, low, high, sign_mask)
        target_top = _umax(target_top, magnitude)
        target_bottom = _umin(target_bottom, magnitude - _U1)
    residual = (residual_sums, residual_top, residual_bottom + _U1)
    return residual, (target_sums, target_top, target_bottom + _U1)


@njit(inline="always")
def _add_window(sink, positive, negative, squared, base, sums):
    """Add a window's sums to the sink of its sum (signs apart) and of its square."""
    total_low, total_high, negative_low, negative_high, p00, p01, p02, p11, p12, p22 = sums
    unit = _base_unit(base)
    _add_sides(sink, positive, negative, unit, total_low, negative_low)
    _add_sides(sink, positive, negative, unit + 52, total_high, negative_high)
    square = 2 * unit
    add_mantissa(sink, squared, square, p00)
    add_wide(sink, squared, square + 26, p01 >> _C63, p01 << _U1)
    add_wide(sink, squared, square + 52, p02 >> _C63, p02 << _U1)
    add_mantissa(sink, squared, square + 52, p11)
    add_wide(sink, squared, square + 78, p12 >> _C63, p12 << _U1)
    add_mantissa(sink, squared, square + 104, p22)


@njit(nogil=True)
def _under(magnitude, base):
    """Whether a non-zero magnitude lies under the window at ``base``."""
    return magnitude != _U0 and _biased_unit(magnitude) < base


@njit(inline="always")
def _windows_under(y_true, y_pred, start, stop, base, smallest, residual, sink, sides):
    """Sums of the values under the window at ``base``: lower windows, then the sink."""
    positive, negative, squared = sides
    for _ in range(MAX_WINDOWS - 1):
        top_under = _U0
        for j in range(start, stop):
            x = _window_value(y_true, y_pred, np.uint64(j), residual)
            magnitude = _magnitude(x)
            top_under = _umax(top_under, magnitude if _under(magnitude, base) else _U0)
        lower = _window_below(top_under)
        if lower + WINDOW >= base:  # near zero: the windows would overlap
            break
        base = lower
        sums = _window_pass(y_true, y_pred, start, stop, base, residual)
        _add_window(sink, positive, negative, squared, base, sums)
        if not _under(smallest, base):
            return
    for j in range(start, stop):
        x = _window_value(y_true, y_pred, np.uint64(j), residual)
        if _under(_magnitude(x), base):
            m, unit = split(abs(x))
            add_mantissa(sink, negative if x < 0.0 else positive, unit, m)
            add_product(sink, squared, 2 * unit, m, m)


@cached_njit(nogil=True)
def _settle_window(y_true, y_pred, start, stop, base, window, residual, sink, sides):
    """Add one sum's window pass of a stretch to the sink; return the next stretch's base.

    ``window`` is ``(sums, largest magnitude, smallest non-zero magnitude)`` of
    the pass at ``base``. If values lay above the window, the pass is redone
    around the largest.
    """
    positive, negative, squared = sides
    sums, top, smallest = window
    if _above_window(top, base):
        base = _window_around(top)
        sums = _window_pass(y_true, y_pred, start, stop, base, residual)
    _add_window(sink, positive, negative, squared, base, sums)
    if _under(smallest, base):
        _windows_under(y_true, y_pred, start, stop, base, smallest, residual, sink, sides)
    return _window_around(top)


_RESIDUAL_SIDES = (_POSITIVE, _NEGATIVE, _SQUARED)
_TARGET_SIDES = (_TARGET_POS, _TARGET_NEG, _TARGET_SQUARED)


@cached_njit(nogil=True)
def windows_unweighted(y_true, y_pred, weight, sink, counts):
    """:func:`_accumulate_block` for unweighted rows, by window sums per stretch."""
    n = y_true.size
    if n == 0:
        return 0.0
    top_residual = _U0
    max_abs = 0.0
    residual_base = _window_around(_magnitude(y_pred[0] - y_true[0]))
    target_base = _window_around(_magnitude(y_true[0]))
    for start in range(0, n, STRETCH_ROWS):
        stop = min(start + STRETCH_ROWS, n)
        residual, target = _both_windows(y_true, y_pred, start, stop, residual_base, target_base)
        residual_top = residual[1]
        if residual_top >> _C52 == _EXPONENT_MASK:  # a non-finite residual, target or prediction
            rows = (y_true[start:stop], y_pred[start:stop], weight)
            max_abs = max(max_abs, rows_unweighted(*rows, sink, counts))
            continue
        counts[_ROWS] += stop - start
        top_residual = _umax(top_residual, residual_top)
        residual_base = _settle_window(
            y_true, y_pred, start, stop, residual_base, residual, True, sink, _RESIDUAL_SIDES
        )
        target_base = _settle_window(
            y_true, y_pred, start, stop, target_base, target, False, sink, _TARGET_SIDES
        )
    return max(max_abs, _bits_float(top_residual))


#: Rows per stretch of weighted rows: 512 diagonals of three products below 2**52.
WEIGHTED_STRETCH_ROWS = 512


@njit(inline="always")
def _three_limbs(low, high):
    """A window value ``low + high * 2**52`` as three 26-bit limbs."""
    return low & _LIMB_MASK, low >> _C26, high


@njit(inline="always")
def _diagonals_3x3(a, b):
    """The five diagonals of the product of two 3-limb numbers."""
    a0, a1, a2 = a
    b0, b1, b2 = b
    return (
        a0 * b0,
        a0 * b1 + a1 * b0,
        a0 * b2 + a1 * b1 + a2 * b0,
        a1 * b2 + a2 * b1,
        a2 * b2,
    )


@njit(inline="always")
def _square_six_limbs(a):
    """The square of a 3-limb number as six 26-bit limbs (carries passed up)."""
    c0, c1, c2, c3, c4 = _diagonals_3x3(a, a)
    e0 = c0 & _LIMB_MASK
    t = (c0 >> _C26) + c1
    e1 = t & _LIMB_MASK
    t = (t >> _C26) + c2
    e2 = t & _LIMB_MASK
    t = (t >> _C26) + c3
    e3 = t & _LIMB_MASK
    t = (t >> _C26) + c4
    return e0, e1, e2, e3, t & _LIMB_MASK, t >> _C26


@njit(inline="always")
def _add_products_3x6(sums, w, e):
    """Add the eight diagonals of the product of a 3-limb and a 6-limb number to ``sums``."""
    s0, s1, s2, s3, s4, s5, s6, s7 = sums
    w0, w1, w2 = w
    e0, e1, e2, e3, e4, e5 = e
    return (
        s0 + w0 * e0,
        s1 + w0 * e1 + w1 * e0,
        s2 + w0 * e2 + w1 * e1 + w2 * e0,
        s3 + w0 * e3 + w1 * e2 + w2 * e1,
        s4 + w0 * e4 + w1 * e3 + w2 * e2,
        s5 + w0 * e5 + w1 * e4 + w2 * e3,
        s6 + w1 * e5 + w2 * e4,
        s7 + w2 * e5,
    )


@njit(inline="always")
def _add_signed(sums, terms, sign_mask):
    """Add (or, under ``sign_mask``, subtract) terms to two's-complement sums."""
    s0, s1, s2, s3, s4 = sums
    t0, t1, t2, t3, t4 = terms
    return (
        s0 + ((t0 ^ sign_mask) - sign_mask),
        s1 + ((t1 ^ sign_mask) - sign_mask),
        s2 + ((t2 ^ sign_mask) - sign_mask),
        s3 + ((t3 ^ sign_mask) - sign_mask),
        s4 + ((t4 ^ sign_mask) - sign_mask),
    )


@njit(inline="always")
def _add_masked(sums, terms, mask):
    """Add the terms selected by ``mask`` (all ones or zero) to five sums."""
    s0, s1, s2, s3, s4 = sums
    t0, t1, t2, t3, t4 = terms
    return (
        s0 + (t0 & mask),
        s1 + (t1 & mask),
        s2 + (t2 & mask),
        s3 + (t3 & mask),
        s4 + (t4 & mask),
    )


@njit(inline="always")
def _outside(magnitude, low, high):
    """1 if a value is non-zero but outside its window (its limbs were zeroed), else 0."""
    return np.uint64(magnitude != _U0) & np.uint64((low | high) == _U0)


@njit(inline="always")
def _weighted_row_limbs(y_true, y_pred, weight, i, bases):
    """Window limbs of a row's weight, residual and target, and whether to leave it out.

    Returns ``(w, d, y, magnitudes, sign masks, left out)``.
    """
    weight_base, residual_base, target_base = bases
    y = y_true[i]
    mw, w_low, w_high, w_sign = _window_limbs(weight[i], weight_base)
    md, d_low, d_high, d_sign = _window_limbs(y_pred[i] - y, residual_base)
    my, y_low, y_high, y_sign = _window_limbs(y, target_base)
    # without branches, so that the loop vectorises
    left_out = (
        (w_sign & _U1)
        | _outside(mw, w_low, w_high)
        | _outside(md, d_low, d_high)
        | _outside(my, y_low, y_high)
    )
    keep = left_out - _U1  # all ones to keep the row, zero to leave it out
    w = _three_limbs(w_low & keep, w_high & keep)
    d = _three_limbs(d_low, d_high)
    y3 = _three_limbs(y_low, y_high)
    return w, d, y3, (mw, md, my), (d_sign, y_sign), left_out


_NO_FIVE = (_U0,) * 5
_NO_EIGHT = (_U0,) * 8


@njit(nogil=True)
def _weighted_pass(y_true, y_pred, weight, start, stop, bases):
    """Window sums of the weighted rows ``[start, stop)`` at ``bases`` (weight, residual, target).

    Returns the sums, the largest magnitude of each value, the largest ``|d|``
    of rows with a positive weight, and the number of rows left out.
    """
    weight_low = _U0
    weight_high = _U0
    residual_abs = _NO_FIVE
    residual_neg = _NO_FIVE
    squared = _NO_EIGHT
    target = _NO_FIVE
    target_squared = _NO_EIGHT
    top_w = _U0
    top_d = _U0
    top_y = _U0
    max_abs = _U0
    left_out = _U0
    for j in range(start, stop):
        i = np.uint64(j)
        w, d, y, magnitudes, signs, out = _weighted_row_limbs(y_true, y_pred, weight, i, bases)
        mw, md, my = magnitudes
        d_sign, y_sign = signs
        weight_low += w[0] | (w[1] << _C26)
        weight_high += w[2]
        wd = _diagonals_3x3(w, d)
        residual_abs = _add_masked(residual_abs, wd, ~_U0)
        residual_neg = _add_masked(residual_neg, wd, d_sign)
        squared = _add_products_3x6(squared, w, _square_six_limbs(d))
        target = _add_signed(target, _diagonals_3x3(w, y), y_sign)
        target_squared = _add_products_3x6(target_squared, w, _square_six_limbs(y))
        top_w = _umax(top_w, mw)
        top_d = _umax(top_d, md)
        top_y = _umax(top_y, my)
        max_abs = _umax(max_abs, md & (_U0 - np.uint64((w[0] | w[1] | w[2]) != _U0)))
        left_out += out
    residual = (residual_abs, residual_neg)
    sums = (weight_low, weight_high, residual, squared, target, target_squared)
    return sums, (top_w, top_d, top_y), max_abs, left_out


@njit(inline="always")
def _add_signed_to_bins(sink, positive, negative, unit, sums):
    """Add five two's-complement diagonal sums to the sink of their signs."""
    for k in range(5):
        value = np.int64(sums[k])
        if value >= 0:
            add_mantissa(sink, positive, unit + 26 * k, np.uint64(value))
        else:
            add_mantissa(sink, negative, unit + 26 * k, np.uint64(-value))


@njit(inline="always")
def _add_weighted_window(sink, bases, sums):
    """Add a weighted pass's sums to the sink at the units of their windows."""
    weight_low, weight_high, residual, squared, target, target_squared = sums
    weight_base, residual_base, target_base = bases
    uw = _base_unit(weight_base)
    ud = _base_unit(residual_base)
    uy = _base_unit(target_base)
    add_mantissa(sink, _WEIGHT, uw, weight_low)
    add_mantissa(sink, _WEIGHT, uw + 52, weight_high)
    residual_abs, residual_neg = residual
    for k in range(5):
        _add_sides(sink, _POSITIVE, _NEGATIVE, uw + ud + 26 * k, residual_abs[k], residual_neg[k])
    _add_signed_to_bins(sink, _TARGET_POS, _TARGET_NEG, uw + uy, target)
    for k in range(8):
        add_mantissa(sink, _SQUARED, uw + 2 * ud + 26 * k, squared[k])
        add_mantissa(sink, _TARGET_SQUARED, uw + 2 * uy + 26 * k, target_squared[k])


@njit(nogil=True)
def _bases_for(tops):
    """Window bases (weight, residual, target) placed from the largest magnitudes."""
    top_w, top_d, top_y = tops
    return _window_around(top_w), _window_around(top_d), _window_around(top_y)


@njit(nogil=True)
def _above(tops, bases):
    """Whether a value lies above its window."""
    above = False
    for k in range(3):
        above = above or _above_window(tops[k], bases[k])
    return above


@cached_njit(nogil=True)
def windows_weighted(y_true, y_pred, weight, sink, counts):
    """:func:`_accumulate_block` for weighted rows, by window products per stretch."""
    n = y_true.size
    if n == 0:
        return 0.0
    max_abs = 0.0
    first = np.uint64(0)
    bases = _bases_for(
        (
            _magnitude(weight[first]),
            _magnitude(y_pred[first] - y_true[first]),
            _magnitude(y_true[first]),
        )
    )
    for start in range(0, n, WEIGHTED_STRETCH_ROWS):
        stop = min(start + WEIGHTED_STRETCH_ROWS, n)
        sums, tops, stretch_max, left_out = _weighted_pass(
            y_true, y_pred, weight, start, stop, bases
        )
        top_w, top_d, _ = tops
        if top_w >> _C52 == _EXPONENT_MASK or top_d >> _C52 == _EXPONENT_MASK:
            rows = (y_true[start:stop], y_pred[start:stop], weight[start:stop])
            max_abs = max(max_abs, rows_weighted(*rows, sink, counts))
            continue
        if _above(tops, bases):  # redo around the largest values
            bases = _bases_for(tops)
            sums, tops, stretch_max, left_out = _weighted_pass(
                y_true, y_pred, weight, start, stop, bases
            )
        _add_weighted_window(sink, bases, sums)
        counts[_ROWS] += stop - start - left_out
        max_abs = max(max_abs, _bits_float(stretch_max))
        if left_out:
            for j in range(start, stop):
                if _weighted_row_limbs(y_true, y_pred, weight, np.uint64(j), bases)[5] != _U0:
                    rows = (y_true[j : j + 1], y_pred[j : j + 1], weight[j : j + 1])
                    max_abs = max(max_abs, rows_weighted(*rows, sink, counts))
        bases = _bases_for(tops)
    return max_abs


# --- Segments: each group's rows, each prediction, into the group's sums ---------------------

#: Sums per (group, prediction) in a sink: the seven of :data:`ACCUMULATORS`.
NSUMS = len(ACCUMULATORS)


@njit(inline="always")
def _sum_segments(
    block, moments, y_true, preds, weight, segments, layout, state, counts, spare, max_abs, first
):
    """Sum each segment of rows (one group's) for each prediction, from step ``first``.

    ``segments`` rows are ``(group, start, stop)``. ``layout`` is ``(sums per
    group, pairs)``: each group owns that many consecutive rows of ``state``
    from ``HEADER_ROWS + g * sums``, ``NSUMS`` per prediction, then the moments
    (summed by ``moments``: :func:`_moments_windows` or :func:`_moments_rows`)
    when there are more. Step ``s * steps + j`` is segment ``s`` and prediction
    ``j``, then the moments. Row counts go to
    ``counts[g]`` for the first prediction and to ``spare`` for the others (the
    same rows). Returns the step to resume from when the pool may run out of
    room (a step may open every sum it adds to), else the number of steps.
    """
    sums, pairs = layout
    npreds = preds.shape[0]
    per_segment = npreds + (1 if sums > npreds * NSUMS else 0)
    steps = segments.shape[0] * per_segment
    for step in range(first, steps):
        if state[_HEADER, _POOL_USED] + np.uint64(sums) > state[_HEADER, _POOL_ROOM]:
            return step
        s = step // per_segment
        j = step - s * per_segment
        g = segments[s, 0]
        start = segments[s, 1]
        stop = segments[s, 2]
        rows = HEADER_ROWS + g * sums
        part = weight[start:stop] if weight.size else weight
        if j == npreds:
            moments(
                y_true[start:stop], preds[:, start:stop], part, pairs, (state, rows + j * NSUMS)
            )
            continue
        tally = counts[g] if j == 0 else spare
        largest = block(
            y_true[start:stop], preds[j, start:stop], part, (state, rows + j * NSUMS), tally
        )
        max_abs[g, j] = max(max_abs[g, j], largest)
    return steps


@njit(inline="always")
def _times(words, m):
    """A five-word little-endian integer times a uint64 ``m`` (the product fits five words)."""
    w0, w1, w2, w3, w4 = words
    h0, l0 = _mul_wide(w0, m)
    h1, l1 = _mul_wide(w1, m)
    h2, l2 = _mul_wide(w2, m)
    h3, l3 = _mul_wide(w3, m)
    r1 = l1 + h0
    c = _U1 if r1 < l1 else _U0
    r2 = l2 + h1
    c2 = _U1 if r2 < l2 else _U0
    r2 += c
    c2 += _U1 if r2 < c else _U0
    r3 = l3 + h2
    c3 = _U1 if r3 < l3 else _U0
    r3 += c2
    c3 += _U1 if r3 < c2 else _U0
    r4 = w4 * m + h3 + c3
    return l0, r1, r2, r3, r4


@njit(inline="always")
def _add_product(sink, k, unit, words):
    """Add a five-word integer times ``2**unit`` to sum ``k``."""
    w0, w1, w2, w3, w4 = words
    add_wide(sink, k, unit, w1, w0)
    add_wide(sink, k, unit + 128, w3, w2)
    add_wide(sink, k, unit + 256, _U0, w4)


@njit(inline="always")
def _kept(y_true, preds, weight, i):
    """Whether row ``i`` enters the sums (as :func:`_add_row` keeps rows), and its weight."""
    y = y_true[i]
    w = weight[i] if weight.size else 1.0
    kept = math.isfinite(y) and math.isfinite(w) and w >= 0.0
    for j in range(preds.shape[0]):
        kept = kept and math.isfinite(preds[j, i] - y)
    return kept and w != 0.0, w


@njit(nogil=True)
def _fourth_row(sink, k, d, w):
    """Add ``w * d**4`` to sum ``k``, term by term."""
    mw, uw = split(w)
    md, ud = split(abs(d))
    words = _times(_times(_times((md, _U0, _U0, _U0, _U0), md), md), md)
    _add_product(sink, k, uw + 4 * ud, _times(words, mw))


@njit(nogil=True)
def _pair_row(sink, k, a, b, w):
    """Add ``w * a**2 * b**2`` to sum ``k`` and ``w * |a| * |b|`` to sum ``k + 1``."""
    mw, uw = split(w)
    ma, ua = split(abs(a))
    mb, ub = split(abs(b))
    words = _times(_times(_times((ma, _U0, _U0, _U0, _U0), ma), mb), mb)
    _add_product(sink, k, uw + 2 * ua + 2 * ub, _times(words, mw))
    _add_product(sink, k + 1, uw + ua + ub, _times(_times((ma, _U0, _U0, _U0, _U0), mb), mw))


@njit(nogil=True)
def _moments_rows(y_true, preds, weight, pairs, sink):
    """The moments of the rows kept, term by term: exact products of up to five floats.

    Sums, in order: ``sum(w**2)``; ``sum(w * d**4)`` for each prediction; then
    for each pair ``(a, b)`` of ``pairs``, ``sum(w * d_a**2 * d_b**2)`` and
    ``sum(w * |d_a| * |d_b|)``. The reference for :func:`_moments_windows`.
    """
    npreds = preds.shape[0]
    for i in range(y_true.size):
        kept, w = _kept(y_true, preds, weight, i)
        if not kept:
            continue
        mw, uw = split(w)
        high, low = _mul_wide(mw, mw)
        add_wide(sink, 0, 2 * uw, high, low)
        y = y_true[i]
        for j in range(npreds):
            _fourth_row(sink, 1 + j, preds[j, i] - y, w)
        for p in range(pairs.shape[0]):
            a, b = preds[pairs[p, 0], i] - y, preds[pairs[p, 1], i] - y
            _pair_row(sink, 1 + npreds + 2 * p, a, b, w)


# --- Moments by window limbs -------------------------------------------------------------------

_NO_FOURTEEN = (_U0,) * 14
_NO_ELEVEN = (_U0,) * 11


@njit(inline="always")
def _limbs(x, base):
    """``|x|`` in the window at ``base`` as three 26-bit limbs, and 1 if it lies outside it."""
    magnitude, low, high, _ = _window_limbs(x, base)
    return _three_limbs(low, high), _outside(magnitude, low, high)


@njit(inline="always")
def _diagonals_6x6(e, f):
    """The eleven diagonals of the product of two 6-limb numbers (each below 6 * 2**52)."""
    e0, e1, e2, e3, e4, e5 = e
    f0, f1, f2, f3, f4, f5 = f
    return (
        e0 * f0,
        e0 * f1 + e1 * f0,
        e0 * f2 + e1 * f1 + e2 * f0,
        e0 * f3 + e1 * f2 + e2 * f1 + e3 * f0,
        e0 * f4 + e1 * f3 + e2 * f2 + e3 * f1 + e4 * f0,
        e0 * f5 + e1 * f4 + e2 * f3 + e3 * f2 + e4 * f1 + e5 * f0,
        e1 * f5 + e2 * f4 + e3 * f3 + e4 * f2 + e5 * f1,
        e2 * f5 + e3 * f4 + e4 * f3 + e5 * f2,
        e3 * f5 + e4 * f4 + e5 * f3,
        e4 * f5 + e5 * f4,
        e5 * f5,
    )


@njit(inline="always")
def _square_diagonals_6(e):
    """The eleven diagonals of the square of a 6-limb number: 21 products, not 36.

    Each diagonal is at most six products below ``2**52`` (cross products
    counted twice), as in :func:`_diagonals_6x6`.
    """
    e0, e1, e2, e3, e4, e5 = e
    return (
        e0 * e0,
        (e0 * e1) << _U1,
        ((e0 * e2) << _U1) + e1 * e1,
        (e0 * e3 + e1 * e2) << _U1,
        ((e0 * e4 + e1 * e3) << _U1) + e2 * e2,
        (e0 * e5 + e1 * e4 + e2 * e3) << _U1,
        ((e1 * e5 + e2 * e4) << _U1) + e3 * e3,
        (e2 * e5 + e3 * e4) << _U1,
        ((e3 * e5) << _U1) + e4 * e4,
        (e4 * e5) << _U1,
        e5 * e5,
    )


@njit(inline="always")
def _twelve_limbs(c):
    """Eleven diagonals (each below 2**55) as twelve 26-bit limbs, the carries passed up."""
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10 = c
    t = c0
    l0 = t & _LIMB_MASK
    t = (t >> _C26) + c1
    l1 = t & _LIMB_MASK
    t = (t >> _C26) + c2
    l2 = t & _LIMB_MASK
    t = (t >> _C26) + c3
    l3 = t & _LIMB_MASK
    t = (t >> _C26) + c4
    l4 = t & _LIMB_MASK
    t = (t >> _C26) + c5
    l5 = t & _LIMB_MASK
    t = (t >> _C26) + c6
    l6 = t & _LIMB_MASK
    t = (t >> _C26) + c7
    l7 = t & _LIMB_MASK
    t = (t >> _C26) + c8
    l8 = t & _LIMB_MASK
    t = (t >> _C26) + c9
    l9 = t & _LIMB_MASK
    t = (t >> _C26) + c10
    return l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, t & _LIMB_MASK, t >> _C26


@njit(inline="always")
def _six_limbs(c):
    """Five diagonals (each below 2**54) as six 26-bit limbs, the carries passed up."""
    c0, c1, c2, c3, c4 = c
    t = c0
    l0 = t & _LIMB_MASK
    t = (t >> _C26) + c1
    l1 = t & _LIMB_MASK
    t = (t >> _C26) + c2
    l2 = t & _LIMB_MASK
    t = (t >> _C26) + c3
    l3 = t & _LIMB_MASK
    t = (t >> _C26) + c4
    return l0, l1, l2, l3, t & _LIMB_MASK, t >> _C26


@njit(inline="always")
def _diagonals_3x12(w, e):
    """The fourteen diagonals of the product of a 3-limb and a 12-limb number."""
    w0, w1, w2 = w
    e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11 = e
    return (
        w0 * e0,
        w0 * e1 + w1 * e0,
        w0 * e2 + w1 * e1 + w2 * e0,
        w0 * e3 + w1 * e2 + w2 * e1,
        w0 * e4 + w1 * e3 + w2 * e2,
        w0 * e5 + w1 * e4 + w2 * e3,
        w0 * e6 + w1 * e5 + w2 * e4,
        w0 * e7 + w1 * e6 + w2 * e5,
        w0 * e8 + w1 * e7 + w2 * e6,
        w0 * e9 + w1 * e8 + w2 * e7,
        w0 * e10 + w1 * e9 + w2 * e8,
        w0 * e11 + w1 * e10 + w2 * e9,
        w1 * e11 + w2 * e10,
        w2 * e11,
    )


@njit(inline="always")
def _diagonals_3x6(w, e):
    """The eight diagonals of the product of a 3-limb and a 6-limb number."""
    return _add_products_3x6(_NO_EIGHT, w, e)


@njit(inline="always")
def _kept_masks(y_true, preds, weight, start, stop, masks):
    """Per row of ``[start, stop)``: all ones if it enters the sums, else 0; and the largest
    magnitudes of the weight and of each prediction's residual among the rows kept."""
    npreds = preds.shape[0]
    tops = np.zeros(npreds + 1, np.uint64)
    for i in range(start, stop):
        kept, w = _kept(y_true, preds, weight, i)
        masks[i - start] = _U0 - np.uint64(kept)
        if kept:
            tops[0] = _umax(tops[0], _magnitude(w))
            for j in range(npreds):
                tops[1 + j] = _umax(tops[1 + j], _magnitude(preds[j, i] - y_true[i]))
    return tops


@njit(nogil=True)
def _moments_windows(y_true, preds, weight, pairs, sink):
    """:func:`_moments_rows`, by products of window limbs, one stretch of rows at a time.

    Each stretch places a window for the weight and for each residual at its
    largest kept magnitude; a row's terms are formed limb by limb and summed in
    plain uint64 diagonals (at most six products below ``2**52`` each over
    ``WEIGHTED_STRETCH_ROWS`` rows), then added to the sums at their units. A
    row with an operand below its window goes through the row path for that
    moment only.
    """
    n = y_true.size
    npreds = preds.shape[0]
    weighted = weight.size != 0
    masks = np.empty(WEIGHTED_STRETCH_ROWS, np.uint64)
    for start in range(0, n, WEIGHTED_STRETCH_ROWS):
        stop = min(start + WEIGHTED_STRETCH_ROWS, n)
        tops = _kept_masks(y_true, preds, weight, start, stop, masks)
        bases = np.empty(npreds + 1, np.uint64)
        for k in range(npreds + 1):
            bases[k] = _window_around(tops[k])
        uw = _base_unit(bases[0]) if weighted else 0
        _weight_squares(weight, start, stop, masks, bases[0], uw, sink)
        for j in range(npreds):
            ud = _base_unit(bases[1 + j])
            sums = _NO_FOURTEEN
            outside = _U0
            if weighted:
                for i in range(start, stop):
                    keep = masks[i - start]
                    d, d_out = _limbs(preds[j, i] - y_true[i], bases[1 + j])
                    w, w_out = _limbs(weight[i], bases[0])
                    out = (d_out | w_out) & keep & _U1
                    keep &= out - _U1
                    square = _square_six_limbs(d)
                    fourth = _twelve_limbs(_diagonals_6x6(square, square))
                    sums = _add_masked14(sums, _diagonals_3x12(w, fourth), keep)
                    outside += out
            else:  # a weight of one: the diagonals of d**2 * d**2, each below 6 * 2**52
                diagonals = _NO_ELEVEN
                for i in range(start, stop):
                    keep = masks[i - start]
                    d, d_out = _limbs(preds[j, i] - y_true[i], bases[1 + j])
                    out = d_out & keep & _U1
                    keep &= out - _U1
                    square = _square_six_limbs(d)
                    diagonals = _add_masked11(diagonals, _square_diagonals_6(square), keep)
                    outside += out
                sums = diagonals + (_U0, _U0, _U0)  # noqa: RUF005 (numba: no star in tuples)
            for m in range(14):
                add_mantissa(sink, 1 + j, uw + 4 * ud + 26 * m, sums[m])
            if outside:
                for i in range(start, stop):
                    if masks[i - start] and _operands_outside(
                        preds[j, i] - y_true[i], bases[1 + j], weight, i, bases[0]
                    ):
                        _fourth_row(
                            sink, 1 + j, preds[j, i] - y_true[i], weight[i] if weighted else 1.0
                        )
        for p in range(pairs.shape[0]):
            _pair_window(
                y_true,
                preds,
                weight,
                start,
                stop,
                masks,
                bases,
                pairs[p],
                uw,
                1 + npreds + 2 * p,
                sink,
            )


@njit(inline="always")
def _operands_outside(d, d_base, weight, i, w_base):
    """Whether a residual or the row's weight lies outside its window."""
    outside = _limbs(d, d_base)[1]
    if weight.size:
        outside |= _limbs(weight[i], w_base)[1]
    return outside != _U0


@njit(nogil=True)
def _weight_squares(weight, start, stop, masks, base, uw, sink):
    """Add ``sum(w**2)`` of the kept rows of ``[start, stop)`` (their count without weights)."""
    if not weight.size:
        kept = _U0
        for i in range(start, stop):
            kept += masks[i - start] & _U1
        add_mantissa(sink, 0, 0, kept)
        return
    sums = _NO_FIVE
    outside = _U0
    for i in range(start, stop):
        keep = masks[i - start]
        w, out = _limbs(weight[i], base)
        out &= keep & _U1
        sums = _add_masked(sums, _diagonals_3x3(w, w), keep & (out - _U1))
        outside += out
    for m in range(5):
        add_mantissa(sink, 0, 2 * uw + 26 * m, sums[m])
    if outside:
        for i in range(start, stop):
            if masks[i - start] and _limbs(weight[i], base)[1]:
                mw, unit = split(weight[i])
                high, low = _mul_wide(mw, mw)
                add_wide(sink, 0, 2 * unit, high, low)


@njit(nogil=True)
def _pair_window(y_true, preds, weight, start, stop, masks, bases, pair, uw, k, sink):
    """Add ``sum(w * d_a**2 * d_b**2)`` (sum ``k``) and ``sum(w * |d_a| * |d_b|)`` (``k + 1``)."""
    a, b = pair[0], pair[1]
    ua, ub = _base_unit(bases[1 + a]), _base_unit(bases[1 + b])
    weighted = weight.size != 0
    ones = (_U1, _U0, _U0)
    squares = _NO_FOURTEEN
    products = _NO_EIGHT
    outside = _U0
    for i in range(start, stop):
        keep = masks[i - start]
        y = y_true[i]
        da, a_out = _limbs(preds[a, i] - y, bases[1 + a])
        db, b_out = _limbs(preds[b, i] - y, bases[1 + b])
        w, w_out = _limbs(weight[i], bases[0]) if weighted else (ones, _U0)
        out = (a_out | b_out | w_out) & keep & _U1
        keep &= out - _U1
        both = _twelve_limbs(_diagonals_6x6(_square_six_limbs(da), _square_six_limbs(db)))
        squares = _add_masked14(squares, _diagonals_3x12(w, both), keep)
        products = _add_masked8(
            products, _diagonals_3x6(w, _six_limbs(_diagonals_3x3(da, db))), keep
        )
        outside += out
    for m in range(14):
        add_mantissa(sink, k, uw + 2 * ua + 2 * ub + 26 * m, squares[m])
    for m in range(8):
        add_mantissa(sink, k + 1, uw + ua + ub + 26 * m, products[m])
    if outside:
        for i in range(start, stop):
            y = y_true[i]
            w = weight[i] if weighted else 1.0
            if masks[i - start] and (
                _operands_outside(preds[a, i] - y, bases[1 + a], weight, i, bases[0])
                or _limbs(preds[b, i] - y, bases[1 + b])[1]
            ):
                _pair_row(sink, k, preds[a, i] - y, preds[b, i] - y, w)


@njit(inline="always")
def _add_masked11(sums, terms, mask):
    """Add the eleven terms selected by ``mask`` (all ones or zero) to eleven sums."""
    return (
        sums[0] + (terms[0] & mask),
        sums[1] + (terms[1] & mask),
        sums[2] + (terms[2] & mask),
        sums[3] + (terms[3] & mask),
        sums[4] + (terms[4] & mask),
        sums[5] + (terms[5] & mask),
        sums[6] + (terms[6] & mask),
        sums[7] + (terms[7] & mask),
        sums[8] + (terms[8] & mask),
        sums[9] + (terms[9] & mask),
        sums[10] + (terms[10] & mask),
    )


@njit(inline="always")
def _add_masked14(sums, terms, mask):
    """Add the fourteen terms selected by ``mask`` (all ones or zero) to fourteen sums."""
    return (
        sums[0] + (terms[0] & mask),
        sums[1] + (terms[1] & mask),
        sums[2] + (terms[2] & mask),
        sums[3] + (terms[3] & mask),
        sums[4] + (terms[4] & mask),
        sums[5] + (terms[5] & mask),
        sums[6] + (terms[6] & mask),
        sums[7] + (terms[7] & mask),
        sums[8] + (terms[8] & mask),
        sums[9] + (terms[9] & mask),
        sums[10] + (terms[10] & mask),
        sums[11] + (terms[11] & mask),
        sums[12] + (terms[12] & mask),
        sums[13] + (terms[13] & mask),
    )


@njit(inline="always")
def _add_masked8(sums, terms, mask):
    """Add the eight terms selected by ``mask`` (all ones or zero) to eight sums."""
    return (
        sums[0] + (terms[0] & mask),
        sums[1] + (terms[1] & mask),
        sums[2] + (terms[2] & mask),
        sums[3] + (terms[3] & mask),
        sums[4] + (terms[4] & mask),
        sums[5] + (terms[5] & mask),
        sums[6] + (terms[6] & mask),
        sums[7] + (terms[7] & mask),
    )


def moment_sums(predictions: int, pairs: int) -> int:
    """The number of moment sums of :func:`_moments_rows` (0 without them)."""
    return 1 + predictions + 2 * pairs


@cached_njit(nogil=True)
def segments_windows_unweighted(
    y_true, preds, weight, segments, layout, state, counts, spare, max_abs, first
):
    """:func:`_sum_segments` by the unweighted window path."""
    return _sum_segments(
        windows_unweighted,
        _moments_windows,
        y_true,
        preds,
        weight,
        segments,
        layout,
        state,
        counts,
        spare,
        max_abs,
        first,
    )


@cached_njit(nogil=True)
def segments_windows_weighted(
    y_true, preds, weight, segments, layout, state, counts, spare, max_abs, first
):
    """:func:`_sum_segments` by the weighted window path."""
    return _sum_segments(
        windows_weighted,
        _moments_windows,
        y_true,
        preds,
        weight,
        segments,
        layout,
        state,
        counts,
        spare,
        max_abs,
        first,
    )


@cached_njit(nogil=True)
def segments_rows_unweighted(
    y_true, preds, weight, segments, layout, state, counts, spare, max_abs, first
):
    """:func:`_sum_segments` by the unweighted row path (the reference)."""
    return _sum_segments(
        rows_unweighted,
        _moments_rows,
        y_true,
        preds,
        weight,
        segments,
        layout,
        state,
        counts,
        spare,
        max_abs,
        first,
    )


@cached_njit(nogil=True)
def segments_rows_weighted(
    y_true, preds, weight, segments, layout, state, counts, spare, max_abs, first
):
    """:func:`_sum_segments` by the weighted row path (the reference)."""
    return _sum_segments(
        rows_weighted,
        _moments_rows,
        y_true,
        preds,
        weight,
        segments,
        layout,
        state,
        counts,
        spare,
        max_abs,
        first,
    )


@cached_njit(nogil=True)
def group_rows(codes, ngroups, y_true, preds, weight):
    """The rows sorted by group code (stable), and the segments ``(group, start, stop)``.

    One counting pass and one scatter of every column: each group's rows end
    up contiguous, in their order of arrival.
    """
    n = codes.size
    starts = np.zeros(ngroups + 1, np.int64)
    for i in range(n):
        starts[codes[i] + 1] += 1
    present = 0
    for g in range(ngroups):
        present += starts[g + 1] != 0
        starts[g + 1] += starts[g]
    segments = np.empty((present, 3), np.int64)
    s = 0
    for g in range(ngroups):
        if starts[g + 1] != starts[g]:
            segments[s, 0] = g
            segments[s, 1] = starts[g]
            segments[s, 2] = starts[g + 1]
            s += 1
    npreds = preds.shape[0]
    sorted_true = np.empty(n, np.float64)
    sorted_preds = np.empty((npreds, n), np.float64)
    sorted_weight = np.empty(weight.size, np.float64)
    for i in range(n):
        g = codes[i]
        at = starts[g]
        starts[g] = at + 1
        sorted_true[at] = y_true[i]
        for j in range(npreds):
            sorted_preds[j, at] = preds[j, i]
        if weight.size:
            sorted_weight[at] = weight[i]
    return sorted_true, sorted_preds, sorted_weight, segments


#: Row outcomes of :func:`row_outcomes`.
ROW_KEPT, ROW_SKIPPED, ROW_NEGATIVE_WEIGHT, ROW_OVERFLOW = 0, 1, 2, 3


@cached_njit(nogil=True)
def row_outcomes(y_true, preds, weight, nonfinite):
    """Each row's outcome across the target, every prediction and the weight.

    A row is skipped when any of its values is NaN or infinite, refused when its
    weight is negative or a residual overflows, else kept. ``nonfinite`` counts
    the non-finite values per column: the target, the weight, then each
    prediction. Returns the outcomes (uint8) and the number of rows not kept.
    """
    n = y_true.size
    npreds = preds.shape[0]
    outcome = np.zeros(n, np.uint8)
    bad = 0
    for i in range(n):
        y = y_true[i]
        w = weight[i] if weight.size else 1.0
        skipped = False
        if not math.isfinite(y):
            nonfinite[0] += 1
            skipped = True
        if not math.isfinite(w):
            nonfinite[1] += 1
            skipped = True
        overflow = False
        for j in range(npreds):
            p = preds[j, i]
            if not math.isfinite(p):
                nonfinite[2 + j] += 1
                skipped = True
            elif not math.isfinite(p - y):
                overflow = True
        if skipped:
            outcome[i] = ROW_SKIPPED
        elif w < 0.0:
            outcome[i] = ROW_NEGATIVE_WEIGHT
        elif overflow:
            outcome[i] = ROW_OVERFLOW
        bad += outcome[i] != ROW_KEPT
    return outcome, bad
