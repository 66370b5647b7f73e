//! [`dense_forward`]: tiles of dot products reduced by one shuffle tree per tile (and,
//! with AVX-512, the packed route of [`super::forward_packed`] for large batches).

packed_route! {
    use super::forward_packed::PACKED_DEPTH;
}
use super::lanes::*;
use super::tile::*;
use super::{LANES, V};
use crate::kernels::Shape;

/// `Σ x[i]·w[i]`, for the outputs and rows that do not fill a tile.
#[inline(always)]
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

/// The body of `simd::dense_forward` (see there), inlined into each entry that calls it: the
/// non-inlined `simd` wrapper and the AVX2 + FMA entry of `kernels::avx2`.
#[inline(always)]
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
    packed_route! {
        if rows >= PACKED_ROWS && inputs <= PACKED_DEPTH && outputs >= LANES {
            super::packed_forward(input, weights, bias, output, rows, inputs, outputs);
            return;
        }
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
pub(super) fn split_rows<'a, 'b>(
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
#[inline(always)]
fn forward_narrow<'a, 'b>(
    input: &'a [f32],
    weights: &[f32],
    bias: &[f32],
    output: &'b mut [f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
) -> (&'a [f32], &'b mut [f32]) {
    super::out_of_line(move || -> (&'a [f32], &'b mut [f32]) {
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
                // A loop, not `each_lane`: its closure, called `LANES` times, was not
                // inlined into the AVX2 entry (`kernels::avx2`) and lost the features there.
                let mut dots = [V::ZERO; LANES];
                for (r, dot) in dots.iter_mut().enumerate() {
                    *dot = dot_vector(row(x, r, inputs), w, tail);
                }
                let sums = (sum_each(dots) + V::splat(*b)).to_array();
                for (y_r, s) in y.chunks_exact_mut(outputs).zip(sums) {
                    if let Some(y_o) = y_r.get_mut(o) {
                        *y_o = s;
                    }
                }
            }
        }
        (x_rest, y_rest)
    })
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
/// off (or, for rows shorter than a vector, the row padded with zeros). Out of line
/// ([`super::out_of_line`]): inlined, it made the single-row forward pass of layers without a tail 1.5× slower.
#[inline(always)]
fn with_tails<const R: usize, const C: usize>(
    mut acc: [[V; C]; R],
    x: &[f32],
    w: &[f32],
    inputs: usize,
) -> [[V; C]; R] {
    super::out_of_line(move || {
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
    })
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
