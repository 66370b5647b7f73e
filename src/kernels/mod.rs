//! Arithmetic on slices: the dense layer's products and the activations.
//!
//! Two sets with the same names, signatures and contracts:
//! - [`scalar`]: the obvious loops. It is the reference (the oracle in tests) and the set the
//!   crate uses where the target has no SIMD unit (Cortex-M, RISC-V) or when the `scalar`
//!   feature is on.
//! - [`simd`]: register-blocked loops on `wide` vectors with scalar tails.
//!
//! - `avx2` (x86_64 with the `std` feature, in builds without AVX2 + FMA enabled): the
//!   dense products, Adam and the elementwise kernels of [`simd`] (all but `sigmoid`,
//!   `tanh` and `softmax`) compiled again for AVX2 + FMA and for AVX-512,
//!   behind detection tokens (`kernels::avx2::Avx2Fma`, `kernels::avx2::Avx512`).
//!
//! The functions at this module's root are the active set, chosen at compile time, except
//! in builds with `avx2` ([`DISPATCHED`]): there the dense products and Adam ask the CPU
//! (once; later calls read a cached answer) and run `avx2`'s AVX-512 kernels where it has
//! AVX-512F/DQ, its AVX2 + FMA kernels where it has those, [`simd`]'s elsewhere.
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

#[cfg(simd_dispatch)]
pub mod avx2;
#[cfg(simd_dispatch)]
mod dispatch;
pub mod scalar;

/// `[f(0), f(1), …, f(N - 1)]` for the vector widths the kernels are built at, written out so
/// that every call gets a constant index: `array::from_fn` is a loop, which the compiler may
/// keep, and then the array goes through memory and every shuffle index becomes a variable.
/// Each kernel set binds the one of its width as its `each_lane`; `#[inline(always)]`, so
/// they inline into the run-time dispatched entries and take those entries' target features.
#[inline(always)]
#[allow(dead_code)] // not every build has every width
pub(crate) fn each_of_16<T>(mut f: impl FnMut(usize) -> T) -> [T; 16] {
    [
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
    ]
}

/// [`each_of_16`] for 8 lanes.
#[inline(always)]
#[allow(dead_code)] // not every build has every width
pub(crate) fn each_of_8<T>(mut f: impl FnMut(usize) -> T) -> [T; 8] {
    [f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7)]
}

/// [`each_of_16`] for 4 lanes.
#[inline(always)]
#[allow(dead_code)] // not every build has every width
pub(crate) fn each_of_4<T>(mut f: impl FnMut(usize) -> T) -> [T; 4] {
    [f(0), f(1), f(2), f(3)]
}
pub mod simd;

#[cfg(simd_dispatch)]
pub use dispatch::*;
#[cfg(any(feature = "scalar", not(simd_by_default)))]
pub use scalar::*;
#[cfg(all(not(feature = "scalar"), simd_by_default, not(simd_dispatch)))]
pub use simd::*;

/// True when the dense products, Adam and the elementwise kernels are chosen at run time:
/// a build for x86_64 with the `std` feature and without AVX2 + FMA enabled at compile
/// time runs the AVX-512 or AVX2 + FMA kernels of `kernels::avx2` on CPUs that have them,
/// the [`simd`] ones elsewhere.
pub const DISPATCHED: bool = cfg!(simd_dispatch);

/// True when the active set is [`simd`].
pub const SIMD_ACTIVE: bool = cfg!(all(not(feature = "scalar"), simd_by_default));

/// Work outside the kernels whose loops the compiler vectorizes, which a build with run-time
/// dispatch compiles again for AVX2 and AVX-512 (`kernels::avx2`): e.g. the dropout masks' bit
/// extraction, for which SSE2 has no per-lane shifts. `run` must be `#[inline(always)]`, so
/// that its body is compiled inside the function that enables the features.
pub(crate) trait Work {
    /// What the work returns.
    type Output;
    /// Does the work.
    fn run(self) -> Self::Output;
}

/// Does `work`: in a function compiled for AVX-512 or AVX2 + FMA where the build dispatches
/// ([`DISPATCHED`]) and the CPU has them, inline otherwise.
#[inline(always)]
pub(crate) fn vectorized<W: Work>(work: W) -> W::Output {
    #[cfg(simd_dispatch)]
    if let Some(cpu) = avx2::Avx512::detect() {
        return cpu.run(work);
    }
    #[cfg(simd_dispatch)]
    if let Some(cpu) = avx2::Avx2Fma::detect() {
        return cpu.run(work);
    }
    work.run()
}

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
    /// The first moment's rate `1 - β1` (Keras: `f32` of the `f64` difference).
    pub rate_1: f32,
    /// The second moment's rate `1 - β2`.
    pub rate_2: f32,
    /// Added to `sqrt(v)`.
    pub epsilon: f32,
}

/// The four operands of an `adam_update` kernel, cut to their common length.
pub(crate) type AdamOperands<'a> = (&'a mut [f32], &'a [f32], &'a mut [f32], &'a mut [f32]);

/// Read-only weights, gradients, `m` and `v` of one tensor.
pub(crate) type AdamOperandsRef<'a> = (&'a [f32], &'a [f32], &'a [f32], &'a [f32]);

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
    (m + (g - m) * step.rate_1, v + (g * g - v) * step.rate_2)
}

/// The weight's half of [`adam_candidate`], given the new `m` and `sqrt` of the new `v`.
#[inline(always)]
pub fn adam_weight(w: f32, m: f32, root_v: f32, step: AdamStep) -> f32 {
    w - step.learning_rate * m / (root_v + step.epsilon)
}

/// True when the active set's updates flush subnormal results to zero
/// ([`flush_subnormal`]): with [`simd`], not with [`scalar`].
///
/// Under L2, the weights and moments of units that no longer receive a gradient (a dead
/// ReLU) decay geometrically towards zero; without a flush they settle in the subnormal
/// range (288 of the 6,337 parameters and 293 of Adam's moments of `tests/subnormals.rs`'
/// network after 60 k steps at a batch of one), where every operation on them takes a
/// microcoded path on many x86 cores and makes a step several times slower. TensorFlow runs
/// its CPU kernels with flush-to-zero set for the same reason; here it is done in the
/// arithmetic, so it needs no control register and no `unsafe`. Adam's update also cuts the
/// operands of products that would be subnormal ([`flushed_adam_candidate`]), so that it
/// computes none on the way.
///
/// The scalar set does not flush: on the targets it serves (Cortex-M, RISC-V) subnormals
/// cost no more than other values, and the flush would cost a Cortex-M4F about 31 % more
/// instructions per training sample (8,684 against 6,636, `examples/cortex-m4f/measure.sh`),
/// so its bits stay those of plain IEEE arithmetic, the same on every target.
pub const FLUSHES_SUBNORMALS: bool = SIMD_ACTIVE;

/// `x`, or `+0.0` where `|x| < f32::MIN_POSITIVE` (a subnormal or a zero of either sign);
/// NaN and infinities pass unchanged. What the [`simd`] set's updates apply to every value
/// they write (see [`FLUSHES_SUBNORMALS`]).
///
/// ```
/// use microtrain::kernels::flush_subnormal;
/// assert_eq!(flush_subnormal(1e-39).to_bits(), 0);
/// assert_eq!(flush_subnormal(-0.0).to_bits(), 0);
/// assert_eq!(flush_subnormal(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
/// assert!(flush_subnormal(f32::NAN).is_nan());
/// ```
#[inline(always)]
pub fn flush_subnormal(x: f32) -> f32 {
    cut_below(x, f32::MIN_POSITIVE)
}

/// `x`, or `+0.0` where `|x| < floor`; NaN compares false and passes. The flush and every
/// cut of [`flushed_adam_candidate`].
#[inline(always)]
fn cut_below(x: f32, floor: f32) -> f32 {
    if crate::math::abs(x) < floor { 0.0 } else { x }
}

/// [`adam_candidate`] as the flushing sets compute it ([`FLUSHES_SUBNORMALS`]): every new
/// value below `f32::MIN_POSITIVE` [flushed](flush_subnormal) (the moments before the weight
/// uses them), and no subnormal produced on the way. Each product that could round to a
/// subnormal has its varying operand cut to zero first, where the product would be below
/// `f32::MIN_POSITIVE` (what flush-to-zero would make of it): the gradient's square for
/// `|g| < 2^-63`, the moments' increments `(g - m)` and `(g² - v)` below
/// `f32::MIN_POSITIVE / (1 - β)`, and `m` in the numerator `lr_t·m` below
/// `f32::MIN_POSITIVE / lr_t`. Such a product would only have added a subnormal to a value
/// that the flush or the rounding of a larger one removes. NaN and infinities pass every
/// cut unchanged.
///
/// Without the cuts, a weight whose moments have flushed to zero (it no longer moves) still
/// computed subnormal products from its L2 gradient every step, and a B = 1 step of the
/// reference network ran 1.3–1.7× faster with flush-to-zero set in the control register on
/// an AMD Zen 4; with them, within the noise of it (README, *Subnormal numbers*).
///
/// ```
/// use microtrain::kernels::{AdamStep, flushed_adam_candidate};
/// let step = AdamStep { learning_rate: 1e-3, rate_1: 0.1, rate_2: 0.001, epsilon: 1e-8 };
/// // A gradient of 2e-30: its square (4e-60) and the increment of `v` are cut to zero.
/// let (w, m, v) = flushed_adam_candidate(1e-26, 2e-30, 0.0, 0.0, step);
/// assert!(m > 0.0 && v == 0.0);
/// assert!(w.is_normal());
/// ```
#[inline(always)]
pub fn flushed_adam_candidate(w: f32, g: f32, m: f32, v: f32, step: AdamStep) -> (f32, f32, f32) {
    let floors = AdamFloors::new(step);
    let square = if crate::math::abs(g) < AdamFloors::SQUARE {
        0.0
    } else {
        g * g
    };
    let m = flush_subnormal(m + cut_below(g - m, floors.m) * step.rate_1);
    let v = flush_subnormal(v + cut_below(square - v, floors.v) * step.rate_2);
    let root = crate::math::sqrt(v);
    let w =
        flush_subnormal(w - step.learning_rate * cut_below(m, floors.lr) / (root + step.epsilon));
    (w, m, v)
}

/// The magnitudes below which [`flushed_adam_candidate`] cuts an operand to zero, computed
/// once per step (the vector kernels use the same `f32` values).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamFloors {
    /// For `g - m`, multiplied by `1 - β1`.
    pub(crate) m: f32,
    /// For `g² - v`, multiplied by `1 - β2`.
    pub(crate) v: f32,
    /// For `m`, multiplied by `lr_t`.
    pub(crate) lr: f32,
}

impl AdamFloors {
    /// `|g| < 2^-63` exactly when `g·g` rounds below `f32::MIN_POSITIVE` (`2^-126`).
    pub(crate) const SQUARE: f32 = f32::from_bits(0x2000_0000);

    #[inline(always)]
    pub(crate) fn new(step: AdamStep) -> Self {
        // Rates and the learning rate are positive for every validated optimizer; a zero
        // gives an infinite floor, which cuts every finite operand (a product that was
        // zero anyway) and passes infinities and NaN, whose product stays NaN.
        Self {
            m: f32::MIN_POSITIVE / step.rate_1,
            v: f32::MIN_POSITIVE / step.rate_2,
            lr: f32::MIN_POSITIVE / step.learning_rate,
        }
    }
}

/// One Adam update of one value as the active set's `adam_update` computes it:
/// [`flushed_adam_candidate`] where the set flushes ([`FLUSHES_SUBNORMALS`]),
/// [`adam_candidate`] elsewhere. What the update check must predict: a subnormal `v`
/// flushed to zero leaves `sqrt(v) + ε = ε`, which overflows a quotient the unflushed `v`
/// kept finite (lr 1e35, ε 4e-39, g 2e-18).
#[inline(always)]
pub(crate) fn active_candidate(w: f32, g: f32, m: f32, v: f32, step: AdamStep) -> (f32, f32, f32) {
    if FLUSHES_SUBNORMALS {
        flushed_adam_candidate(w, g, m, v, step)
    } else {
        adam_candidate(w, g, m, v, step)
    }
}

/// `x` as the active set's updates store it: [flushed](flush_subnormal) if
/// [`FLUSHES_SUBNORMALS`], else unchanged.
#[inline(always)]
pub(crate) fn updated(x: f32) -> f32 {
    if FLUSHES_SUBNORMALS {
        flush_subnormal(x)
    } else {
        x
    }
}
