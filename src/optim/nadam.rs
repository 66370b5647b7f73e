//! Nadam, Keras 3's formulation.

use super::adam::{next_iteration, valid_iterations};
use super::power::{self, powf};
use super::{Optimizer, StateTag};
use crate::error::{Error, positive};
use crate::kernels;
use crate::layers::Parameters;
use crate::math;

/// The momentum schedule's decay, Keras' constant `0.96`.
const DECAY: f32 = 0.96;

/// Nadam as Keras 3 computes it (Dozat, 2016, with Keras' momentum schedule
/// `μ_t = β1·(1 - ½·0.96^t)` and its running product `Π μ`):
///
/// ```text
/// Πμ_t = Πμ_{t-1} · μ_t                       (state, starts at 1)
/// m = m + (g - m)(1 - β1)      v = v + (g² - v)(1 - β2)
/// m̂ = μ_{t+1}·m / (1 - Πμ_t·μ_{t+1}) + (1 - μ_t)·g / (1 - Πμ_t)
/// v̂ = v / (1 - β2^t)
/// w -= m̂·lr / (sqrt(v̂) + ε)
/// ```
///
/// Defaults are Keras': `learning_rate = 1e-3`, `beta_1 = 0.9`, `beta_2 = 0.999`, `epsilon =
/// 1e-7`. Keras computes everything here in `f32`, `1 - β` included (unlike its Adam), and
/// the powers with `powf` as JAX evaluates it (see [`Adam`](super::Adam)): the same
/// operations in the same order give Keras' weights within a few units in the last place
/// (90 % of them bit for bit on `tests/keras_optimizers.rs`' run, the first difference at
/// step 8). New values below `f32::MIN_POSITIVE` are flushed with the SIMD kernels
/// ([`kernels::FLUSHES_SUBNORMALS`]).
///
/// PyTorch's `NAdam` decays the momentum far more slowly, `μ_t = β1·(1 - ½·0.96^(t·ψ))`
/// with `momentum_decay` ψ = 0.004, and its ε is 1e-8.
///
/// The state is the step count and `Πμ` (two values) and two moments per parameter.
///
/// ```
/// use microtrain::{DenseParams, Nadam};
/// let nadam = Nadam::<DenseParams<4, 2>>::new(1e-2)?;
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nadam<P> {
    learning_rate: f32,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    log2_beta_2: f64,
    // Keras' `iterations` and `u_product`.
    counters: [f32; 2],
    m: P,
    v: P,
}

/// The coefficients of one Nadam step, shared by every value.
#[derive(Debug, Clone, Copy)]
struct NadamStep {
    learning_rate: f32,
    u_t: f32,
    u_t_1: f32,
    u_product_t: f32,
    u_product_t_1: f32,
    correction_2: f32,
}

impl<P: Parameters> Nadam<P> {
    /// Keras' defaults.
    pub const fn keras_default() -> Self {
        Self {
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            log2_beta_2: power::log2_of(0.999),
            counters: [0.0, 1.0],
            m: P::ZERO,
            v: P::ZERO,
        }
    }

    /// Keras' defaults with another learning rate.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `learning_rate` is finite and positive.
    pub const fn new(learning_rate: f32) -> Result<Self, Error> {
        match positive(learning_rate, Error::LearningRate { learning_rate }) {
            Ok(learning_rate) => Ok(Self {
                learning_rate,
                ..Self::keras_default()
            }),
            Err(e) => Err(e),
        }
    }

    /// Sets `beta_1` and `beta_2` (`f32`: Keras' Nadam casts them before any arithmetic).
    ///
    /// # Errors
    /// [`Error::Beta`] naming the first beta outside `[0, 1)`.
    pub const fn with_betas(mut self, beta_1: f32, beta_2: f32) -> Result<Self, Error> {
        if !(beta_1 >= 0.0 && beta_1 < 1.0) {
            return Err(Error::Beta { beta: beta_1 });
        }
        if !(beta_2 >= 0.0 && beta_2 < 1.0) {
            return Err(Error::Beta { beta: beta_2 });
        }
        self.beta_1 = beta_1;
        self.beta_2 = beta_2;
        self.log2_beta_2 = power::log2_of(beta_2);
        Ok(self)
    }

    /// Sets `epsilon`.
    ///
    /// # Errors
    /// [`Error::Epsilon`] unless `epsilon` is finite and positive.
    pub const fn with_epsilon(mut self, epsilon: f32) -> Result<Self, Error> {
        match positive(epsilon, Error::Epsilon { epsilon }) {
            Ok(v) => {
                self.epsilon = v;
                Ok(self)
            }
            Err(e) => Err(e),
        }
    }

    /// `μ_t = β1·(1 - ½·0.96^t)`.
    fn momentum_at(&self, t: f32) -> f32 {
        self.beta_1 * (1.0 - 0.5 * powf(DECAY, t))
    }

    /// The next step's coefficients and the new `Πμ`.
    fn next_step(&self, learning_rate: f32) -> (NadamStep, f32) {
        let [iterations, u_product] = self.counters;
        let t = next_iteration(iterations);
        // Keras' `iterations + 2`, counted as the step count is (it stops at 2^24 too).
        let t_1 = next_iteration(t);
        // Keras updates the product first, as `(Πμ · β1) · (1 - ½·0.96^t)`.
        let u_product_t = u_product * self.beta_1 * (1.0 - 0.5 * powf(DECAY, t));
        let u_t = self.momentum_at(t);
        let u_t_1 = self.momentum_at(t_1);
        let step = NadamStep {
            learning_rate,
            u_t,
            u_t_1,
            u_product_t,
            u_product_t_1: u_product_t * u_t_1,
            correction_2: power::one_minus_power(self.log2_beta_2, t),
        };
        (step, u_product_t)
    }

    /// One value's update: the new `(w, m, v)`, each as the active kernel set stores it.
    #[inline(always)]
    fn candidate(&self, s: NadamStep, w: f32, g: f32, m: f32, v: f32) -> [f32; 3] {
        let m = kernels::updated(m + (g - m) * (1.0 - self.beta_1));
        let v = kernels::updated(v + (g * g - v) * (1.0 - self.beta_2));
        let m_hat =
            s.u_t_1 * m / (1.0 - s.u_product_t_1) + (1.0 - s.u_t) * g / (1.0 - s.u_product_t);
        let v_hat = v / s.correction_2;
        let w = kernels::updated(w - m_hat * s.learning_rate / (math::sqrt(v_hat) + self.epsilon));
        [w, m, v]
    }
}

impl<P: Parameters> Optimizer<P> for Nadam<P> {
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P) {
        let (step, u_product) = self.next_step(self.learning_rate);
        let this = *self;
        let moments = self.m.tensors_mut().zip(self.v.tensors_mut());
        for ((w, g), (m, v)) in params.zip(grads.tensors()).zip(moments) {
            let values = w.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut()));
            for ((w, &g), (m, v)) in values {
                [*w, *m, *v] = this.candidate(step, *w, g, *m, *v);
            }
        }
        self.counters = [next_iteration(self.counters[0]), u_product];
    }
    fn learning_rate(&self) -> f32 {
        self.learning_rate
    }
    fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), Error> {
        self.learning_rate = super::checked_learning_rate(learning_rate)?;
        Ok(())
    }
    fn update_is_finite_at<'a, I: Iterator<Item = &'a [f32]>>(
        &self,
        learning_rate: f32,
        params: I,
        grads: &P,
    ) -> bool {
        let (step, u_product) = self.next_step(learning_rate);
        let moments = self.m.tensors().zip(self.v.tensors());
        u_product.is_finite()
            && params
                .zip(grads.tensors())
                .zip(moments)
                .all(|((w, g), (m, v))| {
                    let values = w.iter().zip(g).zip(m.iter().zip(v));
                    values.fold(true, |all, ((&w, &g), (&m, &v))| {
                        all & self
                            .candidate(step, w, g, m, v)
                            .iter()
                            .all(|x| x.is_finite())
                    })
                })
    }
    /// `NADM` with `β1`, `β2`: the momentum product and the moments are theirs.
    fn state_tag(&self) -> StateTag {
        StateTag::new(*b"NADM", [self.beta_1, self.beta_2, 0.0, 0.0])
    }
    const STATE_LEN: usize = 2 + 2 * P::COUNT;
    fn state(&self) -> impl Iterator<Item = &[f32]> {
        core::iter::once(&self.counters[..])
            .chain(self.m.tensors())
            .chain(self.v.tensors())
    }
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        let Self { counters, m, v, .. } = self;
        core::iter::once(&mut counters[..])
            .chain(m.tensors_mut())
            .chain(v.tensors_mut())
    }
    fn state_is_valid(state: impl Iterator<Item = f32>) -> bool {
        // A step count the counter holds, a product of momenta in [0, 1), v >= 0.
        let mut state = state;
        let count = state.next().is_some_and(valid_iterations);
        let product = state.next().is_some_and(|u| (0.0..=1.0).contains(&u));
        count && product && state.skip(P::COUNT).all(|v| v >= 0.0)
    }
}
