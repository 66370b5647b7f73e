//! [`dense_input_gradient`]: tiles of rows × vectors of inputs, one broadcast `d_output`
//! times a loaded weight vector per step.

use core::array;

use super::lanes::*;
use super::tile::*;
use super::{LANES, V};
use crate::kernels::Shape;

/// The body of `simd::dense_input_gradient` (see there), inlined into each entry that calls it: the
/// non-inlined `simd` wrapper and the AVX2 + FMA entry of `kernels::avx2`.
#[inline(always)]
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
