//! Nadam, Keras 3's formulation.

#[cfg(test)]
use super::adam::LAST_EXACT_STEP;
use super::adam::{next_iteration, valid_iterations};
use super::power::{self, RESEED_STEPS, RunningPower, powf};
use super::{Optimizer, StateTag};
use crate::error::{Error, positive};
use crate::kernels;
use crate::layers::Parameters;
use crate::math;

/// The momentum schedule's decay, Keras' constant `0.96`.
const DECAY: f32 = 0.96;
/// `log2(0.96)` as `powf` computes it.
const LOG2_DECAY: f64 = power::log2_of(DECAY);

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
/// The state is the step count and `Πμ` (two values) and two moments per parameter. The
/// powers (`0.96^t`, `0.96^(t+1)`, `β2^t`) are `powf`'s bits, and a step gets them from the
/// previous step's as [`Adam`](super::Adam) does, for a dozen `f32` operations each instead
/// of `powf`'s `f64` arithmetic (software on a core without a double-precision unit), at
/// the cost of 48 bytes of cached powers and factors.
///
/// ```
/// use microtrain::{DenseParams, Nadam};
/// let nadam = Nadam::<DenseParams<4, 2>>::new(1e-2)?;
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Nadam<P> {
    learning_rate: f32,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    log2_beta_2: f64,
    // Keras' `iterations` and `u_product`.
    counters: [f32; 2],
    // The next step's factors, computed once for both the update check and the update.
    schedule: Schedule,
    m: P,
    v: P,
}

/// Equal settings, counters and moments; the cached schedule is derived from them.
impl<P: PartialEq> PartialEq for Nadam<P> {
    fn eq(&self, other: &Self) -> bool {
        self.learning_rate == other.learning_rate
            && self.beta_1 == other.beta_1
            && self.beta_2 == other.beta_2
            && self.epsilon == other.epsilon
            && self.counters == other.counters
            && self.m == other.m
            && self.v == other.v
    }
}

/// The factors of step `t` that depend on `t` alone: `1 - ½·0.96^t`, `1 - ½·0.96^(t+1)`
/// (with Keras' `t + 1`, which stops counting where `t` does) and `1 - β2^t`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Factors {
    decayed: f32,
    decayed_next: f32,
    correction_2: f32,
}

impl Factors {
    /// Step `t`'s factors, each from `powf` (`f64` arithmetic).
    fn exact(t: f32, log2_beta_2: f64) -> Self {
        Self {
            decayed: half_decayed(t),
            decayed_next: half_decayed(next_iteration(t)),
            correction_2: power::one_minus_power(log2_beta_2, t),
        }
    }
}

/// `1 - ½·0.96^t` from `powf`.
fn half_decayed(t: f32) -> f32 {
    1.0 - 0.5 * powf(DECAY, t)
}

/// [`Factors`] of step `t` (0: none yet) and the running powers `0.96^(t+1)` and `β2^t`
/// they came from. As Adam's corrections: step `t + 1` takes `1 - ½·0.96^(t+1)` from here,
/// and its other two factors from [`RunningPower::next`] where it can prove `powf`'s bits
/// (else from `powf`); a step that does not follow, or every [`RESEED_STEPS`], seeds the
/// powers. Keyed by `t` alone, so a loaded step count never gets another step's factors.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Schedule {
    t: f32,
    factors: Factors,
    powers: [RunningPower; 2],
}

impl Schedule {
    const NONE: Self = Self {
        t: 0.0,
        factors: Factors {
            decayed: 1.0,
            decayed_next: 1.0,
            correction_2: 1.0,
        },
        powers: [RunningPower::ZERO; 2],
    };

    /// The factors of step `t ≥ 1`, from these (of step `t - 1`) where they follow.
    fn at(self, t: f32, log2_beta_2: f64) -> Self {
        if t == self.t {
            return self;
        }
        let t_1 = next_iteration(t);
        let follows = t == self.t + 1.0 && !(t as u32).is_multiple_of(RESEED_STEPS);
        let (decayed, powers) = if follows {
            (
                self.factors.decayed_next,
                self.powers.map(RunningPower::next),
            )
        } else {
            let powers = [
                RunningPower::seeded(LOG2_DECAY, t_1),
                RunningPower::seeded(log2_beta_2, t),
            ];
            (half_decayed(t), powers)
        };
        let [decay, beta_2] = powers;
        let factors = Factors {
            decayed,
            decayed_next: decay.one_minus_half().unwrap_or_else(|| half_decayed(t_1)),
            correction_2: beta_2
                .one_minus()
                .unwrap_or_else(|| power::one_minus_power(log2_beta_2, t)),
        };
        Self { t, factors, powers }
    }
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
            schedule: Schedule::NONE,
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
        self.schedule = Schedule::NONE;
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

    /// Step `t`'s factors, cached by the previous step in the usual case.
    fn factors_at(&self, t: f32) -> Factors {
        if self.schedule.t == t {
            self.schedule.factors
        } else {
            Factors::exact(t, self.log2_beta_2)
        }
    }

    /// The next step's coefficients and the new `Πμ`.
    fn next_step(&self, learning_rate: f32) -> (NadamStep, f32) {
        let [iterations, u_product] = self.counters;
        let t = next_iteration(iterations);
        // `μ_t = β1·(1 - ½·0.96^t)`, and `μ_{t+1}` at Keras' `iterations + 2` (counted as the
        // step count is: it stops at 2^24 too).
        let factors = self.factors_at(t);
        // Keras updates the product first, as `(Πμ · β1) · (1 - ½·0.96^t)`.
        let u_product_t = u_product * self.beta_1 * factors.decayed;
        let u_t = self.beta_1 * factors.decayed;
        let u_t_1 = self.beta_1 * factors.decayed_next;
        let step = NadamStep {
            learning_rate,
            u_t,
            u_t_1,
            u_product_t,
            u_product_t_1: u_product_t * u_t_1,
            correction_2: factors.correction_2,
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
        let iterations = next_iteration(self.counters[0]);
        self.counters = [iterations, u_product];
        self.schedule = self
            .schedule
            .at(next_iteration(iterations), self.log2_beta_2);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::ConstZero;

    /// The factors a step uses are `powf`'s, computed afresh, at every step of runs that
    /// cross reseeds and the underflow of `0.96^t` (subnormal from step 2,140, zero from
    /// 2,547), have their step count loaded out of sequence (as a saved state does) and run
    /// into the counter's end at 2^24, for Keras' betas and others.
    #[test]
    #[cfg_attr(miri, ignore)] // thousands of software powers; nothing endian-specific
    fn cached_factors_are_the_exact_ones() {
        type P = crate::DenseParams<2, 1>;
        for (beta_1, beta_2) in [(0.9, 0.999), (0.5, 0.9999), (0.0, 0.99)] {
            let mut nadam = Nadam::<P>::new(1e-3)
                .unwrap()
                .with_betas(beta_1, beta_2)
                .unwrap();
            let (mut w, g) = (P::ZERO, P::ZERO);
            let mut cached = 0u32;
            for step in 0..8000u32 {
                let loaded = match step {
                    4000 => Some(123_456.0),
                    6000 => Some(LAST_EXACT_STEP - 1500.0),
                    _ => None,
                };
                if let Some(count) = loaded {
                    nadam.state_mut().next().unwrap()[0] = count;
                }
                let t = next_iteration(nadam.counters[0]);
                let exact = Factors::exact(t, nadam.log2_beta_2);
                let used = nadam.factors_at(t);
                cached += u32::from(nadam.schedule.t == t);
                let bits =
                    |f: Factors| [f.decayed, f.decayed_next, f.correction_2].map(f32::to_bits);
                assert_eq!(bits(used), bits(exact), "({beta_1}, {beta_2}), t {t}");
                nadam.step(w.tensors_mut(), &g);
            }
            assert_eq!(nadam.counters[0], LAST_EXACT_STEP);
            // Only the first step and the two loads find nothing cached.
            assert_eq!(cached, 8000 - 3);
        }
    }
}
