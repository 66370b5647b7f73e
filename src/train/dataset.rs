//! Samples paired with their targets.

use crate::error::Error;

/// Samples and their targets, checked to have the same non-zero length.
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a, I, T> {
    samples: &'a [I],
    targets: &'a [T],
}

impl<'a, I, T> Dataset<'a, I, T> {
    /// Pairs `samples[k]` with `targets[k]`.
    ///
    /// # Errors
    /// [`Error::EmptyData`] if there are no samples; [`Error::LengthMismatch`] if the
    /// lengths differ.
    pub const fn new(samples: &'a [I], targets: &'a [T]) -> Result<Self, Error> {
        if samples.is_empty() {
            return Err(Error::EmptyData);
        }
        if samples.len() != targets.len() {
            return Err(Error::LengthMismatch {
                samples: samples.len(),
                targets: targets.len(),
            });
        }
        Ok(Self { samples, targets })
    }

    /// Number of samples.
    pub const fn len(&self) -> usize {
        self.samples.len()
    }

    /// Always false: a dataset has at least one sample.
    pub const fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples.
    pub const fn samples(&self) -> &'a [I] {
        self.samples
    }

    /// The targets.
    pub const fn targets(&self) -> &'a [T] {
        self.targets
    }

    pub(super) fn get(&self, index: usize) -> Option<(&'a I, &'a T)> {
        Some((self.samples.get(index)?, self.targets.get(index)?))
    }
}
