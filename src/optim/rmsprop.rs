//! RMSprop and Adagrad, Keras' formulations.

use super::{Optimizer, StateTag};
use crate::error::{Error, non_negative, positive};
use crate::kernels;
use crate::layers::Parameters;
use crate::math;

/// RMSprop as Keras 3 computes it (Hinton's lecture 6e, with Keras' ε inside the root):
///
/// ```text
/// v = ρ·v + (1 - ρ)·g²
/// centered:  ḡ = ρ·ḡ + (1 - ρ)·g;   d = v - ḡ² + ε      otherwise  d = v + ε
/// Δ = lr·g / sqrt(d)
/// momentum > 0:  μ_buf = momentum·μ_buf + Δ;  w -= μ_buf     otherwise  w -= Δ
/// ```
///
/// Defaults are Keras': `learning_rate = 1e-3`, `rho = 0.9`, `momentum = 0`, `epsilon =
/// 1e-7`, `centered = false`. `rho` is `f64` like Keras' Python float: `1 - ρ` is taken in
/// `f64` and rounded once, as Keras does. The same operations in the same order as Keras'
/// op-by-op arithmetic: the weights are Keras' bit for bit (`tests/keras_optimizers.rs`).
/// With the SIMD kernels every new value below `f32::MIN_POSITIVE` is flushed to zero
/// ([`kernels::FLUSHES_SUBNORMALS`]).
///
/// PyTorch's `RMSprop` has `alpha = 0.99` for ρ, `eps = 1e-8` added to `sqrt(v)` (not
/// inside the root) and its momentum buffer holds `g / sqrt(d)` without the rate.
///
/// The state is three values per parameter (velocity, momentum buffer, average gradient)
/// whatever the options, so that its size is fixed by the type: `3 × P` in the RAM figure.
///
/// ```
/// use microtrain::{DenseParams, RMSprop};
/// let rmsprop = RMSprop::<DenseParams<4, 2>>::keras_default();
/// let centered = RMSprop::<DenseParams<4, 2>>::new(1e-2)?.with_rho(0.8)?.with_centered(true);
/// let heavy = RMSprop::<DenseParams<4, 2>>::new(1e-2)?.with_momentum(0.9)?;
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RMSprop<P> {
    learning_rate: f32,
    rho: f32,
    one_minus_rho: f32,
    momentum: f32,
    epsilon: f32,
    centered: bool,
    velocities: P,
    momentums: P,
    average_gradients: P,
}

impl<P: Parameters> RMSprop<P> {
    /// Keras' defaults.
    pub const fn keras_default() -> Self {
        Self {
            learning_rate: 1e-3,
            rho: 0.9,
            one_minus_rho: (1.0 - 0.9f64) as f32,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            velocities: P::ZERO,
            momentums: P::ZERO,
            average_gradients: P::ZERO,
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

    /// Sets `rho`, the velocity's decay.
    ///
    /// # Errors
    /// [`Error::Beta`] unless `0 ≤ rho < 1` (in `f32`).
    pub const fn with_rho(mut self, rho: f64) -> Result<Self, Error> {
        let as_f32 = rho as f32;
        if !(rho >= 0.0 && as_f32 < 1.0) {
            return Err(Error::Beta { beta: as_f32 });
        }
        self.rho = as_f32;
        self.one_minus_rho = (1.0 - rho) as f32;
        Ok(self)
    }

    /// Sets `momentum` (0: none).
    ///
    /// # Errors
    /// [`Error::Beta`] unless `0 ≤ momentum < 1`.
    pub const fn with_momentum(mut self, momentum: f32) -> Result<Self, Error> {
        if !(momentum >= 0.0 && momentum < 1.0) {
            return Err(Error::Beta { beta: momentum });
        }
        self.momentum = momentum;
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

    /// Sets `centered`: normalise by the variance of the gradient (its mean square minus its
    /// squared mean) rather than by its mean square.
    pub const fn with_centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    /// One value's update at `learning_rate`: the new `(w, velocity, momentum, average)`,
    /// each as the active kernel set stores it.
    #[inline(always)]
    fn candidate(&self, learning_rate: f32, w: f32, g: f32, state: [f32; 3]) -> [f32; 4] {
        let [velocity, momentum, average] = state;
        let velocity = kernels::updated(self.rho * velocity + self.one_minus_rho * (g * g));
        let (average, denominator) = if self.centered {
            let average = kernels::updated(self.rho * average + self.one_minus_rho * g);
            (average, velocity - average * average + self.epsilon)
        } else {
            (average, velocity + self.epsilon)
        };
        let increment = learning_rate * g / math::sqrt(denominator);
        if self.momentum > 0.0 {
            let momentum = kernels::updated(self.momentum * momentum + increment);
            [kernels::updated(w - momentum), velocity, momentum, average]
        } else {
            [kernels::updated(w - increment), velocity, momentum, average]
        }
    }
}

impl<P: Parameters> Optimizer<P> for RMSprop<P> {
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P) {
        let this = *self;
        let state = self
            .velocities
            .tensors_mut()
            .zip(self.momentums.tensors_mut())
            .zip(self.average_gradients.tensors_mut());
        for ((w, g), ((v, m), a)) in params.zip(grads.tensors()).zip(state) {
            let values = w.iter_mut().zip(g).zip(v.iter_mut().zip(m).zip(a));
            for ((w, &g), ((v, m), a)) in values {
                [*w, *v, *m, *a] = this.candidate(this.learning_rate, *w, g, [*v, *m, *a]);
            }
        }
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
        // The exact candidates, computed and not written.
        let state = self
            .velocities
            .tensors()
            .zip(self.momentums.tensors())
            .zip(self.average_gradients.tensors());
        params
            .zip(grads.tensors())
            .zip(state)
            .all(|((w, g), ((v, m), a))| {
                let values = w.iter().zip(g).zip(v.iter().zip(m).zip(a));
                values.fold(true, |all, ((&w, &g), ((&v, &m), &a))| {
                    let new = self.candidate(learning_rate, w, g, [v, m, a]);
                    all & new.iter().all(|x| x.is_finite())
                })
            })
    }
    /// `RMSP` with `ρ`, `momentum` and `centered` (1 or 0): the velocities are averages
    /// under `ρ`, the buffers mean something only with their option on.
    fn state_tag(&self) -> StateTag {
        let centered = if self.centered { 1.0 } else { 0.0 };
        StateTag::new(*b"RMSP", [self.rho, self.momentum, centered, 0.0])
    }
    const STATE_LEN: usize = 3 * P::COUNT;
    fn state(&self) -> impl Iterator<Item = &[f32]> {
        self.velocities
            .tensors()
            .chain(self.momentums.tensors())
            .chain(self.average_gradients.tensors())
    }
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        self.velocities
            .tensors_mut()
            .chain(self.momentums.tensors_mut())
            .chain(self.average_gradients.tensors_mut())
    }
    fn state_is_valid(state: impl Iterator<Item = f32>) -> bool {
        // The velocities are averages of squares.
        state.take(P::COUNT).all(|v| v >= 0.0)
    }
}

/// Adagrad as Keras 3 computes it (Duchi et al., 2011): `a += g²`, `w -= lr·g / sqrt(a +
/// ε)`, the accumulators starting at `initial_accumulator_value`. Defaults are Keras':
/// `learning_rate = 1e-3`, `initial_accumulator_value = 0.1`, `epsilon = 1e-7`. Keras'
/// weights bit for bit (`tests/keras_optimizers.rs`); new values below `f32::MIN_POSITIVE`
/// flushed with the SIMD kernels ([`kernels::FLUSHES_SUBNORMALS`]).
///
/// PyTorch's `Adagrad` starts at 0, adds `eps = 1e-10` to `sqrt(a)` and decays its rate
/// with `lr_decay`.
///
/// Not `const`: the accumulators start filled with `initial_accumulator_value`, which a
/// `const fn` cannot write into a generic parameter type.
///
/// ```
/// use microtrain::{Adagrad, DenseParams};
/// let adagrad = Adagrad::<DenseParams<4, 2>>::new(0.05, 0.1, 1e-7)?;
/// assert!(Adagrad::<DenseParams<4, 2>>::new(0.05, -1.0, 1e-7).is_err());
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adagrad<P> {
    learning_rate: f32,
    initial_accumulator_value: f32,
    epsilon: f32,
    accumulators: P,
}

impl<P: Parameters> Adagrad<P> {
    /// Keras' `Adagrad(learning_rate, initial_accumulator_value, epsilon)`.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `learning_rate` is finite and positive;
    /// [`Error::InitialAccumulator`] unless `initial_accumulator_value` is finite and
    /// non-negative; [`Error::Epsilon`] unless `epsilon` is finite and positive.
    pub fn new(
        learning_rate: f32,
        initial_accumulator_value: f32,
        epsilon: f32,
    ) -> Result<Self, Error> {
        let learning_rate = positive(learning_rate, Error::LearningRate { learning_rate })?;
        let value = initial_accumulator_value;
        let initial_accumulator_value = non_negative(value, Error::InitialAccumulator { value })?;
        let epsilon = positive(epsilon, Error::Epsilon { epsilon })?;
        let mut adagrad = Self {
            learning_rate,
            initial_accumulator_value,
            epsilon,
            accumulators: P::ZERO,
        };
        adagrad.reset();
        Ok(adagrad)
    }

    /// Keras' defaults: `Adagrad(1e-3, 0.1, 1e-7)`.
    pub fn keras_default() -> Self {
        let mut adagrad = Self {
            learning_rate: 1e-3,
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
            accumulators: P::ZERO,
        };
        adagrad.reset();
        adagrad
    }

    /// Restarts the accumulators at `initial_accumulator_value`.
    pub fn reset(&mut self) {
        let value = self.initial_accumulator_value;
        self.accumulators.tensors_mut().for_each(|t| t.fill(value));
    }

    #[inline(always)]
    fn candidate(&self, learning_rate: f32, w: f32, g: f32, a: f32) -> (f32, f32) {
        let a = kernels::updated(a + g * g);
        let w = kernels::updated(w - learning_rate * g / math::sqrt(a + self.epsilon));
        (w, a)
    }
}

impl<P: Parameters> Optimizer<P> for Adagrad<P> {
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P) {
        let this = *self;
        for ((w, g), a) in params
            .zip(grads.tensors())
            .zip(self.accumulators.tensors_mut())
        {
            for ((w, &g), a) in w.iter_mut().zip(g).zip(a.iter_mut()) {
                (*w, *a) = this.candidate(this.learning_rate, *w, g, *a);
            }
        }
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
        let mut all = params.zip(grads.tensors()).zip(self.accumulators.tensors());
        all.all(|((w, g), a)| {
            w.iter().zip(g).zip(a).fold(true, |all, ((&w, &g), &a)| {
                let (w, a) = self.candidate(learning_rate, w, g, a);
                all & w.is_finite() & a.is_finite()
            })
        })
    }
    /// `ADGR`: the accumulators are sums of squares under any setting.
    fn state_tag(&self) -> StateTag {
        StateTag::new(*b"ADGR", [0.0; 4])
    }
    const STATE_LEN: usize = P::COUNT;
    fn state(&self) -> impl Iterator<Item = &[f32]> {
        self.accumulators.tensors()
    }
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        self.accumulators.tensors_mut()
    }
    fn state_is_valid(state: impl Iterator<Item = f32>) -> bool {
        // Sums of squares.
        state.into_iter().all(|a| a >= 0.0)
    }
}
