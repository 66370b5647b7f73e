//! Vector helpers the kernels share: loads and stores of whole, partial and overlapping
//! vectors, rows of flat blocks, and the reduction tree that turns [`LANES`] accumulators
//! into one vector of sums.

pub(super) use super::each_lane;
use super::{LANES, V};

/// `wanted.min(block.len() / width)` for `width > 0`: the complete rows of `width` that
/// `block` holds, at most `wanted`. Without a division when all of them are there (the
/// usual case: a division costs more than a batch-of-one kernel's arithmetic on some rows).
#[inline(always)]
pub(super) fn rows_in(block: &[f32], width: usize, wanted: usize) -> usize {
    if wanted.saturating_mul(width) <= block.len() {
        wanted
    } else {
        wanted.min(block.len() / width)
    }
}

/// [`row`] for writing.
#[inline(always)]
pub(super) fn row_mut(block: &mut [f32], r: usize, width: usize) -> &mut [f32] {
    let start = r.saturating_mul(width);
    block
        .get_mut(start..start.saturating_add(width))
        .unwrap_or(&mut [])
}

#[inline(always)]
pub(super) fn load(chunks: &[[f32; LANES]], k: usize) -> V {
    chunks.get(k).map_or(V::ZERO, |c| V::new(*c))
}

/// Whole vectors `k..k + C` of `row` (zeros if the row is shorter), with one bounds check
/// for all `C` of them.
#[inline(always)]
pub(super) fn vectors_at<const C: usize>(row: &[f32], k: usize) -> [V; C] {
    // A branch, not `map_or`: compiled for run-time dispatch, `map_or`'s form became a
    // load through a pointer chosen between the row and zeros stored on the stack for
    // every call (four vector stores per output in the input gradient's tile).
    let Some(chunks) = row.as_chunks::<LANES>().0.get(k..k + C) else {
        return [V::ZERO; C];
    };
    let mut vectors = [V::ZERO; C];
    for (v, c) in vectors.iter_mut().zip(chunks) {
        *v = V::new(*c);
    }
    vectors
}

/// `chunks` as vectors. A loop rather than `array::map`, which is not always inlined in
/// large kernels (measured: 4x slower single-row forward when it was not).
#[inline(always)]
pub(super) fn to_vectors<const C: usize>(chunks: &[[f32; LANES]; C]) -> [V; C] {
    let mut vectors = [V::ZERO; C];
    for (v, c) in vectors.iter_mut().zip(chunks) {
        *v = V::new(*c);
    }
    vectors
}

/// A vector holding `values` (at most [`LANES`] of them) and zeros after them.
#[inline(always)]
pub(super) fn load_padded(values: &[f32], pad: f32) -> V {
    let mut lanes = [pad; LANES];
    for (lane, v) in lanes.iter_mut().zip(values) {
        *lane = *v;
    }
    V::new(lanes)
}

#[inline(always)]
pub(super) fn store_partial(dst: &mut [f32], v: V) {
    for (d, s) in dst.iter_mut().zip(v.to_array()) {
        *d = s;
    }
}

/// `row` of a block of rows of width `width`; empty if the block is too short (callers
/// size blocks so that it never is). Products of dimensions saturate, here and in chunk
/// lengths elsewhere: a shape with absurd dimensions and short slices must find no
/// complete row rather than wrap around.
#[inline(always)]
pub(super) fn row(block: &[f32], r: usize, width: usize) -> &[f32] {
    let start = r.saturating_mul(width);
    block.get(start..start.saturating_add(width)).unwrap_or(&[])
}

/// The first `steps` whole vectors of each of the `N` rows of width `width` that start
/// `block`, or `None` if the block is shorter. Every returned slice has length exactly
/// `steps`, which lets the compiler drop the bounds checks of `load(slice, k)` for
/// `k < steps`; the rows are cut off one after the other, a comparison or two each.
#[inline(always)]
pub(super) fn block_vectors<const N: usize>(
    block: &[f32],
    width: usize,
    steps: usize,
) -> Option<[&[[f32; LANES]]; N]> {
    let mut vectors: [&[[f32; LANES]]; N] = [&[]; N];
    let mut rest = block;
    for v in vectors.iter_mut() {
        let (row, tail) = rest.split_at_checked(width)?;
        *v = row.get(..steps * LANES)?.as_chunks::<LANES>().0;
        rest = tail;
    }
    Some(vectors)
}

/// One level of the reduction tree. `v` holds vectors whose lanes form segments of
/// `SEGMENT` partial sums; each pair `(p, q)` becomes one vector whose segments are half as
/// long: in every segment the first half sums `p`'s segment, the second half `q`'s.
/// `lo` keeps `p`'s first halves and `q`'s second halves (a blend), `hi` the other halves
/// swapped (one two-source shuffle), so a level costs one blend, one shuffle and one add
/// per pair.
#[inline(always)]
pub(super) fn tree_level<const SEGMENT: usize>(v: [V; LANES]) -> [V; LANES] {
    let at = |m: usize| v.get(m).copied().unwrap_or(V::ZERO);
    each_lane(|m| tree_pair::<SEGMENT>(at(2 * m), at(2 * m + 1)))
}

/// One pair of [`tree_level`]. A function of its own, not a closure, so that it is
/// always inlined and its lane indices become constants.
#[inline(always)]
pub(super) fn tree_pair<const SEGMENT: usize>(p: V, q: V) -> V {
    let half = SEGMENT / 2;
    let (p, q) = (p.to_array(), q.to_array());
    let pick = |from: &[f32; LANES], j: usize| from.get(j).copied().unwrap_or(0.0);
    let lo = each_lane(|j| {
        if j % SEGMENT < half {
            pick(&p, j)
        } else {
            pick(&q, j)
        }
    });
    let hi = each_lane(|j| {
        if j % SEGMENT < half {
            pick(&p, j + half)
        } else {
            pick(&q, j.wrapping_sub(half))
        }
    });
    V::new(lo) + V::new(hi)
}

/// Lane `j` of the result is the sum of the lanes of `acc[j]`.
#[inline(always)]
pub(super) fn sum_each(acc: [V; LANES]) -> V {
    // After the tree, lane j holds the sum of input vector bit_reverse(j); feeding the
    // accumulators in bit-reversed order puts each sum in its own lane.
    let bits = LANES.trailing_zeros();
    let mut v: [V; LANES] = each_lane(|j| {
        let source = j.reverse_bits() >> (usize::BITS - bits);
        acc.get(source).copied().unwrap_or(V::ZERO)
    });
    if LANES >= 16 {
        v = tree_level::<16>(v);
    }
    if LANES >= 8 {
        v = tree_level::<8>(v);
    }
    v = tree_level::<4>(v);
    v = tree_level::<2>(v);
    v.first().copied().unwrap_or(V::ZERO)
}

/// `[0, 1, …, LANES - 1]`.
#[inline(always)]
pub(super) fn lane_indices() -> V {
    V::new(each_lane(|j| j as f32))
}

/// For a row of `width` floats: where its overlapping last column starts and the mask of
/// that column's lanes that no whole column holds; `None` when `width` is a multiple of
/// [`LANES`] or shorter than one vector.
#[inline(always)]
pub(super) fn overlap_column(width: usize) -> Option<(usize, V)> {
    let shared = LANES - width % LANES;
    let keep = lane_indices().simd_ge(V::splat(shared as f32));
    let start = width.checked_sub(LANES)?;
    (shared != LANES).then_some((start, keep))
}

/// The vector at `start` of `row` (zeros if the row is shorter).
#[inline(always)]
pub(super) fn load_at(row: &[f32], start: usize) -> V {
    row.get(start..)
        .and_then(|r| r.first_chunk::<LANES>())
        .map_or(V::ZERO, |c| V::new(*c))
}

/// Writes `v` at `start` of `row` (nothing if the row is shorter).
#[inline(always)]
pub(super) fn store_at(row: &mut [f32], start: usize, v: V) {
    if let Some(d) = row
        .get_mut(start..)
        .and_then(|r| r.first_chunk_mut::<LANES>())
    {
        *d = v.to_array();
    }
}

/// The `C` vectors of `row` from `start` on (`None` if the row is shorter): one bounds check
/// for all of them.
#[inline(always)]
pub(super) fn vectors_from<const C: usize>(
    row: &[f32],
    start: usize,
) -> Option<&[[f32; LANES]; C]> {
    row.get(start..start.saturating_add(C * LANES))?
        .as_chunks::<LANES>()
        .0
        .try_into()
        .ok()
}

/// [`vectors_from`] for writing.
#[inline(always)]
pub(super) fn vectors_from_mut<const C: usize>(
    row: &mut [f32],
    start: usize,
) -> Option<&mut [[f32; LANES]; C]> {
    row.get_mut(start..start.saturating_add(C * LANES))?
        .as_chunks_mut::<LANES>()
        .0
        .try_into()
        .ok()
}
