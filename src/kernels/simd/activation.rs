//! The piecewise activations, every activation's derivative and [`multiply`], vector by
//! vector: lane-by-lane operations that give the scalar kernels' bits at any width, which is
//! why the run-time dispatch compiles this file again (`kernels::avx2`). The activations
//! that need `exp` are in `transcendental.rs`.

use super::lanes::*;
use super::{LANES, V};

/// Applies `f` to every vector of `values`; the last partial vector is padded with `pad`.
#[inline(always)]
pub(super) fn map_in_place(values: &mut [f32], pad: f32, f: impl Fn(V) -> V) {
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

/// Sigmoid's derivative from its output, in place: `y·(1 - y)`.
pub fn sigmoid_derivative(values: &mut [f32]) {
    map_in_place(values, 0.0, |y| y * (V::ONE - y));
}

/// Tanh's derivative from its output, in place: `1 - y²`.
pub fn tanh_derivative(values: &mut [f32]) {
    map_in_place(values, 0.0, |y| V::ONE - y * y);
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
