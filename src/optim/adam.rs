//! Adam (Keras' formulation) and AdamW (PyTorch's).

use super::power::{self, RunningPower};
use super::{DecayedTensors, Optimizer, StateTag, listed, lockstep};
use crate::error::{Error, non_negative, positive};
use crate::kernels::{self, AdamStep};
use crate::layers::Parameters;
use crate::math;

/// Adam as Keras computes it (Kingma & Ba, 2015, with the paper's "ε-hat" placement):
///
/// ```text
/// m = m + (g - m)(1 - β1)        v = v + (g² - v)(1 - β2)
/// lr_t = lr · sqrt(1 - β2^t) / (1 - β1^t)
/// w -= lr_t · m / (sqrt(v) + ε)
/// ```
///
/// in Keras' `f32` arithmetic: the betas are `f64` (Keras' are Python floats), the moments'
/// rates `1 - β` are computed in `f64` and rounded once (`f32(1 - 0.999)`, not
/// `1 - f32(0.999)`, which is 1.3e-5 smaller), and `β^t` is `powf(f32(β), f32(t))` as JAX
/// evaluates it (a port of glibc's algorithm; the `optim::power` module says why it matters), with
/// `t = iterations + 1`. After 20 steps the weights are Keras' bit for bit
/// (`tests/keras_optimizers.rs`). A step gets those powers from the previous step's for a
/// couple of dozen `f32` operations, and only about one step in a hundred (and one in a
/// thousand to reseed) runs the `f64` arithmetic of `powf` itself, which a core without a
/// double-precision unit does in software: the same bits either way, at the cost of
/// 44 bytes of cached powers and corrections.
///
/// With the SIMD kernels every new weight and moment below `f32::MIN_POSITIVE` in
/// magnitude is flushed to zero ([`kernels::FLUSHES_SUBNORMALS`]), as XLA's CPU kernels do,
/// and no product of the update is left to round to a subnormal
/// ([`kernels::flushed_adam_candidate`]).
///
/// The step count is the state's first value, an integer-valued `f32` like Keras'
/// `float32(iterations + 1)`: exact up to 2^24 steps, where it stops counting (the powers
/// of any β below 0.999999 are then far below the `2^-26` where the corrections are 1).
///
/// PyTorch's `Adam` adds ε to `sqrt(v / (1 - β2^t))` instead, so Keras' ε equals PyTorch's
/// ε·sqrt(1 - β2^t); its default ε is 1e-8 against Keras' 1e-7.
///
/// ```
/// use microtrain::{Adam, DenseParams};
/// let adam = Adam::<DenseParams<4, 2>>::keras_default(); // lr 1e-3, β 0.9/0.999, ε 1e-7
/// let tuned = Adam::<DenseParams<4, 2>>::new(3e-4)?.with_betas(0.9, 0.99)?;
/// assert!(Adam::<DenseParams<4, 2>>::new(0.0).is_err());
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Adam<P> {
    learning_rate: f32,
    betas: Betas,
    epsilon: f32,
    // Keras' `iterations`, kept as an array so the optimizer state is a list of f32 tensors.
    iterations: [f32; 1],
    // The bias corrections of one step, computed once for both the update check and the
    // update (see `Corrections`).
    corrections: Corrections,
    m: P,
    v: P,
}

/// Equal settings, step count and moments; the cached corrections are derived from them.
impl<P: PartialEq> PartialEq for Adam<P> {
    fn eq(&self, other: &Self) -> bool {
        self.learning_rate == other.learning_rate
            && self.betas == other.betas
            && self.epsilon == other.epsilon
            && self.iterations == other.iterations
            && self.m == other.m
            && self.v == other.v
    }
}

/// `(1 - β1^t, sqrt(1 - β2^t))` for the step `t` they were computed for (0: none yet), and
/// the powers they came from. Each step computes those of the next from its own powers by
/// [`RunningPower::next`] (a dozen `f32` operations per beta), which give `powf`'s bits or
/// say they cannot, about once in a hundred steps; only then, and at a seed (the first
/// step, a step count that does not follow the cached one, every
/// [`power::RESEED_STEPS`] steps), is `f64` arithmetic run, which a microcontroller without
/// a double-precision unit does in software (about 750 instructions per `powf` on a
/// Cortex-M4F). The update check and the update of one step share the result. Keyed by `t`
/// alone, so a step count loaded from a saved state is never given another step's
/// corrections; nothing of it is saved (it follows from `t` and the betas).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Corrections {
    t: f32,
    values: (f32, f32),
    powers: [RunningPower; 2],
}

impl Corrections {
    const NONE: Self = Self {
        t: 0.0,
        values: (1.0, 1.0),
        powers: [RunningPower::ZERO; 2],
    };

    /// The corrections of step `t ≥ 1`, from these (of step `t - 1`) where they follow.
    fn at(self, t: f32, betas: &Betas) -> Self {
        if t == self.t {
            return self;
        }
        let logs = [betas.log2_1, betas.log2_2];
        let follows = t == self.t + 1.0 && !(t as u32).is_multiple_of(power::RESEED_STEPS);
        let powers = if follows {
            self.powers.map(RunningPower::next)
        } else {
            logs.map(|log2| RunningPower::seeded(log2, t))
        };
        let correction = |power: RunningPower, log2| {
            power
                .one_minus()
                .unwrap_or_else(|| power::one_minus_power(log2, t))
        };
        let [p1, p2] = powers;
        let [l1, l2] = logs;
        Self {
            t,
            values: (correction(p1, l1), math::sqrt(correction(p2, l2))),
            powers,
        }
    }
}

/// The largest step count [`Adam`]'s `f32` counter holds exactly.
pub(crate) const LAST_EXACT_STEP: f32 = 16_777_216.0;

/// Adam's betas in the forms its arithmetic uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Betas {
    /// `f32(β1)`, `f32(β2)`: the bases of the powers.
    pub(crate) beta_1: f32,
    pub(crate) beta_2: f32,
    /// `f32(1 - β)`, the difference taken in `f64`: the moments' rates.
    pub(crate) rate_1: f32,
    pub(crate) rate_2: f32,
    /// `log2(f32(β))` as `powf` computes it.
    log2_1: f64,
    log2_2: f64,
}

impl Betas {
    /// [`Betas::KERAS`], built from its fields. A constructor that reads the constant as a
    /// whole copies it from flash with `memcpy`, and LLVM then built the firmware's trainer
    /// (gradients, moments and all: 2.6 KB for the Iris model) on the stack before copying
    /// it into its `static`; scalar constants are stored in place (`measure.sh`: stack peak
    /// 3,584 → 1,104 B).
    pub(crate) const fn keras() -> Self {
        Self {
            beta_1: const { Self::KERAS.beta_1 },
            beta_2: const { Self::KERAS.beta_2 },
            rate_1: const { Self::KERAS.rate_1 },
            rate_2: const { Self::KERAS.rate_2 },
            log2_1: const { Self::KERAS.log2_1 },
            log2_2: const { Self::KERAS.log2_2 },
        }
    }

    /// Keras' betas, 0.9 and 0.999.
    pub(crate) const KERAS: Self = match Self::new(0.9, 0.999) {
        Ok(betas) => betas,
        Err(_) => Self::ZERO,
    };
    const ZERO: Self = Self {
        beta_1: 0.0,
        beta_2: 0.0,
        rate_1: 1.0,
        rate_2: 1.0,
        log2_1: f64::NEG_INFINITY,
        log2_2: f64::NEG_INFINITY,
    };

    /// # Errors
    /// [`Error::Beta`] naming the first beta (as `f32`) outside `[0, 1)`, or whose `f32`
    /// rounding is 1 (its powers would never decay: the bias correction would divide by 0).
    pub(crate) const fn new(beta_1: f64, beta_2: f64) -> Result<Self, Error> {
        let (b1, b2) = (beta_1 as f32, beta_2 as f32);
        if !(beta_1 >= 0.0 && b1 < 1.0) {
            return Err(Error::Beta { beta: b1 });
        }
        if !(beta_2 >= 0.0 && b2 < 1.0) {
            return Err(Error::Beta { beta: b2 });
        }
        Ok(Self {
            beta_1: b1,
            beta_2: b2,
            rate_1: (1.0 - beta_1) as f32,
            rate_2: (1.0 - beta_2) as f32,
            log2_1: power::log2_of(b1),
            log2_2: power::log2_of(b2),
        })
    }

    /// The bias corrections `(1 - β1^t, 1 - β2^t)` of step `t ≥ 1`.
    pub(crate) fn corrections(&self, t: f32) -> (f32, f32) {
        (
            power::one_minus_power(self.log2_1, t),
            power::one_minus_power(self.log2_2, t),
        )
    }
}

/// The next step's `t = iterations + 1`, counted in `f32` and stopping at
/// [`LAST_EXACT_STEP`].
pub(crate) fn next_iteration(iterations: f32) -> f32 {
    if iterations < LAST_EXACT_STEP {
        iterations + 1.0
    } else {
        LAST_EXACT_STEP
    }
}

/// True if a saved step count is one the counter can hold: an integer in
/// `[0, LAST_EXACT_STEP]`.
pub(crate) fn valid_iterations(iterations: f32) -> bool {
    (0.0..=LAST_EXACT_STEP).contains(&iterations) && math::floor(iterations) == iterations
}

impl<P: Parameters> Adam<P> {
    /// Keras' defaults: `learning_rate = 1e-3`, `beta_1 = 0.9`, `beta_2 = 0.999`,
    /// `epsilon = 1e-7`.
    pub const fn keras_default() -> Self {
        Self {
            learning_rate: 1e-3,
            betas: Betas::keras(),
            epsilon: 1e-7,
            iterations: [0.0],
            corrections: Corrections::NONE,
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

    /// Sets `beta_1` and `beta_2`, as `f64` like Keras' Python floats: `1 - β` is taken in
    /// `f64` and rounded to `f32` once, the powers are those of `f32(β)`.
    ///
    /// # Errors
    /// [`Error::Beta`] naming the first beta outside `[0, 1)` (or so close to 1 that its
    /// `f32` is 1).
    pub const fn with_betas(mut self, beta_1: f64, beta_2: f64) -> Result<Self, Error> {
        self.betas = match Betas::new(beta_1, beta_2) {
            Ok(betas) => betas,
            Err(e) => return Err(e),
        };
        self.corrections = Corrections::NONE;
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

    /// The number of steps taken (Keras' `optimizer.iterations`).
    pub fn iterations(&self) -> f32 {
        self.iterations[0]
    }

    /// Forgets the moments and the step count, as a freshly built optimizer.
    pub fn reset(&mut self) {
        self.iterations = [0.0];
        self.m.fill_zero();
        self.v.fill_zero();
    }

    /// Counts the step, and computes the next step's corrections.
    fn advance(&mut self) {
        self.iterations = [next_iteration(self.iterations[0])];
        let t = next_iteration(self.iterations[0]);
        self.corrections = self.corrections.at(t, &self.betas);
    }

    /// `(1 - β1^t, sqrt(1 - β2^t))` of step `t`, cached by the previous step in the usual
    /// case (the root too: the update check and the update both need it).
    fn corrections_at(&self, t: f32) -> (f32, f32) {
        if self.corrections.t == t {
            self.corrections.values
        } else {
            let (c1, c2) = self.betas.corrections(t);
            (c1, math::sqrt(c2))
        }
    }

    /// The coefficients of the next step, Keras' ε placement (`ε_scale = 1`) or PyTorch's
    /// (`ε_scale = sqrt(1 - β2^t)`, see [`AdamW`]).
    fn next_step(&self, pytorch_epsilon: bool) -> AdamStep {
        self.next_step_at(self.learning_rate, pytorch_epsilon)
    }

    /// [`Adam::next_step`] at another learning rate.
    fn next_step_at(&self, learning_rate: f32, pytorch_epsilon: bool) -> AdamStep {
        let t = next_iteration(self.iterations[0]);
        let (correction_1, root_2) = self.corrections_at(t);
        AdamStep {
            learning_rate: learning_rate * root_2 / correction_1,
            rate_1: self.betas.rate_1,
            rate_2: self.betas.rate_2,
            epsilon: if pytorch_epsilon {
                self.epsilon * root_2
            } else {
                self.epsilon
            },
        }
    }

    /// The check of a step whose weights are first multiplied by a factor, one per tensor
    /// (1 for Adam, AdamW's `1 - lr·wd` for a decayed tensor): `params` yields each tensor
    /// with its factor.
    fn update_is_finite_with<'a, I: Iterator<Item = (&'a [f32], f32)>>(
        &self,
        params: I,
        grads: &P,
        step: AdamStep,
    ) -> bool {
        let (m, v) = (self.m.tensors(), self.v.tensors());
        lockstep(
            listed::<P>(),
            params,
            grads.tensors(),
            m,
            v,
            |(w, keep), g, m, v| {
                let quick = if kernels::SIMD_ACTIVE {
                    // Integer maxima, which SSE2 lacks: with AVX2 where the CPU has it.
                    kernels::vectorized(FiniteMaxima((w, g, m, v), step, keep))
                } else {
                    surely_finite_sums(w, g, m, v, step, keep)
                };
                // Only a tensor that fails the quick test is looked at value by value.
                quick || exactly_finite(w, g, m, v, step, keep)
            },
        )
    }
}

/// Tensors of every value `w·keep - (lr_t·m')/(sqrt(v') + ε)` (with `m'`, `v'` Adam's new
/// moments, and the product before the quotient, as [`kernels::adam_weight`] computes it)
/// are finite when, with `s = max(1, lr_t, lr_t/ε)`, `|w·keep| + s·(|m| + |g|)` and
/// `g² + v` stay below `f32::MAX / 4` and `v ≥ 0`. The proof, value by value, with `u =
/// 2⁻²⁴` the unit roundoff:
/// - `m' = m + (g - m)(1 - β1)`: `|g - m| ≤ |m| + |g| < MAX/4` (`s ≥ 1`), and the exact
///   `m'` is a convex combination of `m` and `g`, so `|m'| ≤ (|m| + |g|)(1 + u)³`.
/// - `v' = v + (g² - v)(1 - β2)` lies between `v ≥ 0` and `g²` up to the same factor, below
///   `MAX/4·(1 + u)³`, and is `≥ 0`, so `sqrt(v') + ε ≥ ε` (rounding is monotone).
/// - The product `lr_t·m'` is at most `lr_t·(|m| + |g|)(1 + u)⁴ ≤ s·(|m| + |g|)(1 + u)⁴`:
///   this is the intermediate the bound `lr_t/ε` alone missed (lr 1e35, ε 1e6 overflowed
///   it while the quotient would have been finite).
/// - The quotient by `sqrt(v') + ε ≥ ε` is at most `lr_t·|m'|/ε·(1 + u)`, again at most
///   `s·(|m| + |g|)(1 + u)⁵`; if `ε ≥ 1` it is at most the product itself.
/// - The new weight is at most `(|w·keep| + s·(|m| + |g|))(1 + u)⁶ < MAX/4·(1 + u)⁶ < MAX`.
///
/// The bound and `s` are computed in `f32` too; their own roundings (a dozen factors of
/// `1 + u`) are what the quarter of `f32::MAX` leaves room for. For the usual `ε < 1 ≤
/// lr_t/ε`, `s = lr_t/ε`: the test passes what it passed before the product was counted.
/// Two sufficient tests of that, each checked against the exact test (a tensor that fails
/// either is checked exactly), chosen for the kernel set's machine.
///
/// This one bounds every magnitude by the tensor's largest, found as the largest bit
/// pattern: with the sign bit cleared, the order of the patterns is the order of the
/// values, and every NaN lies above infinity. An integer maximum is associative, so the
/// loop vectorizes into three `and`s and four maxima per vector and no float work, where
/// the test value by value took about a dozen float operations. On x86_64 with AVX-512
/// that was 11–27 % faster with the state in L1 and the same once L2 bounds it
/// (`adam/update_is_finite` in `benches/training.rs`).
#[inline(always)]
fn surely_finite_maxima(
    w: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    step: AdamStep,
    keep: f32,
) -> bool {
    const MAGNITUDE: u32 = 0x7fff_ffff;
    let steepness = steepness(step);
    let values = w.iter().zip(g).zip(m.iter().zip(v));
    // `v` keeps its sign bit, which puts any negative `v` above every magnitude.
    let [w, g, m, v] = values.fold([0u32; 4], |[mw, mg, mm, mv], ((w, g), (m, v))| {
        [
            mw.max(w.to_bits() & MAGNITUDE),
            mg.max(g.to_bits() & MAGNITUDE),
            mm.max(m.to_bits() & MAGNITUDE),
            mv.max(v.to_bits()),
        ]
    });
    // `-0.0` also sets the sign bit: such a tensor is checked exactly, which is still right.
    let negative_v = v > MAGNITUDE;
    let [w, g, m, v] = [w, g, m, v].map(f32::from_bits);
    let bound = math::abs(keep) * w + steepness * (m + g);
    // A NaN fails both comparisons; the quartered bounds cover the roundings.
    bound < 0.25 * f32::MAX && g * g + v < 0.25 * f32::MAX && !negative_v
}

/// [`surely_finite_maxima`]'s operands, as work that [`kernels::vectorized`] may compile
/// for AVX2.
struct FiniteMaxima<'a>(kernels::AdamOperandsRef<'a>, AdamStep, f32);

impl kernels::Work for FiniteMaxima<'_> {
    type Output = bool;
    #[inline(always)]
    fn run(self) -> bool {
        let Self((w, g, m, v), step, keep) = self;
        surely_finite_maxima(w, g, m, v, step, keep)
    }
}

/// The test of [`surely_finite_maxima`] on the whole tensor at once, from the sums of `w²`,
/// `g²`, `m²` and `v²` (a rounded sum of non-negative terms is at least each term, so the
/// square root of each sum bounds every magnitude it adds up, up to a rounding the
/// quartered bound covers) and the union of the sign bits of `v`. One multiply-add per
/// value and two integer operations for the signs: on a machine without vector units
/// (Cortex-M, which has no scalar integer maximum either) this is where the check's cost
/// goes. A NaN or an infinity anywhere, or a sum that overflows, fails the
/// comparisons, and the tensor is then checked exactly.
fn surely_finite_sums(
    w: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    step: AdamStep,
    keep: f32,
) -> bool {
    let steepness = steepness(step);
    let values = w.iter().zip(g).zip(m.iter().zip(v));
    let ([w, g, m, v], signs) = values.fold(
        ([0.0f32; 4], 0u32),
        |([sw, sg, sm, sv], signs), ((&w, &g), (&m, &v))| {
            (
                [sw + w * w, sg + g * g, sm + m * m, sv + v * v],
                signs | v.to_bits(),
            )
        },
    );
    // `-0.0` also sets the sign bit: such a tensor is checked exactly, which is still right.
    let negative_v = signs >> 31 != 0;
    let (w, m, v) = (math::sqrt(w), math::sqrt(m), math::sqrt(v));
    let bound = math::abs(keep) * w + steepness * (m + math::sqrt(g));
    bound < 0.25 * f32::MAX && g + v < 0.25 * f32::MAX && !negative_v
}

/// `s = max(1, lr_t, lr_t/ε)` of [`surely_finite_maxima`]'s proof: a bound on the factor
/// from `|m| + |g|` to the moment (`1`), the product (`lr_t`) and the quotient (`lr_t/ε`).
fn steepness(step: AdamStep) -> f32 {
    let quotient = step.learning_rate / step.epsilon;
    // `>` rather than `f32::max`: a NaN (impossible from validated settings) stays NaN and
    // fails the bound.
    let larger = |a: f32, b: f32| if b > a { b } else { a };
    larger(larger(quotient, step.learning_rate), 1.0)
}

/// True if every value's exact Adam candidate is finite, computed as the active kernel set
/// computes it (with its flushes of subnormal moments, which the quick tests' proof allows
/// for: it only needs `v' ≥ 0`).
fn exactly_finite(w: &[f32], g: &[f32], m: &[f32], v: &[f32], step: AdamStep, keep: f32) -> bool {
    let values = w.iter().zip(g).zip(m.iter().zip(v));
    values.fold(true, |all, ((&w, &g), (&m, &v))| {
        let (w, m, v) = kernels::active_candidate(w * keep, g, m, v, step);
        all & w.is_finite() & m.is_finite() & v.is_finite()
    })
}

impl<P: Parameters> Optimizer<P> for Adam<P> {
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P) {
        let step = self.next_step(false);
        self.advance();
        let (m, v) = (self.m.tensors_mut(), self.v.tensors_mut());
        lockstep(
            listed::<P>(),
            params,
            grads.tensors(),
            m,
            v,
            |w, g, m, v| {
                kernels::adam_update(w, g, m, v, step);
                true
            },
        );
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
        let step = self.next_step_at(learning_rate, false);
        self.update_is_finite_with(params.map(|w| (w, 1.0)), grads, step)
    }
    const STATE_LEN: usize = 1 + 2 * P::COUNT;
    fn state_is_valid(state: impl Iterator<Item = f32>) -> bool {
        // A step count the counter can hold; the second moments are averages of squares.
        let mut state = state;
        let count_valid = state.next().is_some_and(valid_iterations);
        let v_valid = state.skip(P::COUNT).all(|v| v >= 0.0);
        count_valid && v_valid
    }
    /// `ADAM` with `f32(β1)`, `f32(β2)`: the saved moments are averages under them; the
    /// learning rate and ε may change between runs.
    fn state_tag(&self) -> StateTag {
        StateTag::new(*b"ADAM", [self.betas.beta_1, self.betas.beta_2, 0.0, 0.0])
    }
    fn state(&self) -> impl Iterator<Item = &[f32]> {
        core::iter::once(&self.iterations[..])
            .chain(self.m.tensors())
            .chain(self.v.tensors())
    }
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        let Self {
            iterations, m, v, ..
        } = self;
        core::iter::once(&mut iterations[..])
            .chain(m.tensors_mut())
            .chain(v.tensors_mut())
    }
}

/// AdamW as PyTorch computes it (Loshchilov & Hutter, 2019): decoupled weight decay
/// `w -= lr·wd·w`, then an Adam step with ε added to the bias-corrected `sqrt(v̂)`.
/// Defaults are PyTorch's: `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`,
/// `weight_decay = 1e-2`. The decay applies to every parameter, biases included, as in
/// PyTorch's default parameter group, unless [`AdamW::with_decayed`] leaves some out (the
/// biases, as a PyTorch user does with a second parameter group of `weight_decay = 0`).
///
/// Decoupled decay is not an L2 penalty: with Adam, `l2(λ)` is rescaled by the adaptive
/// step while decoupled decay is not. Keras' `AdamW` decays as `w - w·wd·lr` before a
/// Keras Adam step (ε added to `sqrt(v)`): that is [`WeightDecay`](super::WeightDecay)
/// over [`Adam`].
///
/// ```
/// use microtrain::{AdamW, DecayedTensors, DenseParams, Error};
/// // PyTorch: AdamW([{"params": kernels}, {"params": biases, "weight_decay": 0}]).
/// const ADAMW: Result<AdamW<DenseParams<4, 2>>, Error> = match AdamW::new(1e-3, 1e-2) {
///     Ok(adamw) => Ok(adamw.with_decayed(DecayedTensors::EXCEPT_BIASES)),
///     Err(e) => Err(e),
/// };
/// assert!(ADAMW.is_ok());
/// assert!(AdamW::<DenseParams<4, 2>>::new(1e-3, f32::NAN).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamW<P> {
    adam: Adam<P>,
    weight_decay: f32,
    decayed: DecayedTensors,
}

impl<P: Parameters> AdamW<P> {
    /// PyTorch's defaults with the given learning rate and weight decay.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `learning_rate` is finite and positive;
    /// [`Error::WeightDecay`] if `weight_decay` is negative or not finite.
    pub const fn new(learning_rate: f32, weight_decay: f32) -> Result<Self, Error> {
        let adam = match Adam::new(learning_rate) {
            Ok(adam) => adam,
            Err(e) => return Err(e),
        };
        let adam = match adam.with_epsilon(1e-8) {
            Ok(adam) => adam,
            Err(e) => return Err(e),
        };
        match non_negative(weight_decay, Error::WeightDecay { weight_decay }) {
            Ok(weight_decay) => Ok(Self {
                adam,
                weight_decay,
                decayed: DecayedTensors::ALL,
            }),
            Err(e) => Err(e),
        }
    }

    /// Sets `beta_1` and `beta_2` (PyTorch's `betas`), as [`Adam::with_betas`].
    ///
    /// # Errors
    /// [`Error::Beta`] naming the first beta outside `[0, 1)`.
    pub const fn with_betas(mut self, beta_1: f64, beta_2: f64) -> Result<Self, Error> {
        self.adam = match self.adam.with_betas(beta_1, beta_2) {
            Ok(adam) => adam,
            Err(e) => return Err(e),
        };
        Ok(self)
    }
}

impl<P: Parameters> AdamW<P> {
    /// Sets which tensors decay (every one by default); the others take a plain step.
    pub const fn with_decayed(mut self, decayed: DecayedTensors) -> Self {
        self.decayed = decayed;
        self
    }

    /// Each tensor with the factor decoupled decay multiplies it by at `learning_rate`:
    /// `1 - lr·wd` if it decays, else 1.
    fn with_keeps<'a, T: 'a>(
        &self,
        learning_rate: f32,
        params: impl Iterator<Item = T> + 'a,
        grads: &'a P,
    ) -> impl Iterator<Item = (T, f32)> + 'a {
        let keep = 1.0 - learning_rate * self.weight_decay;
        let keeps = self
            .decayed
            .of(grads)
            .map(move |decays| if decays { keep } else { 1.0 });
        params.zip(keeps)
    }
}

impl<P: Parameters> Optimizer<P> for AdamW<P> {
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P) {
        let params = self.with_keeps(self.adam.learning_rate, params, grads);
        let adam = &mut self.adam;
        // PyTorch: w -= lr/c1 · m / (sqrt(v)/sqrt(c2) + ε)
        //        = w -= (lr·sqrt(c2)/c1) · m / (sqrt(v) + ε·sqrt(c2)).
        let step = adam.next_step(true);
        adam.advance();
        let (m, v) = (adam.m.tensors_mut(), adam.v.tensors_mut());
        lockstep(
            listed::<P>(),
            params,
            grads.tensors(),
            m,
            v,
            |(w, keep), g, m, v| {
                // A factor of 1 (a tensor left out, or no decay) is skipped: `x·1` is `x`.
                if keep != 1.0 {
                    w.iter_mut().for_each(|x| *x *= keep);
                }
                kernels::adam_update(w, g, m, v, step);
                true
            },
        );
    }
    fn learning_rate(&self) -> f32 {
        self.adam.learning_rate
    }
    fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), Error> {
        self.adam.learning_rate = super::checked_learning_rate(learning_rate)?;
        Ok(())
    }
    fn update_is_finite_at<'a, I: Iterator<Item = &'a [f32]>>(
        &self,
        learning_rate: f32,
        params: I,
        grads: &P,
    ) -> bool {
        let step = self.adam.next_step_at(learning_rate, true);
        let params = self.with_keeps(learning_rate, params, grads);
        self.adam.update_is_finite_with(params, grads, step)
    }
    const STATE_LEN: usize = <Adam<P> as Optimizer<P>>::STATE_LEN;
    fn state_is_valid(state: impl Iterator<Item = f32>) -> bool {
        <Adam<P> as Optimizer<P>>::state_is_valid(state)
    }
    /// `ADMW` (PyTorch's ε placement and decoupled decay) with `β1`, `β2`, as [`Adam`]; the
    /// learning rate, ε and the weight decay may change between runs.
    fn state_tag(&self) -> StateTag {
        StateTag::new(
            *b"ADMW",
            [self.adam.betas.beta_1, self.adam.betas.beta_2, 0.0, 0.0],
        )
    }
    fn state(&self) -> impl Iterator<Item = &[f32]> {
        self.adam.state()
    }
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        self.adam.state_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::unit_f32;
    use rand_core::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro128PlusPlus;

    const EDGES: [f32; 12] = [
        0.0,
        -0.0,
        1e-3,
        -2.5,
        1e19,
        -3e19,
        1e37,
        f32::MAX,
        -f32::MAX,
        f32::INFINITY,
        f32::NAN,
        -1e-3,
    ];

    /// The corrections a step uses are `powf`'s, computed afresh, at every step of a run
    /// that crosses reseeds, is reset, and has its step count loaded out of sequence (as a
    /// saved state does), for Keras' betas and others.
    #[test]
    #[cfg_attr(miri, ignore)] // thousands of software powers; nothing endian-specific
    fn cached_corrections_are_the_exact_ones() {
        use crate::layers::ConstZero;
        type P = crate::DenseParams<2, 1>;
        let fresh = |adam: &Adam<P>, t: f32| {
            let (c1, c2) = adam.betas.corrections(t);
            (c1.to_bits(), math::sqrt(c2).to_bits())
        };
        for betas in [(0.9, 0.999), (0.5, 0.9999), (0.0, 0.99)] {
            let mut adam = Adam::<P>::new(1e-3)
                .unwrap()
                .with_betas(betas.0, betas.1)
                .unwrap();
            let (mut w, g) = (P::ZERO, P::ZERO);
            for step in 0..5000u32 {
                if step == 2500 {
                    adam.reset();
                }
                if step == 3000 {
                    // A step count loaded from a saved state.
                    adam.state_mut().next().unwrap()[0] = 123_456.0;
                }
                let t = next_iteration(adam.iterations());
                let (c1, root_2) = adam.corrections_at(t);
                assert_eq!(
                    (c1.to_bits(), root_2.to_bits()),
                    fresh(&adam, t),
                    "{betas:?}, t {t}"
                );
                adam.step(w.tensors_mut(), &g);
            }
        }
    }

    /// Both quick tests are sound (a tensor they pass has only finite candidates, whichever
    /// kernel set this build uses), and not empty (they pass ordinary tensors), on tensors
    /// of 37 values (vectors of every width and a tail) with up to three values moved to
    /// an edge.
    #[test]
    fn quick_update_tests_pass_only_finite_updates() {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
        let mut passed = [0u32; 2];
        for case in 0..6000 {
            // ε 1e6 with lr 1e35: the product `lr_t·m` overflows before the quotient.
            let step = AdamStep {
                learning_rate: [1e-3, 0.5, 1e30, 1e35][case % 4],
                rate_1: 0.1,
                rate_2: 0.001,
                epsilon: [1e-7, 1e6][case / 4 % 2],
            };
            let keep = [1.0, 0.99, -0.5][case / 8 % 3];
            let mut values = [[0.0f32; 37]; 4];
            for (which, tensor) in values.iter_mut().enumerate() {
                // Moments of a run in progress: v >= 0.
                let offset = if which == 3 { 0.0 } else { 0.5 };
                let scale = [1.0, 1e5][case / 24 % 2];
                tensor
                    .iter_mut()
                    .for_each(|x| *x = (unit_f32(&mut rng) - offset) * scale);
            }
            for _ in 0..case % 4 {
                let edge = EDGES[rng.next_u32() as usize % EDGES.len()];
                let (which, at) = (rng.next_u32() as usize % 4, rng.next_u32() as usize % 37);
                values[which][at] = edge;
            }
            let [w, g, m, v] = &values;
            let exact = exactly_finite(w, g, m, v, step, keep);
            let quick = [
                surely_finite_maxima(w, g, m, v, step, keep),
                surely_finite_sums(w, g, m, v, step, keep),
            ];
            for (passes, count) in quick.into_iter().zip(&mut passed) {
                assert!(!passes || exact, "case {case}: {values:?}");
                *count += u32::from(passes);
            }
        }
        assert!(passed.iter().all(|&n| n > 1000), "{passed:?}");
    }
}
