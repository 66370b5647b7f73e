//! The `wide` kernels: register-blocked loops on vectors of [`LANES`] floats, with scalar
//! or zero-padded tails.
//!
//! Same names, signatures and contracts as [`super::scalar`]; only the bodies differ.
//!
//! # Vector width
//! Chosen at compile time from the target features: `f32x16` where `avx512f` is enabled
//! (e.g. `-C target-cpu=native` on an AVX-512 machine), `f32x8` where `avx` is, `f32x4`
//! elsewhere (SSE2, NEON, simd128). A wider type than the hardware's registers only
//! splits every operation in two and doubles the register pressure of the blocked loops:
//! with SSE2, `f32x8` measured 1.1 to 1.9 times slower than `f32x4` on the benchmarks'
//! dense kernels and shapes, all but the weight gradient of a single row (bound by its
//! read-modify-write of `d_weights`, slightly faster with `f32x8`).
//!
//! # How the dense products are blocked
//! - [`dense_forward`] has both operands contiguous along the reduction (`x` rows and
//!   `W` rows), so each output is a dot product. A tile of rows × outputs keeps one
//!   accumulator vector per pair ([`LANES`] pairs per tile) and shares every load between
//!   the pairs of its row or column; at the end of the tile one shuffle tree turns the
//!   [`LANES`] accumulators into one vector of [`LANES`] sums (one blend, one shuffle and
//!   one add per pair of vectors), instead of one horizontal sum per output. The tree costs
//!   about three vector operations per output whatever the width of the layer, which is
//!   little beside `inputs / LANES` multiply-adds for wide layers and a lot for narrow
//!   ones.
//! - With AVX-512, batches of at least `PACKED_ROWS` rows through layers of at most
//!   `PACKED_DEPTH` inputs take another route: `W` is transposed into a panel on the
//!   stack (16 × 16 blocks, four rounds of two-source shuffles), and each step of the
//!   tile multiplies one broadcast input by loaded vectors of outputs, with no horizontal
//!   sums; the transposition is paid once per call and shared by the whole batch. On
//!   wider layers the dot-product tiles were measured faster, as they were on small
//!   batches, where the transposition is not paid back.
//! - [`dense_input_gradient`] and [`dense_weight_gradient`] run along contiguous rows of
//!   `W` and `x`: each tile keeps rows × vectors of outputs in registers and adds a
//!   broadcast scalar times a loaded vector per step, with no horizontal sums at all.
//!
//! # Accuracy against the scalar set
//! - Sums run in another order (vector lanes, then a tree) and `mul_add` is fused where
//!   the target has FMA, so the products differ from the scalar kernels by rounding only:
//!   at most a few units of `f32::EPSILON · Σ|terms|` per output.
//! - `relu`, `leaky_relu`, their derivatives, `sigmoid_derivative`, `tanh_derivative`,
//!   `multiply`, `adam_update` and the bias gradient (not its returned penalty) do the
//!   scalar kernels' operations in the scalar kernels' order: they give the same bits.
//! - `sigmoid`, `tanh` and `softmax` evaluate `exp` with `wide`'s vector polynomial
//!   instead of `libm`; see [`TRANSCENDENTAL_MAX_ULPS`].

// Index arithmetic here is audited instead of linted: every row count is first clamped to
// `slice.len() / width` (and products of dimensions saturate), so each product of a row or
// chunk index with a width is at most the length of a slice in memory and cannot overflow;
// divisors are lane counts and tile sizes (constants) or widths already checked non-zero.
#![allow(clippy::arithmetic_side_effects)]

use core::array;

use super::{AdamStep, Shape};
use crate::penalty::Regularizer;

#[cfg(target_feature = "avx512f")]
type V = wide::f32x16;
#[cfg(all(not(target_feature = "avx512f"), target_feature = "avx"))]
type V = wide::f32x8;
#[cfg(not(any(target_feature = "avx512f", target_feature = "avx")))]
type V = wide::f32x4;

/// Floats per vector in this build: 16 with AVX-512, 8 with AVX, 4 otherwise.
pub const LANES: usize = size_of::<V>() / size_of::<f32>();

/// The largest error of `sigmoid`, `tanh` and the `exp` inside `softmax` against the
/// scalar kernels' `libm`, in units of `f32::EPSILON` relative to the `libm` value (plus
/// `f32::MIN_POSITIVE` absolute, where the result is subnormal).
///
/// `wide`'s `exp` is a degree-7 polynomial after a two-constant `ln 2` range reduction;
/// `sigmoid` adds one rounding for `1 + e` and one for the division, and `tanh` is
/// `-t / (t + 2)` with `t = expm1(-2|x|)`. Measured against `libm` on a step of `5e-5`
/// over `[-100, 100]`, the worst cases are 1.5 (`sigmoid`) and 2.8 (`tanh`) with and
/// without FMA; the budget of 4 leaves room for other targets, and the tests hold the
/// kernels to it. The vector path is used because per-lane `libm` calls are about six
/// times slower, and on a layer of 64 inputs cost several times the dense product they
/// follow (`sigmoid_128x64` against `dense_forward` in the kernel benchmarks).
pub const TRANSCENDENTAL_MAX_ULPS: f32 = 4.0;

// Register tiles. Forward: rows × outputs accumulator pairs, a multiple of LANES so the
// shuffle tree consumes whole groups; 16 zmm accumulators plus 8 loads fit AVX-512's 32
// registers, 8 fit the 16 of AVX/SSE/NEON with room for the loads. The single-row tile
// serves batches of one (inference) and leftover rows.
#[cfg(target_feature = "avx512f")]
mod tile {
    pub const FORWARD_ROWS: usize = 4;
    pub const FORWARD_OUTPUTS: usize = 4;
    pub const FORWARD_SINGLE_OUTPUTS: usize = 16;
    pub const AXPY_ROWS: usize = 4;
    pub const AXPY_VECTORS: usize = 4;
    pub const PACKED_ROWS: usize = 6;
    pub const PACKED_VECTORS: usize = 4;
}
#[cfg(not(target_feature = "avx512f"))]
mod tile {
    pub const FORWARD_ROWS: usize = 2;
    pub const FORWARD_OUTPUTS: usize = 4;
    pub const FORWARD_SINGLE_OUTPUTS: usize = 8;
    pub const AXPY_ROWS: usize = 2;
    pub const AXPY_VECTORS: usize = 4;
}
use tile::*;

#[cfg(target_feature = "avx512f")]
/// Inputs per packed panel of the forward pass: `PACKED_DEPTH × PACKED_VECTORS` vectors
/// (16 KiB with AVX-512) stay in L1 while every batch row streams past them.
const PACKED_DEPTH: usize = 64;

/// `[f(0), f(1), …, f(LANES - 1)]`, written out so that every call gets a constant
/// index: `array::from_fn` is a loop, which the compiler may keep, and then the array
/// goes through memory and every shuffle index becomes a variable.
#[inline(always)]
fn each_lane<T>(mut f: impl FnMut(usize) -> T) -> [T; LANES] {
    #[cfg(target_feature = "avx512f")]
    return [
        f(0),
        f(1),
        f(2),
        f(3),
        f(4),
        f(5),
        f(6),
        f(7),
        f(8),
        f(9),
        f(10),
        f(11),
        f(12),
        f(13),
        f(14),
        f(15),
    ];
    #[cfg(all(not(target_feature = "avx512f"), target_feature = "avx"))]
    return [f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7)];
    #[cfg(not(any(target_feature = "avx512f", target_feature = "avx")))]
    return [f(0), f(1), f(2), f(3)];
}

/// `wanted.min(block.len() / width)` for `width > 0`: the complete rows of `width` that
/// `block` holds, at most `wanted`. Without a division when all of them are there (the
/// usual case: a division costs more than a batch-of-one kernel's arithmetic on some rows).
#[inline(always)]
fn rows_in(block: &[f32], width: usize, wanted: usize) -> usize {
    if wanted.saturating_mul(width) <= block.len() {
        wanted
    } else {
        wanted.min(block.len() / width)
    }
}

/// [`row`] for writing.
#[inline(always)]
fn row_mut(block: &mut [f32], r: usize, width: usize) -> &mut [f32] {
    let start = r.saturating_mul(width);
    block
        .get_mut(start..start.saturating_add(width))
        .unwrap_or(&mut [])
}

#[inline(always)]
fn load(chunks: &[[f32; LANES]], k: usize) -> V {
    chunks.get(k).map_or(V::ZERO, |c| V::new(*c))
}

/// Whole vectors `k..k + C` of `row` (zeros if the row is shorter), with one bounds check
/// for all `C` of them.
#[inline(always)]
fn vectors_at<const C: usize>(row: &[f32], k: usize) -> [V; C] {
    row.as_chunks::<LANES>()
        .0
        .get(k..k + C)
        .and_then(|chunks| <&[[f32; LANES]; C]>::try_from(chunks).ok())
        .map_or([V::ZERO; C], to_vectors)
}

/// `chunks` as vectors. A loop rather than `array::map`, which is not always inlined in
/// large kernels (measured: 4x slower single-row forward when it was not).
#[inline(always)]
fn to_vectors<const C: usize>(chunks: &[[f32; LANES]; C]) -> [V; C] {
    let mut vectors = [V::ZERO; C];
    for (v, c) in vectors.iter_mut().zip(chunks) {
        *v = V::new(*c);
    }
    vectors
}

/// A vector holding `values` (at most [`LANES`] of them) and zeros after them.
#[inline(always)]
fn load_padded(values: &[f32], pad: f32) -> V {
    let mut lanes = [pad; LANES];
    for (lane, v) in lanes.iter_mut().zip(values) {
        *lane = *v;
    }
    V::new(lanes)
}

#[inline(always)]
fn store_partial(dst: &mut [f32], v: V) {
    for (d, s) in dst.iter_mut().zip(v.to_array()) {
        *d = s;
    }
}

/// `row` of a block of rows of width `width`; empty if the block is too short (callers
/// size blocks so that it never is). Products of dimensions saturate, here and in chunk
/// lengths elsewhere: a shape with absurd dimensions and short slices must find no
/// complete row rather than wrap around.
#[inline(always)]
fn row(block: &[f32], r: usize, width: usize) -> &[f32] {
    let start = r.saturating_mul(width);
    block.get(start..start.saturating_add(width)).unwrap_or(&[])
}

/// The first `steps` whole vectors of each of the `N` rows of width `width` that start
/// `block`, or `None` if the block is shorter. Every returned slice has length exactly
/// `steps`, which lets the compiler drop the bounds checks of `load(slice, k)` for
/// `k < steps`; the rows are cut off one after the other, a comparison or two each.
#[inline(always)]
fn block_vectors<const N: usize>(
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
fn tree_level<const SEGMENT: usize>(v: [V; LANES]) -> [V; LANES] {
    let at = |m: usize| v.get(m).copied().unwrap_or(V::ZERO);
    each_lane(|m| tree_pair::<SEGMENT>(at(2 * m), at(2 * m + 1)))
}

/// One pair of [`tree_level`]. A function of its own, not a closure, so that it is
/// always inlined and its lane indices become constants.
#[inline(always)]
fn tree_pair<const SEGMENT: usize>(p: V, q: V) -> V {
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
fn sum_each(acc: [V; LANES]) -> V {
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

/// `Σ x[i]·w[i]`, for the outputs and rows that do not fill a tile.
#[inline]
fn dot(x: &[f32], w: &[f32]) -> f32 {
    let (x_chunks, x_tail) = x.as_chunks::<LANES>();
    let (w_chunks, w_tail) = w.as_chunks::<LANES>();
    // Two accumulators so consecutive FMAs do not wait on each other.
    let (x_pairs, x_last) = x_chunks.as_chunks::<2>();
    let (w_pairs, w_last) = w_chunks.as_chunks::<2>();
    let (mut even, mut odd) = (V::ZERO, V::ZERO);
    for ([x0, x1], [w0, w1]) in x_pairs.iter().zip(w_pairs) {
        even = V::new(*x0).mul_add(V::new(*w0), even);
        odd = V::new(*x1).mul_add(V::new(*w1), odd);
    }
    for (x0, w0) in x_last.iter().zip(w_last) {
        even = V::new(*x0).mul_add(V::new(*w0), even);
    }
    let mut sum = (even + odd).reduce_add();
    for (a, b) in x_tail.iter().zip(w_tail) {
        sum += a * b;
    }
    sum
}

/// `output[b][o] = bias[o] + Σ_i input[b][i]·weights[o][i]` (overwrites `output`).
///
/// Lengths: `input` `rows·inputs`, `weights` `outputs·inputs`, `bias` `outputs`,
/// `output` `rows·outputs`.
pub fn dense_forward(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    output: &mut [f32],
    shape: Shape,
) {
    if shape.is_empty() {
        return;
    }
    let Shape {
        rows,
        inputs,
        outputs,
    } = shape;
    let rows = rows_in(output, outputs, rows_in(input, inputs, rows));
    let count = rows_in(weights, inputs, outputs).min(bias.len());
    let (Some(input), Some(output), Some(weights), Some(bias)) = (
        input.get(..rows * inputs),
        output.get_mut(..rows * outputs),
        weights.get(..count * inputs),
        bias.get(..count),
    ) else {
        return;
    };
    // The packed panel is `PACKED_VECTORS · LANES` outputs wide and costs its set-up whatever
    // the layer's width: a narrow layer (e.g. 64 → 1, measured 8–25× slower than scalar
    // there) takes the dot-product route instead.
    #[cfg(target_feature = "avx512f")]
    if rows >= PACKED_ROWS && inputs <= PACKED_DEPTH && outputs >= LANES {
        forward_packed(input, weights, bias, output, rows, inputs, outputs);
        return;
    }
    // A layer narrower than a tile (e.g. 64 → 1) takes `LANES` rows per tile instead, so
    // that one reduction tree sums `LANES` rows of one output rather than each row's dot
    // product being summed on its own.
    let (x_rest, y_rest) = if outputs < FORWARD_OUTPUTS {
        forward_narrow(input, weights, bias, output, rows, inputs, outputs)
    } else {
        let (x, w, b) = (input, weights, bias);
        forward_blocks::<FORWARD_ROWS, FORWARD_OUTPUTS>(x, w, b, output, rows, inputs, outputs)
    };
    for (x, y) in x_rest
        .chunks_exact(inputs)
        .zip(y_rest.chunks_exact_mut(outputs))
    {
        forward_rows::<1, FORWARD_SINGLE_OUTPUTS>(x, weights, bias, y, inputs, outputs);
    }
}

/// `input` and `output` split after their first `rows` rows (of `inputs` and `outputs`
/// values): the blocked part and the rest, or `None` if a slice is shorter.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn split_rows<'a, 'b>(
    input: &'a [f32],
    output: &'b mut [f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
) -> Option<((&'a [f32], &'a [f32]), (&'b mut [f32], &'b mut [f32]))> {
    Some((
        input.split_at_checked(rows * inputs)?,
        output.split_at_mut_checked(rows * outputs)?,
    ))
}

/// The forward pass of a layer narrower than a tile, for the batch's whole blocks of
/// [`LANES`] rows: each output's `LANES` dot products as vectors, then one reduction tree
/// for all of them. Returns the rows left over (input, output).
#[inline(never)]
fn forward_narrow<'a, 'b>(
    input: &'a [f32],
    weights: &[f32],
    bias: &[f32],
    output: &'b mut [f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
) -> (&'a [f32], &'b mut [f32]) {
    let blocked = rows / LANES * LANES;
    let Some(((x_blocks, x_rest), (y_blocks, y_rest))) =
        split_rows(input, output, blocked, inputs, outputs)
    else {
        return (&[], &mut []);
    };
    let tail = overlap_column(inputs);
    let blocks = x_blocks
        .chunks_exact(LANES.saturating_mul(inputs))
        .zip(y_blocks.chunks_exact_mut(LANES.saturating_mul(outputs)));
    for (x, y) in blocks {
        for (o, (w, b)) in weights.chunks_exact(inputs).zip(bias).enumerate() {
            let dots = each_lane(|r| dot_vector(row(x, r, inputs), w, tail));
            let sums = (sum_each(dots) + V::splat(*b)).to_array();
            for (y_r, s) in y.chunks_exact_mut(outputs).zip(sums) {
                if let Some(y_o) = y_r.get_mut(o) {
                    *y_o = s;
                }
            }
        }
    }
    (x_rest, y_rest)
}

/// `x·w` lane by lane, not yet summed across lanes: whole vectors, then the tail as the
/// overlapping last vector (`tail` = [`overlap_column`]) or, for rows shorter than a
/// vector, padded with zeros.
#[inline(always)]
fn dot_vector(x: &[f32], w: &[f32], tail: Option<(usize, V)>) -> V {
    let (x_chunks, x_tail) = x.as_chunks::<LANES>();
    let w_chunks = w.as_chunks::<LANES>().0;
    let mut acc = V::ZERO;
    for (a, b) in x_chunks.iter().zip(w_chunks) {
        acc = V::new(*a).mul_add(V::new(*b), acc);
    }
    if x_tail.is_empty() {
        return acc;
    }
    match tail {
        Some((start, keep)) => (load_at(x, start) & keep).mul_add(load_at(w, start), acc),
        None => load_padded(x, 0.0).mul_add(load_padded(w, 0.0), acc),
    }
}

/// `acc` plus the products of the inputs past the last whole vector: one more vector per
/// row and per output, the row's last `LANES` inputs with the lanes already summed masked
/// off (or, for rows shorter than a vector, the row padded with zeros). Out of line: inlined,
/// it made the single-row forward pass of layers without a tail 1.5× slower.
#[inline(never)]
fn with_tails<const R: usize, const C: usize>(
    mut acc: [[V; C]; R],
    x: &[f32],
    w: &[f32],
    inputs: usize,
) -> [[V; C]; R] {
    let tail = overlap_column(inputs);
    let load_tail = |v: &[f32]| match tail {
        Some((start, _)) => load_at(v, start),
        None => load_padded(v, 0.0),
    };
    for (r, acc_r) in acc.iter_mut().enumerate() {
        let v = load_tail(row(x, r, inputs));
        let x_t = tail.map_or(v, |(_, keep)| v & keep);
        for (c, a) in acc_r.iter_mut().enumerate() {
            *a = x_t.mul_add(load_tail(row(w, c, inputs)), *a);
        }
    }
    acc
}

/// The forward pass of the batch's whole blocks of `R` rows; returns the rows left over
/// (input, output).
#[inline(always)]
fn forward_blocks<'a, 'b, const R: usize, const C: usize>(
    input: &'a [f32],
    weights: &[f32],
    bias: &[f32],
    output: &'b mut [f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
) -> (&'a [f32], &'b mut [f32]) {
    let blocked = rows / R * R;
    let Some(((x_blocks, x_rest), (y_blocks, y_rest))) =
        split_rows(input, output, blocked, inputs, outputs)
    else {
        return (&[], &mut []);
    };
    let blocks = x_blocks
        .chunks_exact(R.saturating_mul(inputs))
        .zip(y_blocks.chunks_exact_mut(R.saturating_mul(outputs)));
    for (x, y) in blocks {
        forward_rows::<R, C>(x, weights, bias, y, inputs, outputs);
    }
    (x_rest, y_rest)
}

/// The forward pass of `R` rows: tiles of `R × C` dot products, then the outputs left
/// over one dot product at a time. `weights` and `bias` hold the outputs to compute.
#[inline(always)]
fn forward_rows<const R: usize, const C: usize>(
    x: &[f32],
    weights: &[f32],
    bias: &[f32],
    y: &mut [f32],
    inputs: usize,
    outputs: usize,
) {
    const {
        assert!(
            (R * C).is_multiple_of(LANES),
            "a tile must fill whole reduction trees"
        )
    };
    let steps = inputs / LANES;
    let Some(x_chunks) = block_vectors::<R>(x, inputs, steps) else {
        return;
    };
    let tiled = bias.len() / C * C;
    let (Some((w_tiles, w_rest)), Some((b_tiles, b_rest))) = (
        weights.split_at_checked(tiled * inputs),
        bias.split_at_checked(tiled),
    ) else {
        return;
    };
    let tiles = w_tiles
        .chunks_exact(C.saturating_mul(inputs))
        .zip(b_tiles.chunks_exact(C));
    for (tile, (w, b)) in tiles.enumerate() {
        let Some(w_chunks) = block_vectors::<C>(w, inputs, steps) else {
            return;
        };
        let mut acc = [[V::ZERO; C]; R];
        for k in 0..steps {
            let mut wv = [V::ZERO; C];
            for (v, w) in wv.iter_mut().zip(&w_chunks) {
                *v = load(w, k);
            }
            for (acc_r, x_r) in acc.iter_mut().zip(&x_chunks) {
                let xv = load(x_r, k);
                for (a, w) in acc_r.iter_mut().zip(&wv) {
                    *a = xv.mul_add(*w, *a);
                }
            }
        }
        // The inputs past the last whole vector (none when `inputs` is a multiple of LANES):
        // one more vector per row and per output, the row's last `LANES` inputs with the
        // lanes already summed masked off (or, for rows shorter than a vector, the row
        // padded with zeros).
        if !inputs.is_multiple_of(LANES) {
            acc = with_tails(acc, x, w, inputs);
        }
        let groups = acc.as_flattened().chunks_exact(LANES);
        if C.is_multiple_of(LANES) {
            // Each tree sums `LANES` consecutive outputs of one row: add the bias and store
            // them as one vector (left to itself, the compiler took them lane by lane).
            for (g, group) in groups.enumerate() {
                let group: [V; LANES] = each_lane(|j| group.get(j).copied().unwrap_or(V::ZERO));
                let (r, c) = (g * LANES / C, g * LANES % C);
                let sum = sum_each(group) + load_at(b, c);
                store_at(row_mut(y, r, outputs), tile * C + c, sum);
            }
            continue;
        }
        let mut sums = [[0.0f32; C]; R];
        let out_groups = sums.as_flattened_mut().chunks_exact_mut(LANES);
        for (group, out) in groups.zip(out_groups) {
            let group: [V; LANES] = each_lane(|j| group.get(j).copied().unwrap_or(V::ZERO));
            if let Ok(out) = <&mut [f32; LANES]>::try_from(out) {
                *out = sum_each(group).to_array();
            }
        }
        for (y_r, s_r) in y.chunks_exact_mut(outputs).zip(&sums) {
            if let Some(dst) = y_r.get_mut(tile * C..(tile + 1) * C) {
                for ((d, s), b) in dst.iter_mut().zip(s_r).zip(b) {
                    *d = s + b;
                }
            }
        }
    }
    for (y_r, x_r) in y.chunks_exact_mut(outputs).zip(x.chunks_exact(inputs)) {
        let rest = y_r.get_mut(tiled..).unwrap_or(&mut []);
        for ((y_o, w_o), b_o) in rest.iter_mut().zip(w_rest.chunks_exact(inputs)).zip(b_rest) {
            *y_o = dot(x_r, w_o) + b_o;
        }
    }
}

#[cfg(target_feature = "avx512f")]
/// A panel of `Wᵀ`: `panel[k][v]` holds, for input `k0 + k`, the weights of outputs
/// `o0 + v·LANES ..` (zeros past the last output).
type Panel = [[V; PACKED_VECTORS]; PACKED_DEPTH];

#[cfg(target_feature = "avx512f")]
/// The forward pass for batches of at least [`PACKED_ROWS`] rows: `W` is transposed, a
/// panel at a time, so that each step is a broadcast input times loaded vectors of
/// outputs, with no horizontal sums; the transposition is paid once per panel and shared
/// by every row of the batch. Out of line, so that its 16 KiB panel is no part of the
/// stack frame of the other routes.
#[inline(never)]
fn forward_packed(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    output: &mut [f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
) {
    let count = bias.len();
    let width = PACKED_VECTORS * LANES;
    let mut panel: Panel = [[V::ZERO; PACKED_VECTORS]; PACKED_DEPTH];
    let blocked = rows / PACKED_ROWS * PACKED_ROWS;
    let Some(((x_blocks, x_rest), (y_blocks, y_rest))) =
        split_rows(input, output, blocked, inputs, outputs)
    else {
        return;
    };
    for o0 in (0..count).step_by(width) {
        let n = (count - o0).min(width);
        let b = bias.get(o0..).unwrap_or(&[]);
        let start: [V; PACKED_VECTORS] =
            array::from_fn(|v| load_padded(b.get(v * LANES..).unwrap_or(&[]), 0.0));
        for k0 in (0..inputs).step_by(PACKED_DEPTH) {
            let depth = (inputs - k0).min(PACKED_DEPTH);
            pack(&mut panel, weights, inputs, o0, n, k0, depth);
            let Some(panel) = panel.get(..depth) else {
                return;
            };
            let tile = PackedTile {
                panel,
                inputs,
                outputs,
                o0,
                n,
                k0,
                start: (k0 == 0).then_some(start),
            };
            let blocks = x_blocks
                .chunks_exact(PACKED_ROWS.saturating_mul(inputs))
                .zip(y_blocks.chunks_exact_mut(PACKED_ROWS.saturating_mul(outputs)));
            for (x, y) in blocks {
                tile.run::<PACKED_ROWS>(x, y);
            }
            // The rows left over, as one tile of their own size: one row at a time would
            // leave only `PACKED_VECTORS` accumulators, too few to hide the FMA latency.
            let left = y_rest.len() / outputs;
            match left {
                1 => tile.run::<1>(x_rest, y_rest),
                2 => tile.run::<2>(x_rest, y_rest),
                3 => tile.run::<3>(x_rest, y_rest),
                4 => tile.run::<4>(x_rest, y_rest),
                _ => {
                    let rows = x_rest
                        .chunks_exact(inputs)
                        .zip(y_rest.chunks_exact_mut(outputs));
                    for (x, y) in rows {
                        tile.run::<1>(x, y);
                    }
                }
            }
        }
    }
}

#[cfg(target_feature = "avx512f")]
/// Fills `panel[..depth]` from outputs `o0..o0 + n` and inputs `k0..k0 + depth` of `W`,
/// whole `LANES × LANES` blocks by an in-register transpose, the edges lane by lane.
#[inline(always)]
fn pack(
    panel: &mut Panel,
    weights: &[f32],
    inputs: usize,
    o0: usize,
    n: usize,
    k0: usize,
    depth: usize,
) {
    for v in 0..PACKED_VECTORS {
        let first = o0 + v * LANES;
        let present = n.saturating_sub(v * LANES).min(LANES);
        let w_rows: [&[f32]; LANES] = each_lane(|j| {
            if j < present {
                row(weights, first + j, inputs)
                    .get(k0..k0 + depth)
                    .unwrap_or(&[])
            } else {
                &[]
            }
        });
        let mut k = 0;
        while k < depth {
            let chunk = (depth - k).min(LANES);
            let targets = panel.get_mut(k..k + chunk).unwrap_or(&mut []);
            if chunk == LANES || depth >= LANES {
                // A whole block, or for the last inputs of a panel at least a vector deep,
                // the block ending at the panel's end, of which only the columns not yet
                // packed are kept. Rows past the last output load as zeros.
                let from = if chunk == LANES { k } else { depth - LANES };
                let block: [V; LANES] = each_lane(|j| block_row(&w_rows, j, from));
                let columns = transpose(block);
                let fresh = columns.iter().skip(k - from);
                for (t, column) in targets.iter_mut().zip(fresh) {
                    if let Some(slot) = t.get_mut(v) {
                        *slot = *column;
                    }
                }
            } else {
                for (kk, t) in targets.iter_mut().enumerate() {
                    let lanes = w_rows.map(|w| w.get(k + kk).copied().unwrap_or(0.0));
                    if let Some(slot) = t.get_mut(v) {
                        *slot = V::new(lanes);
                    }
                }
            }
            k += chunk;
        }
    }
}

/// Shuffle indices (into the 32 lanes of a pair of vectors) for one stage of the 16 × 16
/// transpose: rows `i` and `i + s` (bit `s` of `i` clear) swap their off-diagonal
/// `s`-wide blocks; `upper` selects the row with the bit set.
#[cfg(target_feature = "avx512f")]
const fn transpose_indices(s: u32, upper: bool) -> wide::u32x16 {
    const fn source(s: u32, upper: bool, j: u32) -> u32 {
        match (upper, j & s == 0) {
            (false, true) => j,
            (false, false) => 16 + j - s,
            (true, true) => j + s,
            (true, false) => 16 + j,
        }
    }
    macro_rules! lanes {
        ($($j:literal)*) => { [$(source(s, upper, $j)),*] };
    }
    wide::u32x16::new(lanes!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15))
}

/// `LANES` weights of row `j` from input `k` on.
#[cfg(target_feature = "avx512f")]
#[inline(always)]
fn block_row(w_rows: &[&[f32]; LANES], j: usize, k: usize) -> V {
    w_rows
        .get(j)
        .and_then(|w| w.get(k..k + LANES))
        .and_then(|w| <[f32; LANES]>::try_from(w).ok())
        .map_or(V::ZERO, V::new)
}

/// One stage of the transpose, one two-source shuffle (`vpermt2ps`) per row.
#[cfg(target_feature = "avx512f")]
#[inline(always)]
fn transpose_stage<const S: usize>(v: [V; LANES]) -> [V; LANES] {
    use wide::ShuffleExt;
    let lower = const { transpose_indices(S as u32, false) };
    let upper = const { transpose_indices(S as u32, true) };
    let at = |i: usize| v.get(i).copied().unwrap_or(V::ZERO);
    each_lane(|i| {
        let indices = if i & S == 0 { lower } else { upper };
        [at(i & !S), at(i | S)].shuffle(indices)
    })
}

/// Row `k` of the result is column `k` of `block`.
#[cfg(target_feature = "avx512f")]
#[inline(always)]
fn transpose(block: [V; LANES]) -> [V; LANES] {
    let m = transpose_stage::<8>(block);
    let m = transpose_stage::<4>(m);
    let m = transpose_stage::<2>(m);
    transpose_stage::<1>(m)
}

#[cfg(target_feature = "avx512f")]
/// One panel applied to blocks of rows.
struct PackedTile<'a> {
    panel: &'a [[V; PACKED_VECTORS]],
    inputs: usize,
    outputs: usize,
    o0: usize,
    n: usize,
    k0: usize,
    /// The bias, for the first panel of inputs; later panels add to the output.
    start: Option<[V; PACKED_VECTORS]>,
}

#[cfg(target_feature = "avx512f")]
impl PackedTile<'_> {
    /// `y[r][o0..o0 + n] (+)= x[r][k0..] · panel` for `R` rows.
    #[inline(always)]
    fn run<const R: usize>(&self, x: &[f32], y: &mut [f32]) {
        let panel = self.panel;
        let mut x_rows: [&[f32]; R] = [&[]; R];
        for (dst, r) in x_rows.iter_mut().zip(0..R) {
            // Exactly as long as the panel, so that `x_r.get(k)` below needs no check.
            let Some(x_r) = row(x, r, self.inputs)
                .get(self.k0..)
                .and_then(|x_r| x_r.get(..panel.len()))
            else {
                return;
            };
            *dst = x_r;
        }
        let acc: [[V; PACKED_VECTORS]; R] = match self.start {
            Some(start) => [start; R],
            None => array::from_fn(|r| {
                let y_r = row(y, r, self.outputs)
                    .get(self.o0..self.o0 + self.n)
                    .unwrap_or(&[]);
                let (whole, tail) = y_r.as_chunks::<LANES>();
                array::from_fn(|v| match whole.get(v) {
                    Some(c) => V::new(*c),
                    None if v == whole.len() => load_padded(tail, 0.0),
                    None => V::ZERO,
                })
            }),
        };
        let acc = panel_product(panel, x_rows, acc);
        for (y_r, acc_r) in y.chunks_exact_mut(self.outputs).zip(&acc) {
            let dst = y_r.get_mut(self.o0..self.o0 + self.n).unwrap_or(&mut []);
            let (whole, tail) = dst.as_chunks_mut::<LANES>();
            let count = whole.len();
            for (d, a) in whole.iter_mut().zip(acc_r) {
                *d = a.to_array();
            }
            if let Some(a) = acc_r.get(count) {
                store_partial(tail, *a);
            }
        }
    }
}

#[cfg(target_feature = "avx512f")]
/// `acc[r] + Σ_k x_rows[r][k] · panel[k]`; every row of `x_rows` is `panel.len()` long.
/// The accumulators go in and out by value so that they live in registers throughout.
#[inline(always)]
fn panel_product<const R: usize>(
    panel: &[[V; PACKED_VECTORS]],
    x_rows: [&[f32]; R],
    mut acc: [[V; PACKED_VECTORS]; R],
) -> [[V; PACKED_VECTORS]; R] {
    for k in 0..panel.len() {
        let Some(p) = panel.get(k) else {
            break;
        };
        for (acc_r, x_r) in acc.iter_mut().zip(&x_rows) {
            let xk = V::splat(x_r.get(k).copied().unwrap_or(0.0));
            for (a, w) in acc_r.iter_mut().zip(p) {
                *a = xk.mul_add(*w, *a);
            }
        }
    }
    acc
}

/// `d_input[b][i] *= Σ_o d_output[b][o]·weights[o][i]`.
///
/// On entry `d_input` holds the derivative of the activation that produced this layer's
/// input (or ones); on return it holds the loss gradient with respect to that activation's
/// pre-activation. Lengths: `d_output` `rows·outputs`, `weights` `outputs·inputs`,
/// `d_input` `rows·inputs`.
pub fn dense_input_gradient(d_output: &[f32], weights: &[f32], d_input: &mut [f32], shape: Shape) {
    if shape.is_empty() {
        return;
    }
    let Shape {
        rows,
        inputs,
        outputs,
    } = shape;
    let rows = rows_in(d_input, inputs, rows_in(d_output, outputs, rows));
    let count = rows_in(weights, inputs, outputs);
    let (Some(d_output), Some(d_input), Some(weights)) = (
        d_output.get(..rows * outputs),
        d_input.get_mut(..rows * inputs),
        weights.get(..count * inputs),
    ) else {
        return;
    };
    let blocked = rows / AXPY_ROWS * AXPY_ROWS;
    let (Some((dy_blocks, dy_rest)), Some((dx_blocks, dx_rest))) = (
        d_output.split_at_checked(blocked * outputs),
        d_input.split_at_mut_checked(blocked * inputs),
    ) else {
        return;
    };
    let blocks = dy_blocks
        .chunks_exact(AXPY_ROWS.saturating_mul(outputs))
        .zip(dx_blocks.chunks_exact_mut(AXPY_ROWS.saturating_mul(inputs)));
    for (dy, dx) in blocks {
        input_gradient_rows::<AXPY_ROWS>(dy, weights, dx, inputs, outputs);
    }
    for (dy, dx) in dy_rest
        .chunks_exact(outputs)
        .zip(dx_rest.chunks_exact_mut(inputs))
    {
        input_gradient_rows::<1>(dy, weights, dx, inputs, outputs);
    }
}

/// The input gradient of `R` rows, in tiles of `R` rows × `AXPY_VECTORS` vectors of inputs.
#[inline(always)]
fn input_gradient_rows<const R: usize>(
    dy: &[f32],
    weights: &[f32],
    dx: &mut [f32],
    inputs: usize,
    outputs: usize,
) {
    // `weights` holds the outputs present (the caller cut it to whole rows): the sweeps
    // below stop at its end, before any row of `dy` would.
    let dy_rows: [&[f32]; R] = array::from_fn(|r| row(dy, r, outputs));
    let steps = inputs / LANES;
    let mut k = 0;
    while k + AXPY_VECTORS <= steps {
        input_gradient_tile::<R, AXPY_VECTORS>(dy_rows, weights, dx, inputs, k);
        k += AXPY_VECTORS;
    }
    // A single row has one accumulator per vector: take two vectors at a time there, to
    // have two independent chains (measured: 1.6× at 1 × 32 × 64; with four rows the
    // two-vector tile was slower than two one-vector tiles).
    if R == 1 && k + 2 <= steps {
        input_gradient_tile::<R, 2>(dy_rows, weights, dx, inputs, k);
        k += 2;
    }
    while k < steps {
        input_gradient_tile::<R, 1>(dy_rows, weights, dx, inputs, k);
        k += 1;
    }
    if inputs.is_multiple_of(LANES) {
        return;
    }
    let start = steps * LANES;
    let mut acc = [V::ZERO; R];
    for (o, w_row) in weights.chunks_exact(inputs).enumerate() {
        let w = load_padded(w_row.get(start..).unwrap_or(&[]), 0.0);
        for (a, dy_r) in acc.iter_mut().zip(&dy_rows) {
            *a = V::splat(dy_r.get(o).copied().unwrap_or(0.0)).mul_add(w, *a);
        }
    }
    for (dx_r, a) in dx.chunks_exact_mut(inputs).zip(acc) {
        let tail = dx_r.get_mut(start..).unwrap_or(&mut []);
        for (d, s) in tail.iter_mut().zip(a.to_array()) {
            *d *= s;
        }
    }
}

/// Vectors `k..k + C` of the input gradient of `R` rows: a sweep over every output.
#[inline(always)]
fn input_gradient_tile<const R: usize, const C: usize>(
    dy_rows: [&[f32]; R],
    weights: &[f32],
    dx: &mut [f32],
    inputs: usize,
    k: usize,
) {
    let mut acc = [[V::ZERO; C]; R];
    for (o, w_row) in weights.chunks_exact(inputs).enumerate() {
        let wv = vectors_at::<C>(w_row, k);
        for (acc_r, dy_r) in acc.iter_mut().zip(&dy_rows) {
            let d = V::splat(dy_r.get(o).copied().unwrap_or(0.0));
            for (a, w) in acc_r.iter_mut().zip(&wv) {
                *a = d.mul_add(*w, *a);
            }
        }
    }
    for (dx_r, acc_r) in dx.chunks_exact_mut(inputs).zip(&acc) {
        let chunks = dx_r.as_chunks_mut::<LANES>().0;
        for (d, a) in chunks.iter_mut().skip(k).zip(acc_r) {
            *d = (V::new(*d) * *a).to_array();
        }
    }
}

/// How a weight-gradient sweep adds the penalty, fixed per call so that its tiles carry no
/// branch on it.
const NO_PENALTY: u8 = 0;
/// L2 alone (the common case): `2·l2·w` and `Σw²`, no sign and no `Σ|w|`.
const L2_PENALTY: u8 = 1;
/// The general `l1·sign(w) + 2·l2·w`, with `Σ|w|` and `Σw²`.
const L1_L2_PENALTY: u8 = 2;

/// Independent chains of each running sum: consecutive weights add to different chains, so
/// that a sweep does not wait on the latency of one accumulator.
const CHAINS: usize = 4;

/// Running `Σ|w|` and `Σw²` of the weights a sweep has penalized.
#[derive(Clone, Copy)]
struct PenaltySums {
    abs: [V; CHAINS],
    square: [V; CHAINS],
    abs_tail: f32,
    square_tail: f32,
}

impl PenaltySums {
    const ZERO: Self = Self {
        abs: [V::ZERO; CHAINS],
        square: [V::ZERO; CHAINS],
        abs_tail: 0.0,
        square_tail: 0.0,
    };

    /// Adds `w`'s terms and returns `penalty'(w) = l1·sign(w) + 2·l2·w`, as
    /// [`Regularizer::gradient`] computes it lane by lane.
    #[inline(always)]
    fn add(&mut self, w: V, penalty: Regularizer) -> V {
        self.penalize::<L1_L2_PENALTY>(0, w, V::ZERO, &Factors::new(penalty))
    }

    /// `acc + penalty'(w)` for a penalty of kind `P`, adding `w`'s terms to chain `chain`
    /// (taken modulo [`CHAINS`]). Padding lanes of `w` must hold zeros: they add nothing.
    #[inline(always)]
    fn penalize<const P: u8>(&mut self, chain: usize, w: V, acc: V, factors: &Factors) -> V {
        let chain = chain % CHAINS;
        if let Some(square) = self.square.get_mut(chain) {
            *square = w.mul_add(w, *square);
        }
        if P == L2_PENALTY {
            return factors.twice_l2.mul_add(w, acc);
        }
        if let Some(abs) = self.abs.get_mut(chain) {
            *abs += w.abs();
        }
        let sign = (w.simd_gt(V::ZERO) & V::ONE) - (w.simd_lt(V::ZERO) & V::ONE);
        factors.l1.mul_add(sign, factors.twice_l2.mul_add(w, acc))
    }

    /// The scalar twin of [`PenaltySums::add`] for weights outside whole vectors.
    #[inline(always)]
    fn add_one(&mut self, w: f32, penalty: Regularizer) -> f32 {
        self.abs_tail += crate::math::abs(w);
        self.square_tail += w * w;
        penalty.gradient(w)
    }

    fn loss(&self, penalty: Regularizer) -> f32 {
        let total = |chains: &[V; CHAINS], tail: f32| {
            chains.iter().fold(V::ZERO, |s, c| s + *c).reduce_add() + tail
        };
        let square = penalty.l2_factor() * total(&self.square, self.square_tail);
        if penalty.l1_factor() == 0.0 {
            // As the scalar set: L2 alone does not look at `Σ|w|` (0·∞ would be NaN).
            return square;
        }
        penalty.l1_factor() * total(&self.abs, self.abs_tail) + square
    }
}

/// A penalty's factors as vectors.
struct Factors {
    l1: V,
    twice_l2: V,
}

impl Factors {
    fn new(penalty: Regularizer) -> Self {
        Self {
            l1: V::splat(penalty.l1_factor()),
            twice_l2: V::splat(2.0 * penalty.l2_factor()),
        }
    }
}

/// `d_weights[o][i] = Σ_b d_output[b][o]·input[b][i] + penalty'(weights[o][i])`
/// (overwrites), and returns the penalty's loss term `l1·Σ|w| + l2·Σw²`.
///
/// `penalty'(w) = l1·sign(w) + 2·l2·w` (see [`Regularizer::gradient`]). The loss term comes
/// out of the same sweep, so reporting the regularized loss costs no extra pass over the
/// weights: each tile of `d_weights` is written once with its batch sum and its penalty
/// gradient, while `|w|` and `w²` go into running vector sums.
pub fn dense_weight_gradient(
    d_output: &[f32],
    input: &[f32],
    weights: &[f32],
    d_weights: &mut [f32],
    shape: Shape,
    penalty: Regularizer,
) -> f32 {
    let Shape {
        rows,
        inputs,
        outputs,
    } = shape;
    if inputs == 0 || outputs == 0 {
        return 0.0;
    }
    let rows = rows_in(input, inputs, rows_in(d_output, outputs, rows));
    // Rows of `d_weights` that get the batch sum; the first `fused` of them also have
    // their weights present and take the penalty in the same sweep. The scalar set
    // penalizes `penalized` values counted flat, which can end inside a row when
    // `weights` is short; those few get their penalty after the sweep.
    let gradient_rows = rows_in(d_weights, inputs, outputs);
    let fused = rows_in(weights, inputs, gradient_rows);
    // The tiles write whole rows. A partial last row (a `d_weights` shorter than the shape)
    // gets no batch sum but may get a penalty below, so it starts from zero.
    let covered = inputs.saturating_mul(outputs).min(d_weights.len());
    d_weights
        .get_mut(gradient_rows * inputs..covered)
        .unwrap_or(&mut [])
        .fill(0.0);
    let penalized = inputs
        .saturating_mul(outputs)
        .min(d_weights.len())
        .min(weights.len());
    let (Some(d_output), Some(input), Some(fused_weights)) = (
        d_output.get(..rows * outputs),
        input.get(..rows * inputs),
        weights.get(..fused * inputs),
    ) else {
        return 0.0;
    };
    let Some((dw_fused, dw_rest)) = d_weights.split_at_mut_checked(fused * inputs) else {
        return 0.0;
    };
    let dw_rest = dw_rest
        .get_mut(..(gradient_rows - fused) * inputs)
        .unwrap_or(&mut []);
    let mut sums = PenaltySums::ZERO;
    if inputs >= LANES {
        let outer = Outer::new(d_output, input, inputs, outputs, penalty);
        match (penalty.is_none(), penalty.l1_factor() == 0.0) {
            (true, _) => outer.run::<NO_PENALTY>(&[], dw_fused, 0, &mut sums),
            (false, true) => outer.run::<L2_PENALTY>(fused_weights, dw_fused, 0, &mut sums),
            (false, false) => outer.run::<L1_L2_PENALTY>(fused_weights, dw_fused, 0, &mut sums),
        }
        outer.run::<NO_PENALTY>(&[], dw_rest, fused, &mut sums);
    } else {
        let sweep = Sweep {
            d_output,
            input,
            inputs,
            outputs,
            penalty,
        };
        let penalize = !penalty.is_none();
        if penalize {
            sweep.run::<true>(fused_weights, dw_fused, 0, &mut sums);
        } else {
            sweep.run::<false>(&[], dw_fused, 0, &mut sums);
        }
        sweep.run::<false>(&[], dw_rest, fused, &mut sums);
    }
    if penalty.is_none() {
        return 0.0;
    }
    let done = fused * inputs;
    let leftover = d_weights.iter_mut().zip(weights).take(penalized).skip(done);
    for (g, &w) in leftover {
        *g += sums.add_one(w, penalty);
    }
    sums.loss(penalty)
}

/// Accumulator vectors of a weight-gradient tile of layers at least [`LANES`] wide: 16 of
/// AVX-512's 32 registers, 8 of the 16 elsewhere (room for the loaded inputs).
#[cfg(target_feature = "avx512f")]
const OUTER_ACCUMULATORS: usize = 16;
#[cfg(not(target_feature = "avx512f"))]
const OUTER_ACCUMULATORS: usize = 8;

/// The weight gradient of a layer of at least [`LANES`] inputs.
///
/// Each row of inputs is cut into *columns*: whole vectors at `0, LANES, 2·LANES, …`, and
/// when `inputs` is not a multiple of [`LANES`] one more vector that ends at the row's end,
/// overlapping the last whole one: no padding, no lane-by-lane tail. That last column is
/// swept after the whole ones, with the lanes it shares masked out of what it adds (the
/// gradient and the penalty's sums), so every weight is counted once. A tile is `R` outputs
/// × `C` columns of accumulators; the batch streams past it (one broadcast `d_output` per
/// output, one loaded vector per column, `R·C` multiply-adds per batch row), then each row
/// of the tile is written once with the batch sum and the penalty (the overlapping column
/// blends its new lanes into what the whole columns wrote).
struct Outer<'a> {
    d_output: &'a [f32],
    input: &'a [f32],
    inputs: usize,
    outputs: usize,
    factors: Factors,
}

/// `[0, 1, …, LANES - 1]`.
#[inline(always)]
fn lane_indices() -> V {
    V::new(each_lane(|j| j as f32))
}

/// For a row of `width` floats: where its overlapping last column starts and the mask of
/// that column's lanes that no whole column holds; `None` when `width` is a multiple of
/// [`LANES`] or shorter than one vector.
#[inline(always)]
fn overlap_column(width: usize) -> Option<(usize, V)> {
    let shared = LANES - width % LANES;
    let keep = lane_indices().simd_ge(V::splat(shared as f32));
    let start = width.checked_sub(LANES)?;
    (shared != LANES).then_some((start, keep))
}

/// The vector at `start` of `row` (zeros if the row is shorter).
#[inline(always)]
fn load_at(row: &[f32], start: usize) -> V {
    row.get(start..)
        .and_then(|r| r.first_chunk::<LANES>())
        .map_or(V::ZERO, |c| V::new(*c))
}

/// Writes `v` at `start` of `row` (nothing if the row is shorter).
#[inline(always)]
fn store_at(row: &mut [f32], start: usize, v: V) {
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
fn vectors_from<const C: usize>(row: &[f32], start: usize) -> Option<&[[f32; LANES]; C]> {
    row.get(start..start.saturating_add(C * LANES))?
        .as_chunks::<LANES>()
        .0
        .try_into()
        .ok()
}

/// [`vectors_from`] for writing.
#[inline(always)]
fn vectors_from_mut<const C: usize>(
    row: &mut [f32],
    start: usize,
) -> Option<&mut [[f32; LANES]; C]> {
    row.get_mut(start..start.saturating_add(C * LANES))?
        .as_chunks_mut::<LANES>()
        .0
        .try_into()
        .ok()
}

impl<'a> Outer<'a> {
    fn new(
        d_output: &'a [f32],
        input: &'a [f32],
        inputs: usize,
        outputs: usize,
        penalty: Regularizer,
    ) -> Self {
        Self {
            d_output,
            input,
            inputs,
            outputs,
            factors: Factors::new(penalty),
        }
    }

    /// Writes the batch sum (and the penalty of kind `P` of `weights`, which then holds the
    /// same rows) to the rows of `d_weights`, which are the layer's outputs `first..`.
    fn run<const P: u8>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        first: usize,
        sums: &mut PenaltySums,
    ) {
        const A: usize = OUTER_ACCUMULATORS;
        // No row, no work: with absurd widths the loop over columns would not end.
        if d_weights.len() < self.inputs {
            return;
        }
        let whole = self.inputs / LANES;
        let mut c = 0;
        while c + 4 <= whole {
            let start = c * LANES;
            self.group::<{ A / 4 }, 4, P, false>(weights, d_weights, first, start, V::ZERO, sums);
            c += 4;
        }
        let start = c * LANES;
        match whole - c {
            3 => self.group::<{ A / 4 }, 3, P, false>(
                weights,
                d_weights,
                first,
                start,
                V::ZERO,
                sums,
            ),
            2 => self.group::<{ A / 2 }, 2, P, false>(
                weights,
                d_weights,
                first,
                start,
                V::ZERO,
                sums,
            ),
            1 => self.group::<A, 1, P, false>(weights, d_weights, first, start, V::ZERO, sums),
            _ => {}
        }
        if let Some((start, keep)) = overlap_column(self.inputs) {
            self.group::<A, 1, P, true>(weights, d_weights, first, start, keep, sums);
        }
    }

    /// The `C` columns from `start` of every row: tiles of `R` rows, then the rows left
    /// over. `MASKED`: the overlapping last column, whose lanes outside `keep` add nothing.
    #[inline(always)]
    fn group<const R: usize, const C: usize, const P: u8, const MASKED: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        first: usize,
        start: usize,
        keep: V,
        sums: &mut PenaltySums,
    ) {
        let inputs = self.inputs;
        let block = R.saturating_mul(inputs);
        let mut w_blocks = weights.chunks_exact(block);
        let mut dw_blocks = d_weights.chunks_exact_mut(block);
        let mut o = first;
        // The sums travel through the tiles by value, so that they stay in registers.
        let mut local = *sums;
        for dw in &mut dw_blocks {
            let w = w_blocks.next().unwrap_or(&[]);
            local = self.tile::<R, C, P, MASKED>(w, dw, o, start, keep, local);
            o += R;
        }
        let w_rows = w_blocks.remainder().chunks_exact(inputs);
        let w_rows = w_rows.chain(core::iter::repeat(&[][..]));
        let dw_rows = dw_blocks.into_remainder().chunks_exact_mut(inputs);
        for (dw, w) in dw_rows.zip(w_rows) {
            local = self.tile::<1, C, P, MASKED>(w, dw, o, start, keep, local);
            o += 1;
        }
        *sums = local;
    }

    /// Rows `o..o + R` of `d_weights` (and `weights`) at the `C` columns from `start`.
    #[inline(always)]
    fn tile<const R: usize, const C: usize, const P: u8, const MASKED: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        o: usize,
        start: usize,
        keep: V,
        mut sums: PenaltySums,
    ) -> PenaltySums {
        let inputs = self.inputs;
        let mut acc = [[V::ZERO; C]; R];
        let batch = self
            .d_output
            .chunks_exact(self.outputs)
            .zip(self.input.chunks_exact(inputs));
        for (dy_row, x_row) in batch {
            let d = Sweep::d_out::<R>(dy_row, o);
            let xv = vectors_from::<C>(x_row, start).map_or([V::ZERO; C], to_vectors);
            for (acc_r, d_r) in acc.iter_mut().zip(d) {
                let d_r = V::splat(d_r);
                for (a, x) in acc_r.iter_mut().zip(&xv) {
                    *a = d_r.mul_add(*x, *a);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            let Some(dw_r) = d_weights
                .get_mut(r * inputs..)
                .and_then(|dw_r| vectors_from_mut::<C>(dw_r, start))
            else {
                break;
            };
            let w_r = weights
                .get(r * inputs..)
                .and_then(|w_r| vectors_from::<C>(w_r, start));
            let w_r = w_r.map_or([V::ZERO; C], to_vectors);
            for (c, ((g, a), w)) in dw_r.iter_mut().zip(acc_r).zip(w_r).enumerate() {
                let mut add = *a;
                if P != NO_PENALTY {
                    // Masked lanes hold w = 0: no gradient, no |w|, no w².
                    let w = if MASKED { w & keep } else { w };
                    add = sums.penalize::<P>(c, w, add, &self.factors);
                }
                // The overlapping column leaves the lanes that a whole column already
                // wrote as they are.
                *g = if MASKED {
                    keep.select(add, V::new(*g))
                } else {
                    add
                }
                .to_array();
            }
        }
        sums
    }
}

/// The operands of one weight-gradient sweep.
struct Sweep<'a> {
    d_output: &'a [f32],
    input: &'a [f32],
    inputs: usize,
    outputs: usize,
    penalty: Regularizer,
}

impl Sweep<'_> {
    /// Writes the batch sum (and, if `PENALIZE`, the penalty of `weights`) into the rows of
    /// `d_weights`, which are the layer's outputs `first..`.
    fn run<const PENALIZE: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        first: usize,
        sums: &mut PenaltySums,
    ) {
        let inputs = self.inputs;
        let count = d_weights.len() / inputs;
        let blocked = count / AXPY_ROWS * AXPY_ROWS;
        let Some((dw_blocks, dw_rest)) = d_weights.split_at_mut_checked(blocked * inputs) else {
            return;
        };
        let (w_blocks, w_rest) = weights
            .split_at_checked(blocked * inputs)
            .unwrap_or((&[], &[]));
        let w_blocks = w_blocks
            .chunks(AXPY_ROWS.saturating_mul(inputs))
            .chain(core::iter::repeat(&[][..]));
        let blocks = dw_blocks
            .chunks_exact_mut(AXPY_ROWS.saturating_mul(inputs))
            .zip(w_blocks);
        for (block, (dw, w)) in blocks.enumerate() {
            let o = first + block * AXPY_ROWS;
            self.rows::<AXPY_ROWS, PENALIZE>(w, dw, o, sums);
        }
        let w_rest = w_rest.chunks(inputs).chain(core::iter::repeat(&[][..]));
        for (r, (dw, w)) in dw_rest.chunks_exact_mut(inputs).zip(w_rest).enumerate() {
            self.rows::<1, PENALIZE>(w, dw, first + blocked + r, sums);
        }
    }

    /// Rows `o..o + R` of `d_weights`, in tiles of `R` × `AXPY_VECTORS` vectors.
    #[inline(always)]
    fn rows<const R: usize, const PENALIZE: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        o: usize,
        sums: &mut PenaltySums,
    ) {
        let steps = self.inputs / LANES;
        let mut k = 0;
        while k + AXPY_VECTORS <= steps {
            self.tile::<R, AXPY_VECTORS, PENALIZE>(weights, d_weights, o, k, sums);
            k += AXPY_VECTORS;
        }
        while k < steps {
            self.tile::<R, 1, PENALIZE>(weights, d_weights, o, k, sums);
            k += 1;
        }
        if !self.inputs.is_multiple_of(LANES) {
            self.tail::<R, PENALIZE>(weights, d_weights, o, steps * LANES, sums);
        }
    }

    /// The `R` scalars `d_output[b][o..o + R]` of one batch row.
    #[inline(always)]
    fn d_out<const R: usize>(dy_row: &[f32], o: usize) -> [f32; R] {
        dy_row
            .get(o..o + R)
            .and_then(|s| <[f32; R]>::try_from(s).ok())
            .unwrap_or([0.0; R])
    }

    /// Vectors `k..k + C` of rows `o..o + R`: the batch sum in registers, then one
    /// write of `d_weights` with the penalty folded in.
    #[inline(always)]
    fn tile<const R: usize, const C: usize, const PENALIZE: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        o: usize,
        k: usize,
        sums: &mut PenaltySums,
    ) {
        let mut acc = [[V::ZERO; C]; R];
        let batch = self
            .d_output
            .chunks_exact(self.outputs)
            .zip(self.input.chunks_exact(self.inputs));
        for (dy_row, x_row) in batch {
            let d = Self::d_out::<R>(dy_row, o);
            let xv = vectors_at::<C>(x_row, k);
            for (acc_r, d_r) in acc.iter_mut().zip(d) {
                let d_r = V::splat(d_r);
                for (a, x) in acc_r.iter_mut().zip(&xv) {
                    *a = d_r.mul_add(*x, *a);
                }
            }
        }
        let w_rows = weights
            .chunks(self.inputs)
            .chain(core::iter::repeat(&[][..]));
        for ((dw_r, w_r), acc_r) in d_weights
            .chunks_exact_mut(self.inputs)
            .zip(w_rows)
            .zip(&acc)
        {
            let w_chunks = w_r.as_chunks::<LANES>().0;
            let dw_chunks = dw_r.as_chunks_mut::<LANES>().0;
            for (c, (g, a)) in dw_chunks.iter_mut().skip(k).zip(acc_r).enumerate() {
                let mut sum = *a;
                if PENALIZE {
                    sum += sums.add(load(w_chunks, k + c), self.penalty);
                }
                *g = sum.to_array();
            }
        }
    }

    /// The inputs past the last whole vector, as one zero-padded vector per row.
    #[inline(always)]
    fn tail<const R: usize, const PENALIZE: bool>(
        &self,
        weights: &[f32],
        d_weights: &mut [f32],
        o: usize,
        start: usize,
        sums: &mut PenaltySums,
    ) {
        let mut acc = [V::ZERO; R];
        let batch = self
            .d_output
            .chunks_exact(self.outputs)
            .zip(self.input.chunks_exact(self.inputs));
        for (dy_row, x_row) in batch {
            let d = Self::d_out::<R>(dy_row, o);
            let x = load_padded(x_row.get(start..).unwrap_or(&[]), 0.0);
            for (a, d_r) in acc.iter_mut().zip(d) {
                *a = V::splat(d_r).mul_add(x, *a);
            }
        }
        let w_rows = weights
            .chunks(self.inputs)
            .chain(core::iter::repeat(&[][..]));
        for ((dw_r, w_r), a) in d_weights.chunks_exact_mut(self.inputs).zip(w_rows).zip(acc) {
            let Some(dw_tail) = dw_r.get_mut(start..) else {
                continue;
            };
            let mut sum = a;
            if PENALIZE {
                // Padding lanes hold w = 0: no gradient, no |w|, no w² to add.
                sum += sums.add(
                    load_padded(w_r.get(start..).unwrap_or(&[]), 0.0),
                    self.penalty,
                );
            }
            store_partial(dw_tail, sum);
        }
    }
}

/// `d_bias[o] = Σ_b d_output[b][o] + penalty'(bias[o])` (overwrites), with
/// `outputs = d_bias.len()`; returns the penalty's loss term.
pub fn dense_bias_gradient(
    d_output: &[f32],
    bias: &[f32],
    d_bias: &mut [f32],
    rows: usize,
    penalty: Regularizer,
) -> f32 {
    let outputs = d_bias.len();
    if outputs == 0 {
        return 0.0;
    }
    let rows = rows_in(d_output, outputs, rows);
    let d_output = d_output.get(..rows * outputs).unwrap_or(&[]);
    let penalize = !penalty.is_none();
    let penalized = outputs.min(bias.len());
    let mut sums = PenaltySums::ZERO;
    let (db_chunks, db_tail) = d_bias.as_chunks_mut::<LANES>();
    let b_chunks = bias.get(..penalized).unwrap_or(&[]).as_chunks::<LANES>().0;
    // Each vector of d_bias takes every row's contribution in row order, as the scalar
    // loop does, then its penalty: the same operations in the same order per element.
    for (k, db) in db_chunks.iter_mut().enumerate() {
        // The first row's values themselves, not `0 + value` (which turns -0 into +0):
        // the scalar set's bits.
        let mut dy_rows = d_output.chunks_exact(outputs);
        let mut sum = dy_rows
            .next()
            .map_or(V::ZERO, |row| load(row.as_chunks::<LANES>().0, k));
        for dy_row in dy_rows {
            sum += load(dy_row.as_chunks::<LANES>().0, k);
        }
        if penalize && let Some(b) = b_chunks.get(k) {
            sum += sums.add(V::new(*b), penalty);
        }
        *db = sum.to_array();
    }
    let start = outputs - db_tail.len();
    for (j, db) in db_tail.iter_mut().enumerate() {
        let mut dy_rows = d_output.chunks_exact(outputs);
        *db = dy_rows
            .next()
            .map_or(0.0, |row| row.get(start + j).copied().unwrap_or(0.0));
        for dy_row in dy_rows {
            *db += dy_row.get(start + j).copied().unwrap_or(0.0);
        }
    }
    if !penalize {
        return 0.0;
    }
    let done = b_chunks.len() * LANES;
    for (db, &b) in d_bias.iter_mut().zip(bias).take(penalized).skip(done) {
        *db += sums.add_one(b, penalty);
    }
    sums.loss(penalty)
}

/// Applies `f` to every vector of `values`; the last partial vector is padded with `pad`.
#[inline(always)]
fn map_in_place(values: &mut [f32], pad: f32, f: impl Fn(V) -> V) {
    let (chunks, tail) = values.as_chunks_mut::<LANES>();
    for c in chunks {
        *c = f(V::new(*c)).to_array();
    }
    if !tail.is_empty() {
        store_partial(tail, f(load_padded(tail, pad)));
    }
}

/// ReLU in place: `max(x, 0)`.
pub fn relu(values: &mut [f32]) {
    // `x > 0 ? x : 0`, not `max`: NaN and -0 map to +0 as in the scalar kernel.
    map_in_place(values, 0.0, |x| x.simd_gt(V::ZERO) & x);
}

/// ReLU's derivative from its output, in place: `1` where `y > 0`, else `0`.
pub fn relu_derivative(values: &mut [f32]) {
    map_in_place(values, 0.0, |y| y.simd_gt(V::ZERO) & V::ONE);
}

/// Leaky ReLU in place: `x` where `x > 0`, else `alpha·x`.
pub fn leaky_relu(values: &mut [f32], alpha: f32) {
    let alpha = V::splat(alpha);
    map_in_place(values, 0.0, |x| x.simd_le(V::ZERO).select(x * alpha, x));
}

/// Leaky ReLU's derivative from its output (`alpha > 0` keeps the sign), in place.
pub fn leaky_relu_derivative(values: &mut [f32], alpha: f32) {
    let alpha = V::splat(alpha);
    map_in_place(values, 0.0, |y| y.simd_gt(V::ZERO).select(V::ONE, alpha));
}

/// Logistic sigmoid in place.
pub fn sigmoid(values: &mut [f32]) {
    // As `math::sigmoid`: with e = exp(-|x|) ≤ 1 nothing overflows; 1/(1+e) for x ≥ 0,
    // e/(1+e) below.
    map_in_place(values, 0.0, |x| {
        let e = (-x.abs()).exp();
        x.simd_ge(V::ZERO).select(V::ONE, e) / (V::ONE + e)
    });
}

/// Sigmoid's derivative from its output, in place: `y·(1 - y)`.
pub fn sigmoid_derivative(values: &mut [f32]) {
    map_in_place(values, 0.0, |y| y * (V::ONE - y));
}

/// Hyperbolic tangent in place.
pub fn tanh(values: &mut [f32]) {
    map_in_place(values, 0.0, |x| x.tanh());
}

/// Tanh's derivative from its output, in place: `1 - y²`.
pub fn tanh_derivative(values: &mut [f32]) {
    map_in_place(values, 0.0, |y| V::ONE - y * y);
}

/// Softmax of each row of `width` values, in place, shifted by the row maximum so that no
/// `exp` overflows.
pub fn softmax(values: &mut [f32], width: usize) {
    if width == 0 {
        return;
    }
    for row in values.chunks_exact_mut(width) {
        let (chunks, tail) = row.as_chunks_mut::<LANES>();
        // `v > m ? v : m` as in the scalar kernel, so NaNs are skipped the same way.
        let greater = |m: V, v: V| v.simd_gt(m).select(v, m);
        let mut max = load_padded(tail, f32::NEG_INFINITY);
        for c in chunks.iter() {
            max = greater(max, V::new(*c));
        }
        let max = max
            .to_array()
            .into_iter()
            .fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m });
        let max = V::splat(max);
        let mut sum = V::ZERO;
        for c in chunks.iter_mut() {
            let e = (V::new(*c) - max).exp();
            sum += e;
            *c = e.to_array();
        }
        // Padding lanes hold -inf: exp(-inf - max) = 0 adds nothing to the sum.
        let e = (load_padded(tail, f32::NEG_INFINITY) - max).exp();
        sum += e;
        store_partial(tail, e);
        let inv = V::splat(1.0 / sum.reduce_add());
        map_in_place(row, 0.0, |v| v * inv);
    }
}

/// `values[i] *= factors[i]`.
pub fn multiply(values: &mut [f32], factors: &[f32]) {
    let n = values.len().min(factors.len());
    let (Some(values), Some(factors)) = (values.get_mut(..n), factors.get(..n)) else {
        return;
    };
    let (v_chunks, v_tail) = values.as_chunks_mut::<LANES>();
    let (f_chunks, f_tail) = factors.as_chunks::<LANES>();
    for (v, f) in v_chunks.iter_mut().zip(f_chunks) {
        *v = (V::new(*v) * V::new(*f)).to_array();
    }
    for (v, f) in v_tail.iter_mut().zip(f_tail) {
        *v *= f;
    }
}

/// One Adam update of a tensor: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// `w -= lr·m / (sqrt(v) + ε)`.
pub fn adam_update(
    weights: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: AdamStep,
) {
    let (weights, grads, m, v) = super::adam_operands(weights, grads, m, v);
    // The scalar kernel's operations in its order (sqrt is correctly rounded in both):
    // the same bits.
    let (b1, b2) = (V::splat(1.0 - step.beta_1), V::splat(1.0 - step.beta_2));
    let (lr, eps) = (V::splat(step.learning_rate), V::splat(step.epsilon));
    let (w_chunks, w_tail) = weights.as_chunks_mut::<LANES>();
    let (g_chunks, g_tail) = grads.as_chunks::<LANES>();
    let (m_chunks, m_tail) = m.as_chunks_mut::<LANES>();
    let (v_chunks, v_tail) = v.as_chunks_mut::<LANES>();
    let moments = m_chunks.iter_mut().zip(v_chunks.iter_mut());
    for ((w, g), (m, v)) in w_chunks.iter_mut().zip(g_chunks).zip(moments) {
        let g = V::new(*g);
        let mv = V::new(*m) + (g - V::new(*m)) * b1;
        let vv = V::new(*v) + (g * g - V::new(*v)) * b2;
        *w = (V::new(*w) - lr * mv / (vv.sqrt() + eps)).to_array();
        *m = mv.to_array();
        *v = vv.to_array();
    }
    let moments = m_tail.iter_mut().zip(v_tail.iter_mut());
    for ((w, &g), (m, v)) in w_tail.iter_mut().zip(g_tail).zip(moments) {
        (*w, *m, *v) = super::adam_candidate(*w, g, *m, *v, step);
    }
}
