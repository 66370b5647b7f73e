//! Keras' noise layers — `GaussianNoise`, `GaussianDropout`, `AlphaDropout` — with their
//! noise replayed from a seed in backward, as [`Dropout`]'s masks are, never stored.
//!
//! # The normal sampler
//! Gaussian noise comes from the Box–Muller transform on two 24-bit uniforms from a fresh
//! generator `G` seeded with the step's seed: `u₁ ∈ (0, 1]`, `u₂ ∈ [0, 1)`,
//! `r = sqrt(-2·ln u₁)`, and the pair `(r·cos 2πu₂, r·sin 2πu₂)` serves two values. Cost per
//! two values: two `u32` draws, one `logf`, one `sqrtf` and one `sincosf` from `libm` (no new
//! dependency, the same bits on every target). Accuracy: each draw is within a few ulps of
//! the exact transform of its uniforms (`libm`'s `logf` and `sincosf` are within 1 ulp); the
//! uniforms' 24 bits cap `|n|` at `sqrt(2·24·ln 2) ≈ 5.77`, so the tails beyond 5.77σ
//! (probability 8·10⁻⁹) are missing. The draws are not JAX's (Keras' JAX backend uses
//! `jax.random.normal`, a different generator): the same distribution, not the same
//! numbers.

use core::marker::PhantomData;

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

use super::{Dropout, Hidden, Layer, MaskSeed, NoParams};
use crate::activation::Identity;
use crate::error::{Error, non_negative, unit_interval};
use crate::math;

/// Calls `f(value, n)` for each of `values` in order with its standard normal draw `n`,
/// generated from a fresh `G` seeded with `seed` (see the module docs): the same seed gives
/// the same draws, which is how backward replays forward's noise.
fn for_each_normal<G: Rng + SeedableRng>(
    seed: u64,
    values: &mut [f32],
    mut f: impl FnMut(&mut f32, f32),
) {
    const UNIT: f32 = 1.0 / 16_777_216.0; // 2^-24
    let mut generator = G::seed_from_u64(seed);
    for pair in values.chunks_mut(2) {
        // (0, 1]: ln(u₁) is finite. Both integers are below 2^24 + 1, exact as f32.
        let u1 = (generator.next_u32() >> 8).wrapping_add(1) as f32 * UNIT;
        let u2 = (generator.next_u32() >> 8) as f32 * UNIT;
        let radius = math::sqrt(-2.0 * math::ln(u1));
        let (sin, cos) = math::sin_cos(core::f32::consts::TAU * u2);
        let mut normals = [radius * cos, radius * sin].into_iter();
        for (v, n) in pair.iter_mut().zip(&mut normals) {
            f(v, n);
        }
    }
}

/// Copies `input` into `output` (as many values as both hold).
fn copy_rows<const N: usize>(input: &[[f32; N]], output: &mut [[f32; N]]) -> usize {
    let rows = input.len().min(output.len());
    for (y, x) in output.iter_mut().zip(input) {
        *y = *x;
    }
    rows
}

// The three layers share their plumbing: no parameters, a seed as cache, identity
// activation, identity at inference, `propagate` multiplying the gradient through.
macro_rules! noise_layer_common {
    () => {
        type Input = [f32; N];
        type Output = [f32; N];
        type Params = NoParams;
        type Cache = MaskSeed;
        type Activation = Identity;

        fn params(&self) -> &NoParams {
            &self.no_params
        }
        fn params_mut(&mut self) -> &mut NoParams {
            &mut self.no_params
        }
        fn activation(&self) -> &Identity {
            &Identity
        }
        fn infer(&self, input: &[f32; N]) -> [f32; N] {
            *input
        }
        fn parameter_gradients(&self, _: &[[f32; N]], _: &[[f32; N]], _: &mut NoParams) -> f32 {
            0.0
        }
        fn propagate(&self, d_output: &[[f32; N]], d_input: &mut [[f32; N]], _: &MaskSeed) {
            crate::kernels::multiply(d_input.as_flattened_mut(), d_output.as_flattened());
        }
        fn penalty(&self) -> f32 {
            0.0
        }
    };
}

// Written out because derive would demand `G: Copy` (see `Dropout`).
macro_rules! copy_without_generator_bound {
    ($name:ident) => {
        impl<const N: usize, G> Clone for $name<N, G> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<const N: usize, G> Copy for $name<N, G> {}
    };
}

/// Keras' `GaussianNoise(stddev)` on `N` units: while training, adds `stddev·n` to each
/// value, `n` a standard normal draw; at inference, the identity. The noise is replayed
/// from an 8-byte seed, not stored (and backward needs none of it: `∂y/∂x = 1`).
///
/// ```
/// use microtrain::GaussianNoise;
/// let noise = GaussianNoise::<16>::new(0.1)?;
/// assert_eq!(noise.stddev(), 0.1);
/// assert!(GaussianNoise::<16>::new(-1.0).is_err());
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, PartialEq)]
pub struct GaussianNoise<const N: usize, G = Xoshiro128PlusPlus> {
    stddev: f32,
    no_params: NoParams,
    generator: PhantomData<fn() -> G>,
}
copy_without_generator_bound!(GaussianNoise);

impl<const N: usize, G> GaussianNoise<N, G> {
    /// Gaussian noise of standard deviation `stddev` (0: the identity, drawing nothing).
    ///
    /// # Errors
    /// [`Error::NoiseStddev`] if `stddev` is negative or not finite.
    pub const fn new(stddev: f32) -> Result<Self, Error> {
        const { assert!(N > 0, "GaussianNoise<N>: N must be at least 1") };
        match non_negative(stddev, Error::NoiseStddev { stddev }) {
            Ok(stddev) => Ok(Self {
                stddev,
                no_params: NoParams,
                generator: PhantomData,
            }),
            Err(e) => Err(e),
        }
    }

    /// The standard deviation.
    pub const fn stddev(&self) -> f32 {
        self.stddev
    }
}

impl<const N: usize, G: Rng + SeedableRng> Layer for GaussianNoise<N, G> {
    noise_layer_common!();

    fn forward<R: Rng + ?Sized>(
        &self,
        input: &[[f32; N]],
        output: &mut [[f32; N]],
        seed: &mut MaskSeed,
        rng: &mut R,
    ) {
        let rows = copy_rows(input, output);
        if self.stddev == 0.0 {
            return;
        }
        *seed = MaskSeed::new(rng.next_u64());
        let stddev = self.stddev;
        let values = output.get_mut(..rows).unwrap_or_default();
        // Keras: `inputs + normal(mean=0, stddev)`, the normal being `n·stddev + 0`.
        for_each_normal::<G>(seed.get(), values.as_flattened_mut(), |y, n| {
            *y += n * stddev + 0.0;
        });
    }
}

impl<const N: usize, G: Rng + SeedableRng> Hidden for GaussianNoise<N, G> {
    fn derivative_of_output(&self, output: &mut [[f32; N]], _: &MaskSeed) {
        output.as_flattened_mut().fill(1.0);
    }
}

/// Keras' `GaussianDropout(rate)` on `N` units: while training, multiplies each value by
/// `1 + σ·n`, `n` a standard normal draw and `σ = sqrt(rate / (1 - rate))` (noise of mean 1,
/// the variance of [`Dropout`]'s mask); at inference, the identity. The factors are
/// replayed from an 8-byte seed in backward, where they are `∂y/∂x`.
///
/// ```
/// use microtrain::GaussianDropout;
/// let noise = GaussianDropout::<16>::new(0.2)?;
/// assert!((noise.stddev() - 0.5).abs() < 1e-7);
/// assert!(GaussianDropout::<16>::new(1.0).is_err());
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, PartialEq)]
pub struct GaussianDropout<const N: usize, G = Xoshiro128PlusPlus> {
    rate: f32,
    no_params: NoParams,
    generator: PhantomData<fn() -> G>,
}
copy_without_generator_bound!(GaussianDropout);

impl<const N: usize, G> GaussianDropout<N, G> {
    /// Gaussian dropout with Keras' `rate` (0: the identity, drawing nothing).
    ///
    /// # Errors
    /// [`Error::DropoutRate`] unless `0 <= rate < 1` (Keras accepts 1, whose noise has an
    /// infinite deviation).
    pub const fn new(rate: f32) -> Result<Self, Error> {
        const { assert!(N > 0, "GaussianDropout<N>: N must be at least 1") };
        match unit_interval(rate, Error::DropoutRate { rate }) {
            Ok(rate) => Ok(Self {
                rate,
                no_params: NoParams,
                generator: PhantomData,
            }),
            Err(e) => Err(e),
        }
    }

    /// The rate.
    pub const fn rate(&self) -> f32 {
        self.rate
    }

    /// The noise's standard deviation `sqrt(rate / (1 - rate))`, computed in `f64` and
    /// rounded once, as Keras computes it in Python.
    pub fn stddev(&self) -> f32 {
        let rate = f64::from(self.rate);
        math::sqrt_f64(rate / (1.0 - rate)) as f32
    }
}

impl<const N: usize, G: Rng + SeedableRng> GaussianDropout<N, G> {
    /// Calls `f(value, factor)` with each value's noise factor `n·σ + 1` for `seed`.
    fn for_each_factor(&self, seed: u64, values: &mut [f32], mut f: impl FnMut(&mut f32, f32)) {
        let stddev = self.stddev();
        // Keras: `normal(mean=1, stddev)` is `n·stddev + 1`.
        for_each_normal::<G>(seed, values, |v, n| f(v, n * stddev + 1.0));
    }
}

impl<const N: usize, G: Rng + SeedableRng> Layer for GaussianDropout<N, G> {
    noise_layer_common!();

    fn forward<R: Rng + ?Sized>(
        &self,
        input: &[[f32; N]],
        output: &mut [[f32; N]],
        seed: &mut MaskSeed,
        rng: &mut R,
    ) {
        let rows = copy_rows(input, output);
        if self.rate == 0.0 {
            return;
        }
        *seed = MaskSeed::new(rng.next_u64());
        let values = output.get_mut(..rows).unwrap_or_default();
        self.for_each_factor(seed.get(), values.as_flattened_mut(), |y, m| *y *= m);
    }
}

impl<const N: usize, G: Rng + SeedableRng> Hidden for GaussianDropout<N, G> {
    fn derivative_of_output(&self, output: &mut [[f32; N]], seed: &MaskSeed) {
        if self.rate == 0.0 {
            output.as_flattened_mut().fill(1.0);
            return;
        }
        self.for_each_factor(seed.get(), output.as_flattened_mut(), |d, m| *d = m);
    }
}

/// Keras' `alpha` and `scale` of SELU as Python (and so Keras' `AlphaDropout`) holds them,
/// in double precision.
const SELU_ALPHA_F64: f64 = 1.673_263_242_354_377_284_817_042_991_671_7;
const SELU_SCALE_F64: f64 = 1.050_700_987_355_480_493_419_334_985_294_6;

/// Keras' `AlphaDropout(rate)` on `N` units, the dropout that keeps [`Selu`](crate::Selu)'s
/// self-normalisation: while training each unit is dropped with probability `rate` and
/// set to SELU's negative saturation `α' = -scale·alpha`, and every value is then mapped
/// by the affine `a·x + b` that restores the mean and variance of a zero-mean,
/// unit-variance input:
/// `a = ((1 - rate)·(1 + rate·α'²))^(-1/2)`, `b = -a·α'·rate` ([`AlphaDropout::affine`]).
/// At inference, the identity.
///
/// The mask is [`Dropout`]'s (same bits per unit for the same seed and rate) and is
/// replayed from an 8-byte seed in backward, where `∂y/∂x` is `a` for a kept unit and 0 for
/// a dropped one.
///
/// ```
/// use microtrain::{AlphaDropout, Selu};
/// let layer = AlphaDropout::<16>::new(0.1)?;
/// let (a, b) = layer.affine();
/// // A zero-mean input keeps a zero mean: the dropped units' `α'` is offset by `b`.
/// let alpha_p = -Selu::SCALE * Selu::ALPHA;
/// assert!((0.1 * (a * alpha_p + b) + 0.9 * b).abs() < 1e-6);
/// assert!(AlphaDropout::<16>::new(1.0).is_err());
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, PartialEq)]
pub struct AlphaDropout<const N: usize, G = Xoshiro128PlusPlus> {
    mask: Dropout<N, G>,
    no_params: NoParams,
}
copy_without_generator_bound!(AlphaDropout);

impl<const N: usize, G> AlphaDropout<N, G> {
    /// Alpha dropout with Keras' `rate` (probability of dropping a unit; 0: the identity).
    ///
    /// # Errors
    /// [`Error::DropoutRate`] for a rate [`Dropout::new`] refuses.
    pub const fn new(rate: f32) -> Result<Self, Error> {
        match Dropout::new(rate) {
            Ok(mask) => Ok(Self {
                mask,
                no_params: NoParams,
            }),
            Err(e) => Err(e),
        }
    }

    /// The drop probability.
    pub const fn rate(&self) -> f32 {
        self.mask.rate()
    }

    /// Keras' `(a, b)`, computed in `f64` from the rate and rounded once, as Keras computes
    /// them in Python (the rate being this `f32`: Keras' `rate=0.1` is the `f64` 0.1, which
    /// can move `a` or `b` by an ulp).
    pub fn affine(&self) -> (f32, f32) {
        let rate = f64::from(self.rate());
        let alpha_p = -SELU_ALPHA_F64 * SELU_SCALE_F64;
        let a = 1.0 / math::sqrt_f64((1.0 - rate) * (1.0 + rate * alpha_p * alpha_p));
        let b = -a * alpha_p * rate;
        (a as f32, b as f32)
    }

    /// The value a dropped unit takes, `a·α' + b` in `f32` as Keras computes it.
    fn dropped_value(&self) -> f32 {
        let (a, b) = self.affine();
        let alpha_p = (-SELU_ALPHA_F64 * SELU_SCALE_F64) as f32;
        a * alpha_p + b
    }
}

impl<const N: usize, G: Rng + SeedableRng> Layer for AlphaDropout<N, G> {
    noise_layer_common!();

    fn forward<R: Rng + ?Sized>(
        &self,
        input: &[[f32; N]],
        output: &mut [[f32; N]],
        seed: &mut MaskSeed,
        rng: &mut R,
    ) {
        let rows = copy_rows(input, output);
        if self.mask.keeps_all() {
            return;
        }
        *seed = MaskSeed::new(rng.next_u64());
        let (a, b) = self.affine();
        let dropped = self.dropped_value();
        let values = output.get_mut(..rows).unwrap_or_default();
        self.mask.map_by_mask(
            seed.get(),
            values.as_flattened_mut(),
            |x| a * x + b,
            |_| dropped,
        );
    }
}

impl<const N: usize, G: Rng + SeedableRng> Hidden for AlphaDropout<N, G> {
    fn derivative_of_output(&self, output: &mut [[f32; N]], seed: &MaskSeed) {
        if self.mask.keeps_all() {
            output.as_flattened_mut().fill(1.0);
            return;
        }
        let (a, _) = self.affine();
        self.mask
            .map_by_mask(seed.get(), output.as_flattened_mut(), |_| a, |_| 0.0);
    }
}
