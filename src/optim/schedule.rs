//! Learning-rate schedules evaluated per step, as Keras 3's
//! `keras.optimizers.schedules`, and [`Scheduled`], the optimizer that applies one.
//!
//! Each schedule computes in `f32` with Keras' operations in Keras' order (the step and
//! `decay_steps` cast to `f32`, powers as [`powf`](super::power) computes them), so its
//! values are Keras' bit for bit, except [`CosineDecay`], whose cosine is `libm`'s
//! (`tests/keras_optimizers.rs` compares all of them with Keras' values).
//!
//! ```
//! use microtrain::*;
//! // Keras: Adam(learning_rate=ExponentialDecay(1e-2, decay_steps=100, decay_rate=0.5))
//! let schedule = ExponentialDecay::new(1e-2, 100, 0.5, false)?;
//! let adam = Scheduled::new(Adam::<DenseParams<4, 2>>::keras_default(), schedule);
//! assert_eq!(adam.learning_rate(), 1e-2); // the rate of the next step, step 0
//! assert_eq!(schedule.learning_rate(100), 5e-3);
//! let mut adam = adam;
//! assert_eq!(adam.set_learning_rate(1e-3), Err(Error::ScheduledLearningRate));
//! # Ok::<(), microtrain::Error>(())
//! ```

use super::power::powf;
use super::{Optimizer, StateTag};
use crate::error::{Error, non_negative, positive};
use crate::layers::Parameters;
use crate::math;

/// A learning rate as a function of the step, Keras' `LearningRateSchedule`.
pub trait LearningRateSchedule {
    /// The learning rate of the update that follows `step` updates (Keras calls the schedule
    /// with `optimizer.iterations`, which starts at 0).
    fn learning_rate(&self, step: u64) -> f32;
}

/// The step as Keras casts it: `float32(step)`, rounded to nearest.
fn step_f32(step: u64) -> f32 {
    step as f32
}

/// `decay_steps` checked (at least 1) and cast as Keras does, to `f32`.
const fn decay_steps_f32(decay_steps: u64) -> Result<f32, Error> {
    if decay_steps == 0 {
        Err(Error::DecaySteps)
    } else {
        Ok(decay_steps as f32)
    }
}

/// The checked initial learning rate of a schedule: finite and positive.
const fn initial(learning_rate: f32) -> Result<f32, Error> {
    positive(learning_rate, Error::LearningRate { learning_rate })
}

/// Keras' `ExponentialDecay`: `lr0 · decay_rate^(step / decay_steps)`, the exponent
/// floored with `staircase`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialDecay {
    initial_learning_rate: f32,
    decay_steps: f32,
    decay_rate: f32,
    staircase: bool,
}

impl ExponentialDecay {
    /// Keras' `ExponentialDecay(initial_learning_rate, decay_steps, decay_rate, staircase)`.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `initial_learning_rate` is finite and positive;
    /// [`Error::DecaySteps`] for `decay_steps = 0`; [`Error::DecayRate`] unless `decay_rate`
    /// is finite and positive.
    pub const fn new(
        initial_learning_rate: f32,
        decay_steps: u64,
        decay_rate: f32,
        staircase: bool,
    ) -> Result<Self, Error> {
        let initial_learning_rate = match initial(initial_learning_rate) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        let decay_steps = match decay_steps_f32(decay_steps) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        let decay_rate = match positive(decay_rate, Error::DecayRate { decay_rate }) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        Ok(Self {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        })
    }
}

impl LearningRateSchedule for ExponentialDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        let p = step_f32(step) / self.decay_steps;
        let p = if self.staircase { math::floor(p) } else { p };
        self.initial_learning_rate * powf(self.decay_rate, p)
    }
}

/// Keras' `PiecewiseConstantDecay(boundaries, values)`: `values[0]` up to and including
/// step `boundaries[0]`, `values[i]` for `boundaries[i-1] < step ≤ boundaries[i]`, the last
/// value after the last boundary. `N` boundaries and `M = N + 1` values, both fixed at
/// compile time (a mismatch does not compile).
///
/// ```
/// use microtrain::{LearningRateSchedule, PiecewiseConstantDecay};
/// let schedule = PiecewiseConstantDecay::new([100, 200], [1e-2, 1e-3, 1e-4])?;
/// assert_eq!(schedule.learning_rate(100), 1e-2);
/// assert_eq!(schedule.learning_rate(101), 1e-3);
/// assert_eq!(schedule.learning_rate(201), 1e-4);
/// # Ok::<(), microtrain::Error>(())
/// ```
///
/// Keras accepts boundaries in any order and then sums the values of every range a step
/// falls in; here they must increase strictly, so that a step is in exactly one range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PiecewiseConstantDecay<const N: usize, const M: usize> {
    boundaries: [u64; N],
    values: [f32; M],
}

impl<const N: usize, const M: usize> PiecewiseConstantDecay<N, M> {
    const COUNTS_MATCH: () = assert!(
        M == N + 1,
        "PiecewiseConstantDecay: there must be one value more than boundaries"
    );

    /// The schedule with these boundaries (steps) and values (learning rates).
    ///
    /// # Errors
    /// [`Error::Boundaries`] unless the boundaries increase strictly;
    /// [`Error::LearningRate`] naming the first value that is negative or not finite.
    pub const fn new(boundaries: [u64; N], values: [f32; M]) -> Result<Self, Error> {
        let () = Self::COUNTS_MATCH;
        let mut i = 1;
        while i < N {
            #[allow(clippy::indexing_slicing)] // 1 <= i < N
            if boundaries[i.wrapping_sub(1)] >= boundaries[i] {
                return Err(Error::Boundaries);
            }
            i = i.wrapping_add(1);
        }
        let mut j = 0;
        while j < M {
            #[allow(clippy::indexing_slicing)] // j < M
            let learning_rate = values[j];
            if let Err(e) = non_negative(learning_rate, Error::LearningRate { learning_rate }) {
                return Err(e);
            }
            j = j.wrapping_add(1);
        }
        Ok(Self { boundaries, values })
    }
}

impl<const N: usize, const M: usize> LearningRateSchedule for PiecewiseConstantDecay<N, M> {
    fn learning_rate(&self, step: u64) -> f32 {
        // The first range whose upper boundary the step does not pass; past them all, the
        // last value.
        let range = self.boundaries.iter().take_while(|&&b| step > b).count();
        self.values
            .get(range)
            .or(self.values.last())
            .copied()
            .unwrap_or(0.0)
    }
}

/// Keras' `InverseTimeDecay`: `lr0 / (1 + decay_rate · step / decay_steps)`, the quotient
/// floored with `staircase`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InverseTimeDecay {
    initial_learning_rate: f32,
    decay_steps: f32,
    decay_rate: f32,
    staircase: bool,
}

impl InverseTimeDecay {
    /// Keras' `InverseTimeDecay(initial_learning_rate, decay_steps, decay_rate, staircase)`.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `initial_learning_rate` is finite and positive;
    /// [`Error::DecaySteps`] for `decay_steps = 0`; [`Error::DecayRate`] unless `decay_rate`
    /// is finite and non-negative.
    pub const fn new(
        initial_learning_rate: f32,
        decay_steps: u64,
        decay_rate: f32,
        staircase: bool,
    ) -> Result<Self, Error> {
        let initial_learning_rate = match initial(initial_learning_rate) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        let decay_steps = match decay_steps_f32(decay_steps) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        let decay_rate = match non_negative(decay_rate, Error::DecayRate { decay_rate }) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        Ok(Self {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        })
    }
}

impl LearningRateSchedule for InverseTimeDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        let p = step_f32(step) / self.decay_steps;
        let p = if self.staircase { math::floor(p) } else { p };
        self.initial_learning_rate / (1.0 + self.decay_rate * p)
    }
}

/// Keras' `PolynomialDecay`: from `lr0` to `end_learning_rate` over `decay_steps` as
/// `(lr0 - end) · (1 - step/decay_steps)^power + end`, then `end`; with `cycle`, the decay
/// restarts over the next multiple of `decay_steps` instead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolynomialDecay {
    initial_learning_rate: f32,
    decay_steps: f32,
    end_learning_rate: f32,
    power: f32,
    cycle: bool,
}

impl PolynomialDecay {
    /// Keras' `PolynomialDecay(initial_learning_rate, decay_steps)` with its defaults:
    /// `end_learning_rate = 1e-4`, `power = 1`, `cycle = False`.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `initial_learning_rate` is finite and positive;
    /// [`Error::DecaySteps`] for `decay_steps = 0`.
    pub const fn new(initial_learning_rate: f32, decay_steps: u64) -> Result<Self, Error> {
        let initial_learning_rate = match initial(initial_learning_rate) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        let decay_steps = match decay_steps_f32(decay_steps) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        Ok(Self {
            initial_learning_rate,
            decay_steps,
            end_learning_rate: 1e-4,
            power: 1.0,
            cycle: false,
        })
    }

    /// Sets `end_learning_rate`.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless it is finite and non-negative.
    pub const fn with_end_learning_rate(mut self, learning_rate: f32) -> Result<Self, Error> {
        match non_negative(learning_rate, Error::LearningRate { learning_rate }) {
            Ok(v) => {
                self.end_learning_rate = v;
                Ok(self)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets `power`.
    ///
    /// # Errors
    /// [`Error::Power`] unless it is finite and non-negative.
    pub const fn with_power(mut self, power: f32) -> Result<Self, Error> {
        match non_negative(power, Error::Power { power }) {
            Ok(v) => {
                self.power = v;
                Ok(self)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets `cycle`.
    pub const fn with_cycle(mut self, cycle: bool) -> Self {
        self.cycle = cycle;
        self
    }
}

impl LearningRateSchedule for PolynomialDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        let mut step = step_f32(step);
        let mut decay_steps = self.decay_steps;
        if self.cycle {
            // The first multiple of decay_steps at or above the step (1 at step 0).
            let multiplier = if step == 0.0 {
                1.0
            } else {
                math::ceil(step / self.decay_steps)
            };
            decay_steps *= multiplier;
        } else if step > decay_steps {
            step = decay_steps;
        }
        let p = step / decay_steps;
        (self.initial_learning_rate - self.end_learning_rate) * powf(1.0 - p, self.power)
            + self.end_learning_rate
    }
}

/// Keras 3's `CosineDecay`: an optional linear warmup from `lr0` to `warmup_target` over
/// `warmup_steps`, then a cosine decay over `decay_steps` from the warmup's target (or
/// `lr0`) to `alpha` times it:
///
/// ```text
/// warmup:  (target - lr0) · step / warmup_steps + lr0                 step < warmup_steps
/// decay:   target · ((1 - α) · ½(1 + cos(π · s / decay_steps)) + α)   s = min(step - warmup_steps, decay_steps)
/// ```
///
/// The one schedule that is not Keras' bit for bit: JAX's cosine is the C library's
/// `cosf`, this is `libm`'s; the two differ by one unit in the last place on about 1 % of
/// arguments, which moves the rate by at most `2^-25 · target` (`tests/keras_optimizers.rs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineDecay {
    initial_learning_rate: f32,
    decay_steps: f32,
    // f32(α) and f32(1 - α) from the f64 α, as Keras' Python float arithmetic gives them.
    alpha: f32,
    one_minus_alpha: f32,
    // Keras' `warmup_target = None` is no warmup.
    warmup: Option<(f32, f32)>,
}

impl CosineDecay {
    /// Keras' `CosineDecay(initial_learning_rate, decay_steps, alpha)` without warmup;
    /// Keras' default `alpha` is 0 (the rate ends at 0). `alpha` is `f64` like Keras'
    /// Python float, because Keras computes `1 - alpha` in `f64`.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `initial_learning_rate` is finite and non-negative (a
    /// warmup usually starts from 0); [`Error::DecaySteps`] for `decay_steps = 0`;
    /// [`Error::Alpha`] unless `0 ≤ alpha ≤ 1`.
    pub const fn new(
        initial_learning_rate: f32,
        decay_steps: u64,
        alpha: f64,
    ) -> Result<Self, Error> {
        let learning_rate = initial_learning_rate;
        let initial_learning_rate =
            match non_negative(learning_rate, Error::LearningRate { learning_rate }) {
                Ok(v) => v,
                Err(e) => return Err(e),
            };
        let decay_steps = match decay_steps_f32(decay_steps) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        if !(alpha >= 0.0 && alpha <= 1.0) {
            return Err(Error::Alpha {
                alpha: alpha as f32,
            });
        }
        Ok(Self {
            initial_learning_rate,
            decay_steps,
            alpha: alpha as f32,
            one_minus_alpha: (1.0 - alpha) as f32,
            warmup: None,
        })
    }

    /// Keras 3's linear warmup: `warmup_target` reached after `warmup_steps` steps, the
    /// decay starting from it.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `warmup_target` is finite and positive.
    pub const fn with_warmup(
        mut self,
        warmup_target: f32,
        warmup_steps: u64,
    ) -> Result<Self, Error> {
        match initial(warmup_target) {
            Ok(target) => {
                self.warmup = Some((target, warmup_steps as f32));
                Ok(self)
            }
            Err(e) => Err(e),
        }
    }

    fn decay(&self, step: f32, from: f32) -> f32 {
        let completed_fraction = step / self.decay_steps;
        let cosine_decayed = 0.5 * (1.0 + math::cos(core::f32::consts::PI * completed_fraction));
        let decayed = self.one_minus_alpha * cosine_decayed + self.alpha;
        from * decayed
    }
}

impl LearningRateSchedule for CosineDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        let step = step_f32(step);
        let Some((target, warmup_steps)) = self.warmup else {
            let step = if step > self.decay_steps {
                self.decay_steps
            } else {
                step
            };
            return self.decay(step, self.initial_learning_rate);
        };
        let last = self.decay_steps + warmup_steps;
        let step = if step > last { last } else { step };
        if step < warmup_steps {
            let completed_fraction = step / warmup_steps;
            let total_step_delta = target - self.initial_learning_rate;
            total_step_delta * completed_fraction + self.initial_learning_rate
        } else {
            self.decay(step - warmup_steps, target)
        }
    }
}

/// An optimizer whose learning rate a schedule sets before every step (Keras:
/// `Adam(learning_rate=schedule)`). The step counter is part of the optimizer's state
/// (saved and restored with it, two `f32` values ahead of the inner optimizer's), and
/// only a step that is applied advances it: a step the trainer refuses leaves it as it was.
///
/// The schedule is evaluated at the number of steps taken so far (0 for the first), as
/// Keras evaluates it at `optimizer.iterations`. [`Optimizer::learning_rate`] is the rate
/// of the next step; [`Optimizer::set_learning_rate`] is an error, as in Keras (and so
/// `ReduceLROnPlateau` cannot drive a scheduled optimizer, as in Keras).
///
/// A schedule whose rate the inner optimizer refuses (an `ExponentialDecay` with a rate
/// above 1 that has overflowed to infinity) makes [`Optimizer::update_is_finite`] false, so
/// a checked step is refused; without checked updates the previous rate is kept.
///
/// It costs the schedule's arithmetic per step and 8 bytes of state; an optimizer without
/// a schedule is not wrapped and pays nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheduled<O, S> {
    optimizer: O,
    schedule: S,
    // The step count as `low + high · 2^24`, both integer-valued: exact in `f32` state.
    iterations: [f32; 2],
}

/// `2^24`: the low half of the step counter counts below it.
const HALF: f32 = 16_777_216.0;

impl<O, S> Scheduled<O, S> {
    /// `optimizer` with its learning rate set by `schedule` from the next step on.
    pub const fn new(optimizer: O, schedule: S) -> Self {
        Self {
            optimizer,
            schedule,
            iterations: [0.0, 0.0],
        }
    }

    /// The inner optimizer.
    pub const fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// The schedule.
    pub const fn schedule(&self) -> &S {
        &self.schedule
    }

    /// The number of steps taken (Keras' `optimizer.iterations`).
    pub fn iterations(&self) -> u64 {
        let [low, high] = self.iterations;
        (high as u64)
            .saturating_mul(1 << 24)
            .saturating_add(low as u64)
    }

    fn advance(&mut self) {
        let [low, high] = self.iterations;
        self.iterations = if low + 1.0 < HALF {
            [low + 1.0, high]
        } else if high + 1.0 < HALF {
            [0.0, high + 1.0]
        } else {
            [low, high]
        };
    }
}

impl<P: Parameters, O: Optimizer<P>, S: LearningRateSchedule> Optimizer<P> for Scheduled<O, S> {
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P) {
        let rate = self.schedule.learning_rate(self.iterations());
        // A refused rate keeps the previous one (see the type's docs).
        let _ = self.optimizer.set_learning_rate(rate);
        self.optimizer.step(params, grads);
        self.advance();
    }
    fn learning_rate(&self) -> f32 {
        self.schedule.learning_rate(self.iterations())
    }
    fn set_learning_rate(&mut self, _learning_rate: f32) -> Result<(), Error> {
        Err(Error::ScheduledLearningRate)
    }
    /// Only at the scheduled rate, [`Optimizer::learning_rate`]: any other is refused, as the
    /// schedule, not the caller, sets the rate of the next step.
    fn update_is_finite_at<'a, I: Iterator<Item = &'a [f32]>>(
        &self,
        learning_rate: f32,
        params: I,
        grads: &P,
    ) -> bool {
        let rate = self.learning_rate();
        learning_rate == rate
            && rate.is_finite()
            && rate >= 0.0
            && self.optimizer.update_is_finite_at(rate, params, grads)
    }
    /// The inner optimizer's tag with its first letter in lower case (`aDAM` for a
    /// scheduled Adam): the state holds the step counter ahead of the inner state, so it
    /// does not load into the bare optimizer, nor one of another kind.
    fn state_tag(&self) -> StateTag {
        let inner = self.optimizer.state_tag();
        let [first, rest @ ..] = inner.kind();
        let [b, c, d] = rest;
        StateTag::new([first.to_ascii_lowercase(), b, c, d], inner.settings())
    }
    const STATE_LEN: usize = 2 + O::STATE_LEN;
    fn state(&self) -> impl Iterator<Item = &[f32]> {
        core::iter::once(&self.iterations[..]).chain(self.optimizer.state())
    }
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        let Self {
            optimizer,
            iterations,
            ..
        } = self;
        core::iter::once(&mut iterations[..]).chain(optimizer.state_mut())
    }
    fn state_is_valid(state: impl Iterator<Item = f32>) -> bool {
        let mut state = state;
        let counter_valid = state
            .by_ref()
            .take(2)
            .all(|x| (0.0..HALF).contains(&x) && math::floor(x) == x);
        counter_valid && O::state_is_valid(state)
    }
}
