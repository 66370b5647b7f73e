//! The activations, their derivatives, `softmax` and [`multiply`], vector by vector.

use super::lanes::*;
use super::{LANES, V};

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
    // `x <= 0 ? 0 : x`, not `max` (whose NaN handling is the instruction set's): -0 maps
    // to +0 and NaN stays NaN, as in the scalar kernel.
    map_in_place(values, 0.0, |x| x.simd_le(V::ZERO).select(V::ZERO, x));
}

/// ReLU's derivative from its output, in place: `1` where `y > 0`, else `0`.
pub fn relu_derivative(values: &mut [f32]) {
    map_in_place(values, 0.0, |y| y.simd_gt(V::ZERO) & V::ONE);
}

/// Leaky ReLU in place: `x` where `x > 0`, else `alpha·x`; NaN stays NaN (`x <= 0` is
/// false for it).
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
