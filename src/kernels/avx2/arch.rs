//! The crate's run-time dispatch to AVX2 + FMA, and the one place where it needs `unsafe`:
//! the detection token [`Avx2Fma`], the entries compiled with the target features, and the
//! 8-lane vector type the kernels of [`super`] compute with.
//!
//! # Why this is sound
//! An AVX2 or FMA instruction is undefined behaviour on a CPU without it. Every intrinsic
//! below runs inside one of the kernels of [`super`], which are private: their only callers
//! are the entries below, which [`Avx2Fma`]'s methods call, and the only way to get an
//! [`Avx2Fma`] is [`Avx2Fma::detect`], which returns one only when the running CPU reports
//! both features (`is_x86_feature_detected!`).
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

/// [`Avx2Fma::detect`]'s answer once it is known: [`UNKNOWN`], [`ABSENT`] or [`PRESENT`].
static DETECTED: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const ABSENT: u8 = 1;
const PRESENT: u8 = 2;

impl Avx2Fma {
    /// `Some` when the running CPU has AVX2 and FMA (and the OS saves their registers).
    ///
    /// The CPU is asked once; later calls cost one relaxed atomic load and a compare, which is
    /// why every dispatched kernel can call it (a batch-of-one forward pass is ≈ 100 ns).
    #[inline]
    pub fn detect() -> Option<Self> {
        match DETECTED.load(Ordering::Relaxed) {
            PRESENT => Some(Self(())),
            ABSENT => None,
            _ => Self::ask_the_cpu(),
        }
    }

    #[cold]
    fn ask_the_cpu() -> Option<Self> {
        let present = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        // Racing first calls store the same answer.
        DETECTED.store(if present { PRESENT } else { ABSENT }, Ordering::Relaxed);
        present.then_some(Self(()))
    }
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

/// The entries of the AVX2 + FMA kernels: for each, a function compiled with the features
/// enabled, around the kernel's body (inlined, `#[inline(always)]`, with everything it
/// calls), and [`Avx2Fma`]'s safe method that calls it.
macro_rules! entries {
    ($(
        $(#[$doc:meta])*
        fn $name:ident = $body:path, ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;
    )*) => {
        mod compiled {
            use super::*;
            $(
                #[target_feature(enable = "avx2,fma")]
                pub(super) fn $name($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
            )*
        }
        /// The kernels, with the contracts of their namesakes in [`crate::kernels::scalar`].
        impl Avx2Fma {
            $(
                $(#[$doc])*
                #[inline]
                pub fn $name(self, $($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: `self` exists only if `Avx2Fma::detect` found AVX2 and FMA on
                    // this CPU, the features `compiled::$name` is compiled with.
                    unsafe { compiled::$name($($arg),*) }
                }
            )*
        }
    };
}

entries! {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{self, simd};

    #[test]
    fn detection_matches_the_cpu_and_is_cached() {
        let cpu = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        assert_eq!(Avx2Fma::detect().is_some(), cpu);
        let cached = if cpu { PRESENT } else { ABSENT };
        assert_eq!(DETECTED.load(Ordering::Relaxed), cached);
        assert_eq!(Avx2Fma::detect().is_some(), cpu, "the cached answer");
    }

    /// The active kernels are this module's where the CPU has AVX2 + FMA: the same bits as
    /// `Avx2Fma`'s, and (fused multiply-adds, 8 lanes) not those of `wide`'s SSE2 set on a
    /// product long enough to round differently.
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
        let dispatched = run(&|y| cpu.dense_forward(&x, &w, &b, y, shape));
        let sse2 = run(&|y| simd::dense_forward(&x, &w, &b, y, shape));
        assert_eq!(active, dispatched);
        assert_ne!(active, sse2, "the active forward pass is wide's SSE2 one");
    }
}
