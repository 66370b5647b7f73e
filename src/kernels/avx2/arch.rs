//! The crate's run-time dispatch to AVX2 + FMA and to AVX-512, and the one place where it
//! needs `unsafe`: the detection tokens [`Avx2Fma`] and [`Avx512`], the entries compiled with
//! their target features, and the 8- and 16-lane vector types the kernels of [`super`] and
//! `super::avx512` compute with.
//!
//! # Why this is sound
//! An AVX2, FMA or AVX-512 instruction is undefined behaviour on a CPU without it. Every
//! intrinsic below runs inside one of the kernels of [`super`] (`F32x8`) or
//! `super::avx512` (`F32x16`), which are private: their only callers are the entries below,
//! which the tokens' methods call, and the only way to get a token is its `detect`, which
//! returns one only when the running CPU reports the features its entries are compiled
//! with (`is_x86_feature_detected!`: AVX2 and FMA for [`Avx2Fma`]; AVX-512F, AVX-512DQ, AVX2
//! and FMA for [`Avx512`]).
#![allow(unsafe_code)]

use core::arch::x86_64::*;
use core::ops::{Add, AddAssign, BitAnd, Div, Mul, Sub};
use core::sync::atomic::{AtomicU8, Ordering};

use crate::kernels::{AdamStep, Shape, Work};
use crate::penalty::Regularizer;

/// Proof that the running CPU has AVX2 and FMA: the key to the kernels compiled for them
/// (a copy of [`crate::kernels::simd`] with 8 lanes, fused multiply-adds, and the same
/// tiles as an `x86-64-v3` build), which a default `cargo build` for x86_64 would not
/// otherwise use.
///
/// Only [`Avx2Fma::detect`] makes one, so holding one means the instructions are there.
///
/// ```
/// use microtrain::kernels::{Shape, avx2::Avx2Fma, scalar};
/// let (x, w, b) = ([1.0f32; 3], [0.5f32; 6], [0.25f32; 2]);
/// let shape = Shape { rows: 1, inputs: 3, outputs: 2 };
/// let mut y = [0.0f32; 2];
/// match Avx2Fma::detect() {
///     Some(cpu) => cpu.dense_forward(&x, &w, &b, &mut y, shape),
///     None => scalar::dense_forward(&x, &w, &b, &mut y, shape),
/// }
/// assert_eq!(y, [1.75, 1.75]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx2Fma(());

/// What [`Avx2Fma::detect`] and [`Avx512::detect`] found, once it is known: [`UNKNOWN`],
/// [`NEITHER`], [`AVX2_FMA`] or [`AVX512`] (which implies the AVX2 + FMA level).
static DETECTED: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const NEITHER: u8 = 1;
const AVX2_FMA: u8 = 2;
const AVX512: u8 = 3;

/// The level of the running CPU: asked once, then read from [`DETECTED`] (one relaxed atomic
/// load).
#[inline]
fn level() -> u8 {
    match DETECTED.load(Ordering::Relaxed) {
        UNKNOWN => ask_the_cpu(),
        known => known,
    }
}

#[cold]
fn ask_the_cpu() -> u8 {
    let avx2_fma = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    let avx512 = avx2_fma
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512dq");
    let level = match (avx512, avx2_fma) {
        (true, _) => AVX512,
        (false, true) => AVX2_FMA,
        (false, false) => NEITHER,
    };
    // Racing first calls store the same answer.
    DETECTED.store(level, Ordering::Relaxed);
    level
}

impl Avx2Fma {
    /// `Some` when the running CPU has AVX2 and FMA (and the OS saves their registers).
    ///
    /// The CPU is asked once; later calls cost one relaxed atomic load and a compare, which is
    /// why every dispatched kernel can call it (a batch-of-one forward pass is ≈ 100 ns).
    #[inline]
    pub fn detect() -> Option<Self> {
        (level() >= AVX2_FMA).then_some(Self(()))
    }
}

/// Proof that the running CPU has AVX-512 (F and DQ) besides AVX2 and FMA: the key to the
/// kernels of [`crate::kernels::simd`] compiled with 16 lanes, the tiles and the packed
/// forward route of a `-C target-cpu=native` build on such a CPU, which a default
/// `cargo build` for x86_64 would not otherwise use.
///
/// Only [`Avx512::detect`] makes one, so holding one means the instructions are there.
///
/// ```
/// use microtrain::kernels::{Shape, avx2::Avx512, scalar};
/// let (x, w, b) = ([1.0f32; 3], [0.5f32; 6], [0.25f32; 2]);
/// let shape = Shape { rows: 1, inputs: 3, outputs: 2 };
/// let mut y = [0.0f32; 2];
/// match Avx512::detect() {
///     Some(cpu) => cpu.dense_forward(&x, &w, &b, &mut y, shape),
///     None => scalar::dense_forward(&x, &w, &b, &mut y, shape),
/// }
/// assert_eq!(y, [1.75, 1.75]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx512(());

impl Avx512 {
    /// `Some` when the running CPU has AVX-512F, AVX-512DQ, AVX2 and FMA (and the OS saves
    /// the AVX-512 registers); cached with [`Avx2Fma::detect`]'s answer (the same load).
    #[inline]
    pub fn detect() -> Option<Self> {
        (level() == AVX512).then_some(Self(()))
    }

    /// Does `work` in a function compiled with AVX-512 enabled (see [`Work`]).
    #[inline]
    pub(crate) fn run<W: Work>(self, work: W) -> W::Output {
        // SAFETY: `self` exists only if `Avx512::detect` found AVX-512F/DQ, AVX2 and FMA on
        // this CPU, the features `run_avx512` is compiled with.
        unsafe { run_avx512(work) }
    }
}

#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn run_avx512<W: Work>(work: W) -> W::Output {
    work.run()
}

impl Avx2Fma {
    /// Does `work` in a function compiled with AVX2 and FMA enabled (see [`Work`]).
    #[inline]
    pub(crate) fn run<W: Work>(self, work: W) -> W::Output {
        // SAFETY: `self` exists only if `Avx2Fma::detect` found AVX2 and FMA on this CPU,
        // the features `run_avx2_fma` is compiled with.
        unsafe { run_avx2_fma(work) }
    }
}

#[target_feature(enable = "avx2,fma")]
fn run_avx2_fma<W: Work>(work: W) -> W::Output {
    work.run()
}

/// The entries of the dispatched kernels: for each, a function compiled with the token's
/// target features, around the kernel's body (inlined, `#[inline(always)]`, with everything
/// it calls), and the token's safe method that calls it.
macro_rules! entries {
    (
        $token:ident, $features:literal, $compiled:ident;
        $(
            $(#[$doc:meta])*
            fn $name:ident = $body:path, ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;
        )*
    ) => {
        mod $compiled {
            use super::*;
            $(
                #[target_feature(enable = $features)]
                pub(super) fn $name($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
            )*
        }
        /// The kernels, with the contracts of their namesakes in [`crate::kernels::scalar`].
        impl $token {
            $(
                $(#[$doc])*
                #[inline]
                pub fn $name(self, $($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: `self` exists only if the token's `detect` found the features
                    // this entry is compiled with on this CPU.
                    unsafe { $compiled::$name($($arg),*) }
                }
            )*
        }
    };
}

entries! {
    Avx2Fma, "avx2,fma", compiled;
    /// [`simd::dense_forward`](crate::kernels::simd::dense_forward) with AVX2 + FMA.
    fn dense_forward = crate::kernels::avx2::forward::dense_forward,
        (input: &[f32], weights: &[f32], bias: &[f32], output: &mut [f32], shape: Shape);
    /// [`simd::dense_input_gradient`](crate::kernels::simd::dense_input_gradient) with
    /// AVX2 + FMA.
    fn dense_input_gradient = crate::kernels::avx2::input_gradient::dense_input_gradient,
        (d_output: &[f32], weights: &[f32], d_input: &mut [f32], shape: Shape);
    /// [`simd::dense_weight_gradient`](crate::kernels::simd::dense_weight_gradient) with
    /// AVX2 + FMA.
    fn dense_weight_gradient = crate::kernels::avx2::weight_gradient::dense_weight_gradient,
        (d_output: &[f32], input: &[f32], weights: &[f32], d_weights: &mut [f32],
         shape: Shape, penalty: Regularizer) -> f32;
    /// [`simd::dense_bias_gradient`](crate::kernels::simd::dense_bias_gradient) with
    /// AVX2 + FMA.
    fn dense_bias_gradient = crate::kernels::avx2::weight_gradient::dense_bias_gradient,
        (d_output: &[f32], bias: &[f32], d_bias: &mut [f32], rows: usize,
         penalty: Regularizer) -> f32;
    /// [`simd::adam_update`](crate::kernels::simd::adam_update) with AVX2: the same bits
    /// (its operations are the scalar kernel's, lane by lane, with the same flushes).
    fn adam_update = crate::kernels::avx2::adam::adam_update,
        (weights: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], step: AdamStep);
    /// [`simd::relu`](crate::kernels::simd::relu) at this level (the scalar kernel's bits).
    fn relu = crate::kernels::avx2::activation::relu, (values: &mut [f32]);
    /// [`simd::relu_derivative`](crate::kernels::simd::relu_derivative) at this level.
    fn relu_derivative = crate::kernels::avx2::activation::relu_derivative, (values: &mut [f32]);
    /// [`simd::leaky_relu`](crate::kernels::simd::leaky_relu) at this level.
    fn leaky_relu = crate::kernels::avx2::activation::leaky_relu, (values: &mut [f32], alpha: f32);
    /// [`simd::leaky_relu_derivative`](crate::kernels::simd::leaky_relu_derivative) at this
    /// level.
    fn leaky_relu_derivative = crate::kernels::avx2::activation::leaky_relu_derivative,
        (values: &mut [f32], alpha: f32);
    /// [`simd::sigmoid_derivative`](crate::kernels::simd::sigmoid_derivative) at this level.
    fn sigmoid_derivative = crate::kernels::avx2::activation::sigmoid_derivative, (values: &mut [f32]);
    /// [`simd::tanh_derivative`](crate::kernels::simd::tanh_derivative) at this level.
    fn tanh_derivative = crate::kernels::avx2::activation::tanh_derivative, (values: &mut [f32]);
    /// [`simd::multiply`](crate::kernels::simd::multiply) at this level.
    fn multiply = crate::kernels::avx2::activation::multiply, (values: &mut [f32], factors: &[f32]);
}

entries! {
    Avx512, "avx512f,avx512dq,avx2,fma", compiled_avx512;
    /// [`simd::dense_forward`](crate::kernels::simd::dense_forward) with AVX-512: 16 lanes,
    /// and the packed route for batches of 6 rows or more.
    fn dense_forward = crate::kernels::avx2::avx512::forward::dense_forward,
        (input: &[f32], weights: &[f32], bias: &[f32], output: &mut [f32], shape: Shape);
    /// [`simd::dense_input_gradient`](crate::kernels::simd::dense_input_gradient) with
    /// AVX-512.
    fn dense_input_gradient = crate::kernels::avx2::avx512::input_gradient::dense_input_gradient,
        (d_output: &[f32], weights: &[f32], d_input: &mut [f32], shape: Shape);
    /// [`simd::dense_weight_gradient`](crate::kernels::simd::dense_weight_gradient) with
    /// AVX-512.
    fn dense_weight_gradient = crate::kernels::avx2::avx512::weight_gradient::dense_weight_gradient,
        (d_output: &[f32], input: &[f32], weights: &[f32], d_weights: &mut [f32],
         shape: Shape, penalty: Regularizer) -> f32;
    /// [`simd::dense_bias_gradient`](crate::kernels::simd::dense_bias_gradient) with
    /// AVX-512.
    fn dense_bias_gradient = crate::kernels::avx2::avx512::weight_gradient::dense_bias_gradient,
        (d_output: &[f32], bias: &[f32], d_bias: &mut [f32], rows: usize,
         penalty: Regularizer) -> f32;
    /// [`simd::adam_update`](crate::kernels::simd::adam_update) with AVX-512: the same bits.
    fn adam_update = crate::kernels::avx2::avx512::adam::adam_update,
        (weights: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], step: AdamStep);
    /// [`simd::relu`](crate::kernels::simd::relu) at this level (the scalar kernel's bits).
    fn relu = crate::kernels::avx2::avx512::activation::relu, (values: &mut [f32]);
    /// [`simd::relu_derivative`](crate::kernels::simd::relu_derivative) at this level.
    fn relu_derivative = crate::kernels::avx2::avx512::activation::relu_derivative, (values: &mut [f32]);
    /// [`simd::leaky_relu`](crate::kernels::simd::leaky_relu) at this level.
    fn leaky_relu = crate::kernels::avx2::avx512::activation::leaky_relu, (values: &mut [f32], alpha: f32);
    /// [`simd::leaky_relu_derivative`](crate::kernels::simd::leaky_relu_derivative) at this
    /// level.
    fn leaky_relu_derivative = crate::kernels::avx2::avx512::activation::leaky_relu_derivative,
        (values: &mut [f32], alpha: f32);
    /// [`simd::sigmoid_derivative`](crate::kernels::simd::sigmoid_derivative) at this level.
    fn sigmoid_derivative = crate::kernels::avx2::avx512::activation::sigmoid_derivative, (values: &mut [f32]);
    /// [`simd::tanh_derivative`](crate::kernels::simd::tanh_derivative) at this level.
    fn tanh_derivative = crate::kernels::avx2::avx512::activation::tanh_derivative, (values: &mut [f32]);
    /// [`simd::multiply`](crate::kernels::simd::multiply) at this level.
    fn multiply = crate::kernels::avx2::avx512::activation::multiply, (values: &mut [f32], factors: &[f32]);
}

/// Executes an AVX / AVX2 / FMA intrinsic.
macro_rules! avx {
    ($e:expr) => {
        // SAFETY: `F32x8`'s operations run only in kernels reached through the entries, after
        // `Avx2Fma::detect` found AVX2 and FMA (see the module's documentation); the
        // intrinsics used here need nothing else (no pointers, no alignment).
        unsafe { $e }
    };
}

/// Eight `f32` lanes in one AVX register, with the subset of `wide::f32x8`'s API that the
/// kernels use, under the same names and with the same lane semantics (comparisons are
/// ordered and quiet: false on NaN; masks are all-ones lanes).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(super) struct F32x8(__m256);

impl F32x8 {
    pub const ZERO: Self = Self::new([0.0; 8]);
    pub const ONE: Self = Self::new([1.0; 8]);

    #[inline(always)]
    pub const fn new(lanes: [f32; 8]) -> Self {
        // SAFETY: `[f32; 8]` and `__m256` have the same size and every bit pattern is valid
        // for both; a transmute is no instruction (it compiles to a load or nothing).
        Self(unsafe { core::mem::transmute::<[f32; 8], __m256>(lanes) })
    }

    #[inline(always)]
    pub fn to_array(self) -> [f32; 8] {
        // SAFETY: as in `new`.
        unsafe { core::mem::transmute::<__m256, [f32; 8]>(self.0) }
    }

    #[inline(always)]
    pub fn splat(x: f32) -> Self {
        Self(avx!(_mm256_set1_ps(x)))
    }

    /// `self · b + c`, rounded once.
    #[inline(always)]
    pub fn mul_add(self, b: Self, c: Self) -> Self {
        Self(avx!(_mm256_fmadd_ps(self.0, b.0, c.0)))
    }

    #[inline(always)]
    pub fn reduce_add(self) -> f32 {
        avx!({
            let four = _mm_add_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
            _mm_cvtss_f32(_mm_add_ss(two, _mm_movehdup_ps(two)))
        })
    }

    #[inline(always)]
    pub fn abs(self) -> Self {
        Self(avx!(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0)))
    }

    #[inline(always)]
    pub fn sqrt(self) -> Self {
        Self(avx!(_mm256_sqrt_ps(self.0)))
    }

    #[inline(always)]
    pub fn simd_gt(self, other: Self) -> Self {
        Self(avx!(_mm256_cmp_ps::<_CMP_GT_OQ>(self.0, other.0)))
    }

    #[inline(always)]
    pub fn simd_lt(self, other: Self) -> Self {
        Self(avx!(_mm256_cmp_ps::<_CMP_LT_OQ>(self.0, other.0)))
    }

    #[inline(always)]
    pub fn simd_le(self, other: Self) -> Self {
        Self(avx!(_mm256_cmp_ps::<_CMP_LE_OQ>(self.0, other.0)))
    }

    #[inline(always)]
    pub fn simd_ge(self, other: Self) -> Self {
        Self(avx!(_mm256_cmp_ps::<_CMP_GE_OQ>(self.0, other.0)))
    }

    /// Lane by lane, `if_true` where this mask's lane is set, else `if_false`.
    #[inline(always)]
    pub fn select(self, if_true: Self, if_false: Self) -> Self {
        Self(avx!(_mm256_blendv_ps(if_false.0, if_true.0, self.0)))
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $intrinsic:ident) => {
        impl $trait for F32x8 {
            type Output = Self;
            #[inline(always)]
            fn $method(self, other: Self) -> Self {
                Self(avx!($intrinsic(self.0, other.0)))
            }
        }
    };
}
operator!(Add, add, _mm256_add_ps);
operator!(Sub, sub, _mm256_sub_ps);
operator!(Mul, mul, _mm256_mul_ps);
operator!(Div, div, _mm256_div_ps);
operator!(BitAnd, bitand, _mm256_and_ps);

impl AddAssign for F32x8 {
    #[inline(always)]
    fn add_assign(&mut self, other: Self) {
        *self = *self + other;
    }
}

/// Executes an AVX-512 intrinsic.
macro_rules! avx512 {
    ($e:expr) => {
        // SAFETY: `F32x16`'s operations run only in kernels reached through the entries of
        // `Avx512`, after `Avx512::detect` found AVX-512F/DQ (see the module's
        // documentation); the intrinsics used here need nothing else (no pointers, no
        // alignment).
        unsafe { $e }
    };
}

/// Sixteen `f32` lanes in one AVX-512 register, with the subset of `wide::f32x16`'s API that
/// the kernels use, under the same names, with the same lane semantics and the same
/// instructions as `wide` compiled for AVX-512 (comparisons ordered and quiet, masks as
/// all-ones lanes expanded from the compare's mask register, `reduce_add` as
/// `_mm512_reduce_add_ps`).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(super) struct F32x16(__m512);

impl F32x16 {
    pub const ZERO: Self = Self::new([0.0; 16]);
    pub const ONE: Self = Self::new([1.0; 16]);

    #[inline(always)]
    pub const fn new(lanes: [f32; 16]) -> Self {
        // SAFETY: `[f32; 16]` and `__m512` have the same size and every bit pattern is valid
        // for both; a transmute is no instruction (it compiles to a load or nothing).
        Self(unsafe { core::mem::transmute::<[f32; 16], __m512>(lanes) })
    }

    #[inline(always)]
    pub fn to_array(self) -> [f32; 16] {
        // SAFETY: as in `new`.
        unsafe { core::mem::transmute::<__m512, [f32; 16]>(self.0) }
    }

    #[inline(always)]
    pub fn splat(x: f32) -> Self {
        Self(avx512!(_mm512_set1_ps(x)))
    }

    /// `self · b + c`, rounded once.
    #[inline(always)]
    pub fn mul_add(self, b: Self, c: Self) -> Self {
        Self(avx512!(_mm512_fmadd_ps(self.0, b.0, c.0)))
    }

    #[inline(always)]
    pub fn reduce_add(self) -> f32 {
        avx512!(_mm512_reduce_add_ps(self.0))
    }

    #[inline(always)]
    pub fn abs(self) -> Self {
        self & Self::splat(f32::from_bits(0x7fff_ffff))
    }

    #[inline(always)]
    pub fn sqrt(self) -> Self {
        Self(avx512!(_mm512_sqrt_ps(self.0)))
    }

    /// All-ones lanes where `mask` is set, zeros elsewhere.
    #[inline(always)]
    fn expand(mask: __mmask16) -> Self {
        Self(avx512!(_mm512_castsi512_ps(_mm512_movm_epi32(mask))))
    }

    #[inline(always)]
    pub fn simd_gt(self, other: Self) -> Self {
        Self::expand(avx512!(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, other.0)))
    }

    #[inline(always)]
    pub fn simd_lt(self, other: Self) -> Self {
        Self::expand(avx512!(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, other.0)))
    }

    #[inline(always)]
    pub fn simd_le(self, other: Self) -> Self {
        Self::expand(avx512!(_mm512_cmp_ps_mask::<_CMP_LE_OQ>(self.0, other.0)))
    }

    #[inline(always)]
    pub fn simd_ge(self, other: Self) -> Self {
        Self::expand(avx512!(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(self.0, other.0)))
    }

    /// Lane by lane, `if_true` where this mask's lane is set, else `if_false`.
    #[inline(always)]
    pub fn select(self, if_true: Self, if_false: Self) -> Self {
        let mask = avx512!(_mm512_movepi32_mask(_mm512_castps_si512(self.0)));
        Self(avx512!(_mm512_mask_blend_ps(mask, if_false.0, if_true.0)))
    }

    /// The lanes of `(self, other)` (32 of them) picked by `indices`: one `vpermt2ps`.
    #[inline(always)]
    pub fn shuffle_pair(self, other: Self, indices: [u32; 16]) -> Self {
        // SAFETY: as in `new`, for `[u32; 16]` and `__m512i`.
        let indices = unsafe { core::mem::transmute::<[u32; 16], __m512i>(indices) };
        Self(avx512!(_mm512_permutex2var_ps(self.0, indices, other.0)))
    }
}

macro_rules! operator512 {
    ($trait:ident, $method:ident, $intrinsic:ident) => {
        impl $trait for F32x16 {
            type Output = Self;
            #[inline(always)]
            fn $method(self, other: Self) -> Self {
                Self(avx512!($intrinsic(self.0, other.0)))
            }
        }
    };
}
operator512!(Add, add, _mm512_add_ps);
operator512!(Sub, sub, _mm512_sub_ps);
operator512!(Mul, mul, _mm512_mul_ps);
operator512!(Div, div, _mm512_div_ps);
operator512!(BitAnd, bitand, _mm512_and_ps);

impl AddAssign for F32x16 {
    #[inline(always)]
    fn add_assign(&mut self, other: Self) {
        *self = *self + other;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{self, scalar, simd};

    #[test]
    fn detection_matches_the_cpu_and_is_cached() {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        let avx512 = avx2
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512dq");
        assert_eq!(Avx2Fma::detect().is_some(), avx2);
        assert_eq!(Avx512::detect().is_some(), avx512);
        let cached = match (avx512, avx2) {
            (true, _) => AVX512,
            (false, true) => AVX2_FMA,
            (false, false) => NEITHER,
        };
        assert_eq!(DETECTED.load(Ordering::Relaxed), cached);
        assert_eq!(Avx2Fma::detect().is_some(), avx2, "the cached answer");
        assert_eq!(Avx512::detect().is_some(), avx512, "the cached answer");
    }

    /// The active kernels are this module's where the CPU has AVX2 + FMA: the same bits as
    /// `Avx512`'s where it has AVX-512, else `Avx2Fma`'s, and (fused multiply-adds, 8 or 16
    /// lanes) not those of `wide`'s SSE2 set on a product long enough to round differently.
    #[test]
    fn the_active_kernels_run_these_where_the_cpu_has_them() {
        let Some(cpu) = Avx2Fma::detect() else {
            return;
        };
        let shape = Shape {
            rows: 3,
            inputs: 61,
            outputs: 5,
        };
        let value = |k: usize| ((k * 7919) % 1000) as f32 / 997.0 - 0.5;
        let x: std::vec::Vec<f32> = (0..shape.rows * shape.inputs).map(value).collect();
        let w: std::vec::Vec<f32> = (0..shape.outputs * shape.inputs)
            .map(|k| value(k + 13))
            .collect();
        let b = [0.125f32; 5];
        let run = |f: &dyn Fn(&mut [f32])| {
            let mut y = [0.0f32; 15];
            f(&mut y);
            y.map(f32::to_bits)
        };
        let active = run(&|y| kernels::dense_forward(&x, &w, &b, y, shape));
        let dispatched = run(&|y| match Avx512::detect() {
            Some(wider) => wider.dense_forward(&x, &w, &b, y, shape),
            None => cpu.dense_forward(&x, &w, &b, y, shape),
        });
        let sse2 = run(&|y| simd::dense_forward(&x, &w, &b, y, shape));
        assert_eq!(active, dispatched, "the widest level the CPU has");
        assert_ne!(active, sse2, "the active forward pass is wide's SSE2 one");
    }

    type BiasGradientFn = fn(&[f32], &[f32], &mut [f32], usize, Regularizer) -> f32;
    type AdamFn = fn(&mut [f32], &[f32], &mut [f32], &mut [f32], AdamStep);

    /// One dispatched level's kernels, as plain functions.
    struct Level {
        name: &'static str,
        forward: kernels::ForwardFn,
        input_gradient: kernels::InputGradientFn,
        weight_gradient: kernels::WeightGradientFn,
        bias_gradient: BiasGradientFn,
        adam: AdamFn,
    }

    /// The levels this CPU has (the closures ask again, so that they capture nothing).
    fn levels() -> std::vec::Vec<Level> {
        let mut levels = std::vec::Vec::new();
        if Avx2Fma::detect().is_some() {
            levels.push(Level {
                name: "avx2",
                forward: |x, w, b, y, s| {
                    if let Some(c) = Avx2Fma::detect() {
                        c.dense_forward(x, w, b, y, s)
                    }
                },
                input_gradient: |d, w, di, s| {
                    if let Some(c) = Avx2Fma::detect() {
                        c.dense_input_gradient(d, w, di, s)
                    }
                },
                weight_gradient: |d, x, w, dw, s, p| {
                    Avx2Fma::detect()
                        .map_or(f32::NAN, |c| c.dense_weight_gradient(d, x, w, dw, s, p))
                },
                bias_gradient: |d, b, db, r, p| {
                    Avx2Fma::detect().map_or(f32::NAN, |c| c.dense_bias_gradient(d, b, db, r, p))
                },
                adam: |w, g, m, v, s| {
                    if let Some(c) = Avx2Fma::detect() {
                        c.adam_update(w, g, m, v, s)
                    }
                },
            });
        }
        if Avx512::detect().is_some() {
            levels.push(Level {
                name: "avx512",
                forward: |x, w, b, y, s| {
                    if let Some(c) = Avx512::detect() {
                        c.dense_forward(x, w, b, y, s)
                    }
                },
                input_gradient: |d, w, di, s| {
                    if let Some(c) = Avx512::detect() {
                        c.dense_input_gradient(d, w, di, s)
                    }
                },
                weight_gradient: |d, x, w, dw, s, p| {
                    Avx512::detect()
                        .map_or(f32::NAN, |c| c.dense_weight_gradient(d, x, w, dw, s, p))
                },
                bias_gradient: |d, b, db, r, p| {
                    Avx512::detect().map_or(f32::NAN, |c| c.dense_bias_gradient(d, b, db, r, p))
                },
                adam: |w, g, m, v, s| {
                    if let Some(c) = Avx512::detect() {
                        c.adam_update(w, g, m, v, s)
                    }
                },
            });
        }
        levels
    }

    fn bits(v: &[f32]) -> std::vec::Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Within `(terms + 2)·ε·Σ|t|` of the scalar result, `abs_sum` being the scalar kernel
    /// run on the operands' magnitudes (a sum's rounding error in another order).
    fn assert_close(what: &str, actual: &[f32], expected: &[f32], abs_sum: &[f32], terms: usize) {
        assert_eq!(actual.len(), expected.len(), "{what}");
        for (k, ((a, e), s)) in actual.iter().zip(expected).zip(abs_sum).enumerate() {
            let bound = (terms as f32 + 2.0) * f32::EPSILON * s;
            assert!(
                (a - e).abs() <= bound,
                "{what} [{k}]: {a} against scalar {e} (bound {bound})"
            );
        }
    }

    /// Every dispatched level's kernels against their scalar twins, on widths around 8 and
    /// 16 lanes (mostly not multiples of either) and batches through the register tiles and
    /// (6 rows and more, AVX-512) the packed forward route.
    #[test]
    fn each_level_matches_the_scalar_twins_on_odd_sizes() {
        const SIZES: [usize; 11] = [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 65];
        const ROWS: [usize; 6] = [1, 2, 5, 6, 7, 13];
        let value = |k: usize| ((k * 7919 + 17) % 1009) as f32 / 1009.0 - 0.5;
        let values = |n: usize, salt: usize| -> std::vec::Vec<f32> {
            (0..n).map(|k| value(k + 31 * salt)).collect()
        };
        let abs = |v: &[f32]| -> std::vec::Vec<f32> { v.iter().map(|x| x.abs()).collect() };
        let penalty = Regularizer::l1_l2(1e-3, 1e-2).unwrap_or(Regularizer::NONE);
        for level in levels() {
            for rows in ROWS {
                for inputs in SIZES {
                    for outputs in SIZES {
                        let shape = Shape {
                            rows,
                            inputs,
                            outputs,
                        };
                        let what =
                            |k: &str| std::format!("{} {k} {rows}x{inputs}x{outputs}", level.name);
                        let (x, w, b) = (
                            values(rows * inputs, 1),
                            values(outputs * inputs, 2),
                            values(outputs, 3),
                        );
                        let d = values(rows * outputs, 4);
                        let (mut y, mut ye, mut ys) = (
                            std::vec![0.0; rows * outputs],
                            std::vec![0.0; rows * outputs],
                            std::vec![0.0; rows * outputs],
                        );
                        (level.forward)(&x, &w, &b, &mut y, shape);
                        scalar::dense_forward(&x, &w, &b, &mut ye, shape);
                        scalar::dense_forward(&abs(&x), &abs(&w), &abs(&b), &mut ys, shape);
                        assert_close(&what("forward"), &y, &ye, &ys, inputs);

                        let entry = values(rows * inputs, 5);
                        let (mut di, mut die) = (entry.clone(), entry.clone());
                        let mut dis = abs(&entry);
                        (level.input_gradient)(&d, &w, &mut di, shape);
                        scalar::dense_input_gradient(&d, &w, &mut die, shape);
                        scalar::dense_input_gradient(&abs(&d), &abs(&w), &mut dis, shape);
                        assert_close(&what("input gradient"), &di, &die, &dis, outputs);

                        let (mut dw, mut dwe, mut dws) = (
                            std::vec![9.0; outputs * inputs],
                            std::vec![0.0; outputs * inputs],
                            std::vec![0.0; outputs * inputs],
                        );
                        let loss = (level.weight_gradient)(&d, &x, &w, &mut dw, shape, penalty);
                        let loss_e =
                            scalar::dense_weight_gradient(&d, &x, &w, &mut dwe, shape, penalty);
                        let loss_s = scalar::dense_weight_gradient(
                            &abs(&d),
                            &abs(&x),
                            &abs(&w),
                            &mut dws,
                            shape,
                            penalty,
                        );
                        assert_close(&what("weight gradient"), &dw, &dwe, &dws, rows + 2);
                        assert_close(
                            &what("penalty"),
                            &[loss],
                            &[loss_e],
                            &[loss_s],
                            outputs * inputs,
                        );

                        let (mut db, mut dbe) = (std::vec![9.0; outputs], std::vec![0.0; outputs]);
                        (level.bias_gradient)(&d, &b, &mut db, rows, penalty);
                        scalar::dense_bias_gradient(&d, &b, &mut dbe, rows, penalty);
                        assert_eq!(bits(&db), bits(&dbe), "{}", what("bias gradient"));
                    }
                }
            }
            let step = AdamStep {
                learning_rate: 1e-3,
                rate_1: 0.1,
                rate_2: 0.001,
                epsilon: 1e-7,
            };
            for n in SIZES.into_iter().chain([0, 100]) {
                let (w, g, m) = (values(n, 6), values(n, 7), values(n, 8));
                let v = abs(&values(n, 9));
                let (mut wa, mut ma, mut va) = (w.clone(), m.clone(), v.clone());
                let (mut we, mut me, mut ve) = (w, m, v);
                (level.adam)(&mut wa, &g, &mut ma, &mut va, step);
                scalar::adam_update(&mut we, &g, &mut me, &mut ve, step);
                assert_eq!(bits(&wa), bits(&we), "{} adam weights n {n}", level.name);
                assert_eq!(bits(&ma), bits(&me), "{} adam m n {n}", level.name);
                assert_eq!(bits(&va), bits(&ve), "{} adam v n {n}", level.name);
            }
        }
    }

    /// Every dispatched level's elementwise kernels (the piecewise activations, the
    /// derivatives and `multiply`) against their scalar twins, bit for bit, on lengths
    /// around 8 and 16 lanes, with -0, infinities, NaN and subnormals among the values.
    #[test]
    fn each_level_matches_the_scalar_elementwise_twins_on_odd_sizes() {
        const SIZES: [usize; 13] = [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 65, 100];
        let special = [
            -0.0,
            0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e-40,
            -1e-40,
        ];
        let value = |k: usize| match special.get(k % 23) {
            Some(&s) => s,
            None => ((k * 7919 + 17) % 1009) as f32 / 101.0 - 5.0,
        };
        let values = |n: usize, salt: usize| -> std::vec::Vec<f32> {
            (0..n).map(|k| value(k + 5 * salt)).collect()
        };
        type Unary = fn(&mut [f32]);
        type WithAlpha = fn(&mut [f32], f32);
        type Binary = fn(&mut [f32], &[f32]);
        macro_rules! level {
            ($token:ident) => {{
                let unary: [(&str, Unary, Unary); 4] = [
                    (
                        "relu",
                        |v| $token::detect().map_or((), |c| c.relu(v)),
                        scalar::relu,
                    ),
                    (
                        "relu_derivative",
                        |v| $token::detect().map_or((), |c| c.relu_derivative(v)),
                        scalar::relu_derivative,
                    ),
                    (
                        "sigmoid_derivative",
                        |v| $token::detect().map_or((), |c| c.sigmoid_derivative(v)),
                        scalar::sigmoid_derivative,
                    ),
                    (
                        "tanh_derivative",
                        |v| $token::detect().map_or((), |c| c.tanh_derivative(v)),
                        scalar::tanh_derivative,
                    ),
                ];
                let with_alpha: [(&str, WithAlpha, WithAlpha); 2] = [
                    (
                        "leaky_relu",
                        |v, a| $token::detect().map_or((), |c| c.leaky_relu(v, a)),
                        scalar::leaky_relu,
                    ),
                    (
                        "leaky_relu_derivative",
                        |v, a| $token::detect().map_or((), |c| c.leaky_relu_derivative(v, a)),
                        scalar::leaky_relu_derivative,
                    ),
                ];
                let multiply: Binary = |v, f| $token::detect().map_or((), |c| c.multiply(v, f));
                (stringify!($token), unary, with_alpha, multiply)
            }};
        }
        let mut levels = std::vec::Vec::new();
        if Avx2Fma::detect().is_some() {
            levels.push(level!(Avx2Fma));
        }
        if Avx512::detect().is_some() {
            levels.push(level!(Avx512));
        }
        for (name, unary, with_alpha, multiply) in levels {
            for n in SIZES {
                let x = values(n, 1);
                for (kernel, dispatched, twin) in unary {
                    let (mut a, mut e) = (x.clone(), x.clone());
                    dispatched(&mut a);
                    twin(&mut e);
                    assert_eq!(bits(&a), bits(&e), "{name} {kernel} n {n}");
                }
                for (kernel, dispatched, twin) in with_alpha {
                    let (mut a, mut e) = (x.clone(), x.clone());
                    dispatched(&mut a, 0.01);
                    twin(&mut e, 0.01);
                    assert_eq!(bits(&a), bits(&e), "{name} {kernel} n {n}");
                }
                // Factors one shorter: the kernel stops at the shorter slice.
                let f = values(n.saturating_sub(1), 2);
                let (mut a, mut e) = (x.clone(), x.clone());
                multiply(&mut a, &f);
                scalar::multiply(&mut e, &f);
                assert_eq!(bits(&a), bits(&e), "{name} multiply n {n}");
            }
        }
    }
}
