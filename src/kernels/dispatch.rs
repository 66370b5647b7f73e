//! The active kernel set of a default x86_64 build with the `std` feature: each dense
//! product and the Adam update asks the CPU's level (one cached atomic load,
//! [`Avx512::detect`], then [`Avx2Fma::detect`] on CPUs without AVX-512) and runs the
//! AVX-512 kernels of [`avx2`](super::avx2) where the CPU has AVX-512F/DQ, its AVX2 + FMA
//! kernels where it has those, `wide`'s SSE2 kernels of [`simd`](super::simd) elsewhere.
//! The piecewise activations, every derivative and `multiply` take the same levels (the
//! same bits at each: they are the scalar kernels' operations lane by lane); `sigmoid`,
//! `tanh` and `softmax`, which evaluate `exp`, are `simd`'s SSE2 ones.

use super::avx2::{Avx2Fma, Avx512};
use super::{AdamStep, Shape, simd};
use crate::penalty::Regularizer;

pub use simd::{LANES, TRANSCENDENTAL_MAX_ULPS, sigmoid, softmax, tanh};

/// Elementwise kernels that run at the widest level the CPU has, `simd`'s elsewhere.
macro_rules! elementwise {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[doc = concat!("[`simd::", stringify!($name), "`], with AVX-512 or AVX2 where the CPU has them (the same bits either way).")]
        #[inline]
        pub fn $name($($arg: $ty),*) {
            if let Some(cpu) = Avx512::detect() {
                return cpu.$name($($arg),*);
            }
            match Avx2Fma::detect() {
                Some(cpu) => cpu.$name($($arg),*),
                None => simd::$name($($arg),*),
            }
        }
    )*};
}

elementwise! {
    relu(values: &mut [f32]);
    relu_derivative(values: &mut [f32]);
    leaky_relu(values: &mut [f32], alpha: f32);
    leaky_relu_derivative(values: &mut [f32], alpha: f32);
    sigmoid_derivative(values: &mut [f32]);
    tanh_derivative(values: &mut [f32]);
    multiply(values: &mut [f32], factors: &[f32]);
}

/// [`simd::dense_forward`], with AVX-512 or AVX2 + FMA where the CPU has them.
#[inline]
pub fn dense_forward(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    output: &mut [f32],
    shape: Shape,
) {
    if let Some(cpu) = Avx512::detect() {
        return cpu.dense_forward(input, weights, bias, output, shape);
    }
    match Avx2Fma::detect() {
        Some(cpu) => cpu.dense_forward(input, weights, bias, output, shape),
        None => simd::dense_forward(input, weights, bias, output, shape),
    }
}

/// [`simd::dense_input_gradient`], with AVX-512 or AVX2 + FMA where the CPU has them.
#[inline]
pub fn dense_input_gradient(d_output: &[f32], weights: &[f32], d_input: &mut [f32], shape: Shape) {
    if let Some(cpu) = Avx512::detect() {
        return cpu.dense_input_gradient(d_output, weights, d_input, shape);
    }
    match Avx2Fma::detect() {
        Some(cpu) => cpu.dense_input_gradient(d_output, weights, d_input, shape),
        None => simd::dense_input_gradient(d_output, weights, d_input, shape),
    }
}

/// [`simd::dense_weight_gradient`], with AVX-512 or AVX2 + FMA where the CPU has them.
#[inline]
pub fn dense_weight_gradient(
    d_output: &[f32],
    input: &[f32],
    weights: &[f32],
    d_weights: &mut [f32],
    shape: Shape,
    penalty: Regularizer,
) -> f32 {
    if let Some(cpu) = Avx512::detect() {
        return cpu.dense_weight_gradient(d_output, input, weights, d_weights, shape, penalty);
    }
    match Avx2Fma::detect() {
        Some(cpu) => cpu.dense_weight_gradient(d_output, input, weights, d_weights, shape, penalty),
        None => simd::dense_weight_gradient(d_output, input, weights, d_weights, shape, penalty),
    }
}

/// [`simd::dense_bias_gradient`], with AVX-512 or AVX2 + FMA where the CPU has them.
#[inline]
pub fn dense_bias_gradient(
    d_output: &[f32],
    bias: &[f32],
    d_bias: &mut [f32],
    rows: usize,
    penalty: Regularizer,
) -> f32 {
    if let Some(cpu) = Avx512::detect() {
        return cpu.dense_bias_gradient(d_output, bias, d_bias, rows, penalty);
    }
    match Avx2Fma::detect() {
        Some(cpu) => cpu.dense_bias_gradient(d_output, bias, d_bias, rows, penalty),
        None => simd::dense_bias_gradient(d_output, bias, d_bias, rows, penalty),
    }
}

/// [`simd::adam_update`], with AVX-512 or AVX2 where the CPU has them (the same bits
/// either way).
#[inline]
pub fn adam_update(
    weights: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: AdamStep,
) {
    if let Some(cpu) = Avx512::detect() {
        return cpu.adam_update(weights, grads, m, v, step);
    }
    match Avx2Fma::detect() {
        Some(cpu) => cpu.adam_update(weights, grads, m, v, step),
        None => simd::adam_update(weights, grads, m, v, step),
    }
}
