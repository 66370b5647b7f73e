//! Learning from a stream: a fixed-capacity replay buffer holding a uniform sample of
//! everything seen, and one training step per new sample on a mini-batch drawn from it.
//!
//! A device sees one sample at a time and cannot keep them all. Trained on each new sample
//! alone (one-sample SGD), a model follows the latest data and forgets what came before
//! when the stream shifts; replaying stored samples beside each new one keeps the old part
//! in the gradient. The buffer keeps a uniform sample of the whole stream by reservoir
//! sampling (Vitter's algorithm R), so every sample seen so far is in it with the same
//! probability `CAP / seen`, old or new.
//!
//! ```
//! use microtrain::*;
//! use microtrain::replay::ReplayBuffer;
//! type Net = (Dense<2, 8, Tanh>, Dense<8, 1, Sigmoid>);
//! let mut model: Net = (Dense::new(Tanh), Dense::new(Sigmoid));
//! let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
//! model.initialize(&mut rng);
//! // Batches of 8: the new sample and 7 replayed ones.
//! let mut trainer = Trainer::<Net, Sgd, 8>::new(Sgd::new(0.5)?);
//! let mut buffer = ReplayBuffer::<[f32; 2], [f32; 1], 64>::new();
//! for k in 0..2000u32 {
//!     let x = [(k % 7) as f32 / 3.0 - 1.0, (k % 5) as f32 / 2.0 - 1.0];
//!     let y = [f32::from(u8::from(x[0] * x[1] > 0.0))];
//!     buffer.learn(&mut trainer, &mut model, &BinaryCrossEntropy, x, y, &mut rng)?;
//! }
//! assert_eq!(buffer.len(), 64);
//! assert_eq!(buffer.seen(), 2000);
//! # Ok::<(), microtrain::Error>(())
//! ```

use rand_core::Rng;

use crate::error::Error;
use crate::layers::ConstZero;
use crate::loss::Loss;
use crate::model::Network;
use crate::optim::Optimizer;
use crate::train::{Dataset, StepReport, Trainer};

/// Up to `CAP` samples and their targets, a uniform sample of every sample offered
/// (reservoir sampling). Its size is fixed at compile time (`CAP` samples and targets and
/// a counter) and it can be a `static` ([`ReplayBuffer::new`] is `const`).
///
/// When full, a new sample replaces a stored one chosen at random, or is dropped, each
/// with the probability that keeps the sample uniform: nothing fails, nothing panics.
#[derive(Debug, Clone)]
pub struct ReplayBuffer<I, T, const CAP: usize> {
    samples: [I; CAP],
    targets: [T; CAP],
    len: usize,
    seen: u64,
}

/// Where [`ReplayBuffer::offer`] put a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Stored in a free slot (the buffer was not full).
    Stored(usize),
    /// Stored in place of the sample that was in this slot.
    Replaced(usize),
    /// Not kept: the reservoir's draw left the buffer as it was.
    Dropped,
}

impl<I: Copy + ConstZero, T: Copy + ConstZero, const CAP: usize> ReplayBuffer<I, T, CAP> {
    const CAPACITY_IS_VALID: () =
        assert!(CAP > 0, "ReplayBuffer<_, _, CAP>: CAP must be at least 1");

    /// An empty buffer; `const`, so it can be a `static`.
    pub const fn new() -> Self {
        let () = Self::CAPACITY_IS_VALID;
        Self {
            samples: [I::ZERO; CAP],
            targets: [T::ZERO; CAP],
            len: 0,
            seen: 0,
        }
    }

    /// Bytes of RAM the buffer occupies.
    pub const RAM_BYTES: usize = core::mem::size_of::<Self>();

    /// Samples stored (at most `CAP`).
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True before the first sample.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Samples offered so far (stored or not).
    pub const fn seen(&self) -> u64 {
        self.seen
    }

    /// The stored samples, in slot order.
    pub fn samples(&self) -> &[I] {
        self.samples.get(..self.len).unwrap_or_default()
    }

    /// The stored targets, matching [`ReplayBuffer::samples`].
    pub fn targets(&self) -> &[T] {
        self.targets.get(..self.len).unwrap_or_default()
    }

    /// Offers a sample to the reservoir: stored while there is room; once full, the `n`-th
    /// sample offered replaces a uniformly chosen stored one with probability `CAP / n`.
    /// One draw from `rng` per offer once the buffer is full, none before.
    pub fn offer<R: Rng + ?Sized>(&mut self, sample: I, target: T, rng: &mut R) -> Offered {
        self.seen = self.seen.saturating_add(1);
        if let (Some(s), Some(t)) = (
            self.samples.get_mut(self.len),
            self.targets.get_mut(self.len),
        ) {
            (*s, *t) = (sample, target);
            let slot = self.len;
            self.len = self.len.saturating_add(1);
            return Offered::Stored(slot);
        }
        // Algorithm R: a uniform j in [0, seen); the sample takes slot j if j < CAP.
        let j = below_u64(rng, self.seen);
        match usize::try_from(j) {
            Ok(slot) if slot < CAP => {
                if let (Some(s), Some(t)) = (self.samples.get_mut(slot), self.targets.get_mut(slot))
                {
                    (*s, *t) = (sample, target);
                }
                Offered::Replaced(slot)
            }
            _ => Offered::Dropped,
        }
    }

    /// One training step for a new sample: a mini-batch of the sample and `B - 1` samples
    /// drawn uniformly, with replacement, from the buffer (fewer while it holds none), then
    /// the sample is offered to the buffer. With `B = 1` this is one-sample SGD on the
    /// stream, and the buffer only collects.
    ///
    /// The batch is gathered on the stack (`B` samples and targets) before the step. A
    /// step refused for a non-finite or invalid sample or target ([`Trainer::step`]) leaves
    /// the model, the optimizer, the buffer and the generator as they were.
    ///
    /// # Errors
    /// As [`Trainer::step`].
    #[allow(clippy::too_many_arguments)]
    pub fn learn<N, O, L, R, const B: usize, K>(
        &mut self,
        trainer: &mut Trainer<N, O, B, K>,
        model: &mut N,
        loss: &L,
        sample: I,
        target: T,
        rng: &mut R,
    ) -> Result<StepReport, Error>
    where
        N: Network<Input = I>,
        O: Optimizer<N::Params>,
        L: Loss<N::OutputActivation, N::Output, Target = T>,
        R: Rng + Clone,
    {
        // A refused step leaves the caller's generator as it was, as `Trainer::step` does,
        // the draws of the replayed rows included.
        let before = rng.clone();
        let mut batch_samples = [sample; B];
        let mut batch_targets = [target; B];
        let mut rows = 1usize;
        if !self.is_empty() {
            for (s, t) in batch_samples.iter_mut().zip(&mut batch_targets).skip(1) {
                let k = crate::rng::below(rng, self.len);
                if let (Some(stored), Some(stored_target)) =
                    (self.samples.get(k), self.targets.get(k))
                {
                    (*s, *t) = (*stored, *stored_target);
                }
                rows = rows.saturating_add(1);
            }
        }
        let data = Dataset::new(
            batch_samples.get(..rows).unwrap_or_default(),
            batch_targets.get(..rows).unwrap_or_default(),
        )?;
        let indices: [usize; B] = core::array::from_fn(|k| k);
        let report = match trainer.step(
            model,
            loss,
            data,
            indices.get(..rows).unwrap_or_default(),
            rng,
        ) {
            Ok(report) => report,
            Err(e) => {
                *rng = before;
                return Err(e);
            }
        };
        self.offer(sample, target, rng);
        Ok(report)
    }
}

impl<I: Copy + ConstZero, T: Copy + ConstZero, const CAP: usize> Default
    for ReplayBuffer<I, T, CAP>
{
    fn default() -> Self {
        Self::new()
    }
}

/// A uniform integer in `[0, n)` for `n >= 1`, as [`crate::rng::below`] for a 64-bit count.
fn below_u64<R: Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    let wide = u128::from(rng.next_u64()).wrapping_mul(u128::from(n));
    (wide >> 64) as u64
}
