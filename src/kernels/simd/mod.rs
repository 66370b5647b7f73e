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
//! A default x86_64 build with the `std` feature also compiles the dense products, Adam and
//! `activation.rs` of these files again, for AVX2 + FMA and for AVX-512, and chooses at run time
//! (`kernels::avx2`); nothing in the files differs between the instantiations but what
//! their parent module binds: `V`, [`LANES`], `each_lane`, the tiles and `out_of_line`.
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
//!   scalar kernels' operations in the scalar kernels' order: they give the same bits,
//!   except that `adam_update` flushes to zero every new value below `f32::MIN_POSITIVE`
//!   (see [`super::FLUSHES_SUBNORMALS`]), which the scalar kernel keeps.
//! - `sigmoid`, `tanh` and `softmax` evaluate `exp` with `wide`'s vector polynomial
//!   instead of `libm`; see [`TRANSCENDENTAL_MAX_ULPS`].
//!
//! # Files
//! One product per file, named as its scalar twin in [`super::scalar`]: [`dense_forward`]
//! (`forward.rs`, with the AVX-512 packed route in `forward_packed.rs`),
//! [`dense_input_gradient`] (`input_gradient.rs`), [`dense_weight_gradient`] and
//! [`dense_bias_gradient`] (`weight_gradient.rs`), the piecewise activations, the derivatives
//! and [`multiply`] (`activation.rs`), [`sigmoid`], [`tanh`] and [`softmax`]
//! (`transcendental.rs`), [`adam_update`] (`adam.rs`); `lanes.rs` holds the vector helpers
//! they share.

// Index arithmetic here is audited instead of linted: every row count is first clamped to
// `slice.len() / width` (and products of dimensions saturate), so each product of a row or
// chunk index with a width is at most the length of a slice in memory and cannot overflow;
// divisors are lane counts and tile sizes (constants) or widths already checked non-zero.
#![allow(clippy::arithmetic_side_effects)]

use crate::kernels::{AdamStep, Shape};
use crate::penalty::Regularizer;

/// Expands its tokens where this instantiation of the kernels has the packed forward route
/// (`forward_packed.rs`: 16 lanes, AVX-512), to nothing elsewhere. A macro rather than a
/// `cfg`, because the route's files are compiled again for run-time dispatch
/// (`kernels::avx2`), where the target features of the build do not say which route exists.
#[cfg(target_feature = "avx512f")]
macro_rules! packed_route {
    ($($tokens:tt)*) => { $($tokens)* };
}
#[cfg(not(target_feature = "avx512f"))]
macro_rules! packed_route {
    ($($tokens:tt)*) => {};
}

mod activation;
mod adam;
mod forward;
#[cfg(target_feature = "avx512f")]
mod forward_packed;
mod input_gradient;
mod lanes;
mod transcendental;
mod weight_gradient;

pub use activation::{
    leaky_relu, leaky_relu_derivative, multiply, relu, relu_derivative, sigmoid_derivative,
    tanh_derivative,
};
pub use transcendental::{sigmoid, softmax, tanh};

#[cfg(target_feature = "avx512f")]
type V = wide::f32x16;
#[cfg(all(not(target_feature = "avx512f"), target_feature = "avx"))]
type V = wide::f32x8;
#[cfg(not(any(target_feature = "avx512f", target_feature = "avx")))]
type V = wide::f32x4;

/// Floats per vector in this build: 16 with AVX-512, 8 with AVX, 4 otherwise.
pub const LANES: usize = size_of::<V>() / size_of::<f32>();

/// `[f(0), f(1), …, f(LANES - 1)]` with constant indices ([`super::each_of_4`]).
#[cfg(not(any(target_feature = "avx512f", target_feature = "avx")))]
pub(super) use super::each_of_4 as each_lane;
/// `[f(0), f(1), …, f(LANES - 1)]` with constant indices ([`super::each_of_8`]).
#[cfg(all(not(target_feature = "avx512f"), target_feature = "avx"))]
pub(super) use super::each_of_8 as each_lane;
/// `[f(0), f(1), …, f(LANES - 1)]` with constant indices ([`super::each_of_16`]).
#[cfg(target_feature = "avx512f")]
pub(super) use super::each_of_16 as each_lane;

/// The lanes of `(a, b)` (32 of them) picked by `indices`: one `vpermt2ps`. The packed
/// forward route's transpose (`forward_packed.rs`).
#[cfg(target_feature = "avx512f")]
#[inline(always)]
fn shuffle_pair(a: V, b: V, indices: [u32; 16]) -> V {
    use wide::ShuffleExt;
    [a, b].shuffle(wide::u32x16::new(indices))
}

/// The packed forward route (`forward_packed.rs`) in a function of its own, never inlined:
/// its 16 KiB panel stays out of the other routes' stack frames.
#[cfg(target_feature = "avx512f")]
#[inline(never)]
fn packed_forward(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    output: &mut [f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
) {
    forward_packed::forward_packed(input, weights, bias, output, rows, inputs, outputs)
}

/// Runs `f` in a function of its own that is never inlined: where a kernel keeps a part out
/// of line (measured faster so). The kernels compiled again for run-time dispatch
/// ([`super::avx2`]) have their own, which carries their target features.
#[inline(never)]
fn out_of_line<R>(f: impl FnOnce() -> R) -> R {
    f()
}

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
    /// Accumulator vectors of a weight-gradient tile of layers at least `LANES` wide: 16 of
    /// AVX-512's 32 registers, 8 of the 16 elsewhere (room for the loaded inputs).
    pub const OUTER_ACCUMULATORS: usize = 16;
}
#[cfg(not(target_feature = "avx512f"))]
mod tile {
    pub const FORWARD_ROWS: usize = 2;
    pub const FORWARD_OUTPUTS: usize = 4;
    pub const FORWARD_SINGLE_OUTPUTS: usize = 8;
    pub const AXPY_ROWS: usize = 2;
    pub const AXPY_VECTORS: usize = 4;
    pub const OUTER_ACCUMULATORS: usize = 8;
}

// The dense products and Adam: out-of-line entries around bodies that the AVX2 + FMA
// entries of `kernels::avx2` inline too.

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
    forward::dense_forward(input, weights, bias, output, shape)
}

/// `d_input[b][i] *= Σ_o d_output[b][o]·weights[o][i]`.
///
/// On entry `d_input` holds the derivative of the activation that produced this layer's
/// input (or ones); on return it holds the loss gradient with respect to that activation's
/// pre-activation. Lengths: `d_output` `rows·outputs`, `weights` `outputs·inputs`,
/// `d_input` `rows·inputs`.
pub fn dense_input_gradient(d_output: &[f32], weights: &[f32], d_input: &mut [f32], shape: Shape) {
    input_gradient::dense_input_gradient(d_output, weights, d_input, shape)
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
    weight_gradient::dense_weight_gradient(d_output, input, weights, d_weights, shape, penalty)
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
    weight_gradient::dense_bias_gradient(d_output, bias, d_bias, rows, penalty)
}

/// One Adam update of a tensor: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// `w -= lr·m / (sqrt(v) + ε)`, each new value [flushed](super::flush_subnormal) to zero
/// below `f32::MIN_POSITIVE` (see [`super::FLUSHES_SUBNORMALS`]).
pub fn adam_update(
    weights: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: AdamStep,
) {
    adam::adam_update(weights, grads, m, v, step)
}
