//! Inverted dropout with masks that are replayed, not stored.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

use super::{ConstZero, Hidden, Layer, NoParams};
use crate::activation::{Identity, SignDerivative};
use crate::error::{Error, unit_interval};

/// Keras' `Dropout(rate)` on `N` units: while training each unit is dropped with
/// probability `rate` and kept units are scaled by `1 / (1 - rate)` (inverted dropout, as
/// Keras and PyTorch do); at inference it is the identity.
///
/// The classic formulation (keep units unscaled while training, scale by the keep
/// probability at test time) is equal in expectation; this one leaves inference untouched.
///
/// # The mask costs 8 bytes
/// Each training forward pass draws one `u64` seed ([`MaskSeed`]) from the trainer's generator and
/// generates the mask from a fresh `G` (by default [`Xoshiro128PlusPlus`]) seeded with it.
/// Backward reseeds `G` with the same seed and replays the mask, so no per-unit state is
/// stored, whatever `N` and the batch size.
///
/// A unit is dropped when its `b` random bits, read as an integer, are below `t / 2³²⁻ᵇ`,
/// where `t = ⌊rate·2³²⌋` and `b` is the fewest of 1, 2, 4, 8, 16, 32 bits for which that
/// quotient is whole. The drop probability is `t / 2³²` for every `b`: `rate` itself when
/// `rate·2³²` is whole (0.5, 0.25, 0.125, …), within 2⁻³² of it otherwise (0.2, 0.3, …).
/// Each `u32` draw serves `32 / b` units, from its top bits down: `Dropout(0.5)` needs one
/// draw per 32 units, `Dropout(0.25)` one per 16, and rates like 0.2 one per unit.
///
/// ```
/// use microtrain::Dropout;
/// let dropout = Dropout::<64>::new(0.5)?;
/// assert!(Dropout::<64>::new(1.0).is_err());
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, PartialEq)]
pub struct Dropout<const N: usize, G = Xoshiro128PlusPlus> {
    rate: f32,
    threshold: u32,
    // Zero-sized: lets `params_mut` hand out the layer's (empty) parameter set.
    no_params: NoParams,
    // A type tag only: the layer holds no generator (fn() -> G keeps it Copy and Send).
    generator: core::marker::PhantomData<fn() -> G>,
}

// Written out because derive would demand `G: Copy`, and generators are rightly not Copy.
impl<const N: usize, G> Clone for Dropout<N, G> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<const N: usize, G> Copy for Dropout<N, G> {}

impl<const N: usize, G> Dropout<N, G> {
    /// Dropout with Keras' `rate` (probability of dropping a unit).
    ///
    /// # Errors
    /// [`Error::DropoutRate`] unless `rate` is 0 or in `[2⁻³², 1)`: a positive rate below
    /// 2⁻³² (e.g. 1e-10) would drop nothing (the threshold `⌊rate·2³²⌋` is 0) while
    /// [`Dropout::rate`] reported it.
    pub const fn new(rate: f32) -> Result<Self, Error> {
        const { assert!(N > 0, "Dropout<N>: N must be at least 1") };
        match unit_interval(rate, Error::DropoutRate { rate }) {
            Ok(rate) => {
                // rate < 1, so the product is below 2^32 and the cast is exact truncation.
                let threshold = (rate as f64 * 4_294_967_296.0) as u32;
                if threshold == 0 && rate > 0.0 {
                    return Err(Error::DropoutRate { rate });
                }
                Ok(Self {
                    rate,
                    threshold,
                    no_params: NoParams,
                    generator: core::marker::PhantomData,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The drop probability.
    pub const fn rate(&self) -> f32 {
        self.rate
    }

    /// The factor kept units are multiplied by while training, `1 / (1 - rate)`. Computed
    /// when needed (one division per batch) rather than stored, to keep the layer at 8 bytes.
    const fn scale(&self) -> f32 {
        1.0 / (1.0 - self.rate)
    }
}

/// Mask draws made per block. Drawing a block into a small buffer and then applying it
/// keeps the generator's serial loop apart from the float work, which then vectorizes.
/// Drawing and applying a unit at a time cost 7× as much in forward and 2× in the backward
/// replay (x86_64 with AVX-512, `dropout_mask` in `benches/training.rs`); both now run at
/// about the generator's own speed. The same draws in the same order: the same masks.
/// 32 draws are 128 bytes of stack.
const MASK_BLOCK: usize = 32;

impl<const N: usize, G: Rng + SeedableRng> Dropout<N, G> {
    /// Random bits per unit: the fewest of 1, 2, 4, 8, 16, 32 below which the threshold
    /// has only zero bits (see the type's documentation). At least 1 for a non-zero
    /// threshold.
    const fn bits_per_unit(&self) -> u32 {
        let needed = 32u32.saturating_sub(self.threshold.trailing_zeros());
        let bits = needed.next_power_of_two();
        if bits > 32 { 32 } else { bits }
    }

    /// Calls `f(values, draws)` for consecutive blocks of `values` with each unit's random
    /// bits moved to the top of a `u32` (the bits of the units after it in the same draw
    /// follow below them): the unit is kept when that value is at least the threshold.
    /// Since the threshold has no bits below the unit's `b` bits, this is the same test as
    /// comparing the `b` bits with the threshold's top `b` bits, whatever lies below them.
    #[inline]
    fn for_each_mask_block<T>(
        &self,
        seed: u64,
        values: &mut [T],
        mut f: impl FnMut(&mut [T], &[u32]),
    ) {
        let mut generator = G::seed_from_u64(seed);
        let bits = self.bits_per_unit();
        if bits == 32 {
            let mut draws = [0u32; MASK_BLOCK];
            // One draw per unit, in a loop of its own: sharing the general loop costs a
            // Cortex-M about 20 instructions more per unit and a zeroing of `draws`.
            for block in values.chunks_mut(MASK_BLOCK) {
                let draws = draws.get_mut(..block.len()).unwrap_or_default();
                draws
                    .iter_mut()
                    .for_each(|draw| *draw = generator.next_u32());
                f(block, draws);
            }
            return;
        }
        // With vector units, one copy of the loop per width: each unit's word and shift are
        // then constants and the blocks take a third of the time (x86_64 with AVX-512,
        // `dropout_mask`). Without them, one copy for all widths keeps the code small.
        if crate::kernels::SIMD_ACTIVE {
            let blocks = MaskBlocks {
                bits,
                generator: &mut generator,
                values,
                f,
            };
            // A default x86_64 build has SSE2 only, which has no per-lane shifts for the
            // bit extraction: compiled for AVX2 where the CPU has it (`kernels::avx2`). Out
            // of line there, so `f` takes its factors by value (`move`): captured by
            // reference, they could alias the values and the apply loop stayed scalar.
            crate::kernels::vectorized(blocks);
        } else {
            shared_draws(bits, &mut generator, values, f);
        }
    }

    /// Multiplies each value by its unit's mask factor (`0` or `1 / (1 - rate)`) for the
    /// mask that `seed` gives: the same values and bits as the forward pass's output.
    pub(super) fn scale_by_mask(&self, seed: u64, values: &mut [f32]) {
        let (scale, threshold) = (self.scale(), self.threshold);
        self.for_each_mask_block(seed, values, move |values, draws| {
            for (v, &draw) in values.iter_mut().zip(draws) {
                *v = if draw >= threshold { *v * scale } else { 0.0 };
            }
        });
    }

    /// Training forward pass in place: draws the seed of this step's mask from `rng` into
    /// `seed` and applies the mask to `values` (rows of `N`). A rate of 0 draws nothing.
    pub(super) fn drop_in_place<R: Rng + ?Sized>(
        &self,
        values: &mut [f32],
        seed: &mut MaskSeed,
        rng: &mut R,
    ) {
        if self.threshold == 0 {
            return;
        }
        *seed = MaskSeed::new(rng.next_u64());
        self.scale_by_mask(seed.get(), values);
    }

    /// Replaces `values`, outputs of an activation `A` that this dropout scaled in place, by
    /// `A'` times each unit's mask factor: the derivative of the pair. Exact because `A'`
    /// depends only on the sign of the output. When `A'(0) = 0` (ReLU) the mask is not
    /// replayed: a dropped unit is 0 and gets 0, and a non-zero value was kept.
    pub(super) fn derivative_after<A: SignDerivative>(
        &self,
        activation: &A,
        seed: u64,
        values: &mut [f32],
    ) {
        if self.threshold == 0 {
            activation.derivative_in_place(values);
            return;
        }
        let scale = self.scale();
        if activation.derivative(0.0) == 0.0 {
            for v in values {
                *v = if *v == 0.0 {
                    0.0
                } else {
                    activation.derivative(*v) * scale
                };
            }
            return;
        }
        activation.derivative_in_place(values);
        self.scale_by_mask(seed, values);
    }

    /// Writes the mask that `seed` gives for `rows` samples into `out`, as the factor each
    /// unit is multiplied by (`0` or `1 / (1 - rate)`). Backward replays the mask this way.
    pub fn mask_factors(&self, seed: u64, out: &mut [[f32; N]]) {
        let (scale, threshold) = (self.scale(), self.threshold);
        self.for_each_mask_block(seed, out.as_flattened_mut(), move |values, draws| {
            for (v, &draw) in values.iter_mut().zip(draws) {
                *v = if draw >= threshold { scale } else { 0.0 };
            }
        });
    }
}

/// The blocks of `Dropout::for_each_mask_block` with vector units: one copy of the loop
/// per width, each unit's word and shift constants in it.
struct MaskBlocks<'a, T, G, F> {
    bits: u32,
    generator: &'a mut G,
    values: &'a mut [T],
    f: F,
}

impl<T, G: Rng, F: FnMut(&mut [T], &[u32])> crate::kernels::Work for MaskBlocks<'_, T, G, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            bits,
            generator,
            values,
            f,
        } = self;
        match bits {
            1 => shared_draws(1, generator, values, f),
            2 => shared_draws(2, generator, values, f),
            4 => shared_draws(4, generator, values, f),
            8 => shared_draws(8, generator, values, f),
            _ => shared_draws(16, generator, values, f),
        }
    }
}

/// `Dropout::for_each_mask_block` when each `u32` draw serves `32 / bits` units (`bits`
/// below 32 and dividing it, so a block takes whole draws; a final partial block leaves the
/// rest of its last draw unused, in forward and replay alike). Always inlined, so that a
/// constant `bits` makes every unit's word and shift constants.
#[inline(always)]
fn shared_draws<T, G: Rng>(
    bits: u32,
    generator: &mut G,
    values: &mut [T],
    mut f: impl FnMut(&mut [T], &[u32]),
) {
    // Units per draw, `32 / bits`, as a power of two: a unit's draw and its place in it
    // are a shift and a mask of its index.
    let per_draw_log2 = 5u32.saturating_sub(bits.trailing_zeros());
    let unit_mask = (1usize << per_draw_log2).wrapping_sub(1);
    for block in values.chunks_mut(MASK_BLOCK) {
        let mut words = [0u32; MASK_BLOCK / 2]; // 16 draws per block at 16 bits per unit
        let used = block.len().div_ceil(unit_mask.wrapping_add(1));
        for word in words.iter_mut().take(used) {
            *word = generator.next_u32();
        }
        // A fresh array from each unit's index alone: it vectorizes and, with a constant
        // `bits`, stays in vector registers (a buffer reused across blocks went through
        // the stack).
        let draws: [u32; MASK_BLOCK] = core::array::from_fn(|k| {
            let word = words.get(k >> per_draw_log2).copied().unwrap_or(0);
            word.wrapping_shl(((k & unit_mask) as u32).wrapping_mul(bits))
        });
        f(block, draws.get(..block.len()).unwrap_or_default());
    }
}

/// The seed a training step's dropout mask is generated from (what a [`Dropout`] layer keeps
/// between forward and backward). Two `u32` halves rather than a `u64`, so that it needs only
/// 4-byte alignment and adds no padding to a trainer on 32-bit targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaskSeed([u32; 2]);

impl MaskSeed {
    /// Stores `seed`.
    pub const fn new(seed: u64) -> Self {
        Self([seed as u32, (seed >> 32) as u32])
    }

    /// The stored seed.
    pub const fn get(self) -> u64 {
        (self.0[1] as u64) << 32 | self.0[0] as u64
    }
}

impl ConstZero for MaskSeed {
    const ZERO: Self = Self([0; 2]);
}

impl<const N: usize, G: Rng + SeedableRng> Layer for Dropout<N, G> {
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

    fn forward<R: Rng + ?Sized>(
        &self,
        input: &[[f32; N]],
        output: &mut [[f32; N]],
        seed: &mut MaskSeed,
        rng: &mut R,
    ) {
        let rows = input.len().min(output.len());
        let (input, output) = (input.as_flattened(), output.as_flattened_mut());
        if self.threshold == 0 {
            output.iter_mut().zip(input).for_each(|(y, x)| *y = *x);
            return;
        }
        *seed = MaskSeed::new(rng.next_u64());
        let (scale, threshold) = (self.scale(), self.threshold);
        let output = output.get_mut(..rows.saturating_mul(N)).unwrap_or_default();
        let mut inputs = input.chunks(MASK_BLOCK);
        self.for_each_mask_block(seed.get(), output, move |outputs, draws| {
            let inputs = inputs.next().unwrap_or_default();
            for ((y, x), &draw) in outputs.iter_mut().zip(inputs).zip(draws) {
                *y = if draw >= threshold { x * scale } else { 0.0 };
            }
        });
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
}

impl<const N: usize, G: Rng + SeedableRng> Hidden for Dropout<N, G> {
    fn derivative_of_output(&self, output: &mut [[f32; N]], seed: &MaskSeed) {
        if self.threshold == 0 {
            output.as_flattened_mut().fill(1.0);
            return;
        }
        self.mask_factors(seed.get(), output);
    }
}
