//! Arithmetic on slices: the dense layer's products and the activations.
//!
//! Two sets with the same names, signatures and contracts:
//! - [`scalar`]: the obvious loops. It is the reference (the oracle in tests) and the set the
//!   crate uses where the target has no SIMD unit (Cortex-M, RISC-V) or when the `scalar`
//!   feature is on.
//! - [`simd`]: register-blocked loops on `wide` vectors with scalar tails.
//!
//! The functions at this module's root are the active set, chosen at compile time.
//!
//! # Layout
//! Matrices are row-major flat slices. A batch of `rows` samples of width `n` is
//! `rows·n` floats; weights are `[[f32; inputs]; outputs]` flattened, so each output's
//! weights are one contiguous row (`W[o][i]` at `o·inputs + i`).
//!
//! # Rules every kernel follows
//! - **Forward kernels overwrite** their output.
//! - **Parameter-gradient kernels overwrite** their gradients with the batch's sum plus the
//!   regularizer's gradient, added in the same sweep over the weights: no zeroing pass
//!   before them, and one call per optimizer step.
//! - **The input-gradient kernel multiplies into** its destination: backward reuses each
//!   activation buffer for its gradient, and on entry the buffer holds the previous layer's
//!   activation derivative (see [`crate::layers`]).
//! - Lengths are taken from [`Shape`]; a slice shorter than the shape asks for limits the
//!   work to the complete rows present, so no input can make a kernel panic.

use crate::penalty::Regularizer;

pub mod scalar;
pub mod simd;

#[cfg(any(feature = "scalar", not(simd_by_default)))]
pub use scalar::*;
#[cfg(all(not(feature = "scalar"), simd_by_default))]
pub use simd::*;

/// True when the active set is [`simd`].
pub const SIMD_ACTIVE: bool = cfg!(all(not(feature = "scalar"), simd_by_default));

/// The dimensions of one dense product: `rows` samples, `inputs` → `outputs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Samples in the batch.
    pub rows: usize,
    /// Width of each input row.
    pub inputs: usize,
    /// Width of each output row (number of weight rows).
    pub outputs: usize,
}

impl Shape {
    /// True if any dimension is zero (every kernel then does nothing).
    pub const fn is_empty(&self) -> bool {
        self.rows == 0 || self.inputs == 0 || self.outputs == 0
    }
}

/// The signature both kernel sets implement; used by tests to run one check on both.
pub type ForwardFn = fn(&[f32], &[f32], &[f32], &mut [f32], Shape);
/// Signature of `dense_input_gradient`.
pub type InputGradientFn = fn(&[f32], &[f32], &mut [f32], Shape);
/// Signature of `dense_weight_gradient`.
pub type WeightGradientFn = fn(&[f32], &[f32], &[f32], &mut [f32], Shape, Regularizer) -> f32;

/// The coefficients of one Adam update, shared by every tensor of a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// Step size with both bias corrections folded in.
    pub learning_rate: f32,
    /// First-moment decay.
    pub beta_1: f32,
    /// Second-moment decay.
    pub beta_2: f32,
    /// Added to `sqrt(v)`.
    pub epsilon: f32,
}

/// The four operands of an `adam_update` kernel, cut to their common length.
pub(crate) type AdamOperands<'a> = (&'a mut [f32], &'a [f32], &'a mut [f32], &'a mut [f32]);

/// `weights`, `grads`, `m` and `v` cut to the shortest of their lengths: what both
/// `adam_update` kernels walk, so that no operand can be read past its end.
pub(crate) fn adam_operands<'a>(
    weights: &'a mut [f32],
    grads: &'a [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
) -> AdamOperands<'a> {
    let n = weights.len().min(grads.len()).min(m.len()).min(v.len());
    (
        weights.get_mut(..n).unwrap_or_default(),
        grads.get(..n).unwrap_or_default(),
        m.get_mut(..n).unwrap_or_default(),
        v.get_mut(..n).unwrap_or_default(),
    )
}

/// One Adam update of one value, returning the new `(w, m, v)`; the formula every
/// `adam_update` kernel implements, and what [`crate::Optimizer::update_is_finite`] checks.
#[inline(always)]
pub fn adam_candidate(w: f32, g: f32, m: f32, v: f32, step: AdamStep) -> (f32, f32, f32) {
    let (m, v) = adam_moments(g, m, v, step);
    (adam_weight(w, m, crate::math::sqrt(v), step), m, v)
}

/// The moments' half of [`adam_candidate`]: the new `(m, v)`.
#[inline(always)]
pub fn adam_moments(g: f32, m: f32, v: f32, step: AdamStep) -> (f32, f32) {
    (
        m + (g - m) * (1.0 - step.beta_1),
        v + (g * g - v) * (1.0 - step.beta_2),
    )
}

/// The weight's half of [`adam_candidate`], given the new `m` and `sqrt` of the new `v`.
#[inline(always)]
pub fn adam_weight(w: f32, m: f32, root_v: f32, step: AdamStep) -> f32 {
    w - step.learning_rate * m / (root_v + step.epsilon)
}
