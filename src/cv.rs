//! K-fold cross-validation without allocation: which fold each sample is in, and the
//! training and validation indices of each fold, computed on the fly from a seeded
//! [`Permutation`] and (for stratified folds) the caller's label slice.
//!
//! # How samples are dealt to folds
//! - **Plain** ([`KFold::new`]): sample `i` is in fold `π(i) mod k`, where `π` is a seeded
//!   permutation of `0..n`. Since `π` is a bijection, fold `f` gets exactly the samples
//!   whose permuted position is `≡ f (mod k)`: `⌈n/k⌉` or `⌊n/k⌋` of them.
//! - **Stratified** ([`KFold::stratified`]): list the samples class by class (classes in
//!   increasing label order; the samples of a class in a seeded order of their own) and deal
//!   the list round-robin to the `k` folds. A sample's place in that list is the number of
//!   samples in smaller classes (its class's *offset*) plus `σ_c(j)`, where `j` is its rank
//!   among its class in index order and `σ_c` a [`Permutation`] of the class's `n_c`
//!   samples keyed by the fold key and the class's offset (distinct for every class). Each
//!   class is a contiguous run of the list, so every fold gets `⌊n_c/k⌋` or `⌈n_c/k⌉`
//!   samples of each class `c`; and the whole list is dealt round-robin, so fold sizes
//!   differ by at most one, as in the plain case. The number of samples of each class in
//!   each fold is the one scikit-learn's `StratifiedKFold(shuffle=True)` gives (it deals the
//!   class-sorted labels round-robin too); which samples they are is drawn differently, and
//!   never stored.
//!
//! # Costs
//! Nothing is stored per sample: a [`KFold`] is a permutation key, two counts and the
//! caller's label slice. Plain folds answer [`KFold::fold_of`] in O(1) and iterate a fold
//! in O(n). Stratified folds recount on demand: [`KFold::fold_of`] costs one pass over the
//! labels (O(n) comparisons) and one permutation evaluation; iterating a fold's indices
//! costs two passes of comparisons per class present and one permutation evaluation per
//! sample — O(n·classes) comparisons, where the permutation (a few dozen hash rounds) is
//! evaluated O(n) times, not O(n·classes) as when each class walked the whole permuted
//! order.
//!
//! Every random draw comes from the generator the caller passes, as everywhere in the
//! crate, so the same generator state gives the same folds on every target.

use rand_core::Rng;

use crate::error::Error;
use crate::rng::Permutation;

/// A k-fold split of `n` samples, optionally stratified by class label.
///
/// ```
/// use microtrain::{KFold, SeedableRng, Xoshiro128PlusPlus};
/// // 10 samples of two classes, 3 folds, stratified.
/// let labels = [0u8, 0, 0, 0, 1, 1, 1, 1, 1, 1];
/// let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
/// let folds = KFold::stratified(&labels, 3, &mut rng)?;
/// for fold in 0..folds.folds() {
///     let validation = folds.validation(fold)?;
///     assert_eq!(validation.len(), folds.validation_len(fold)?);
///     // Each validation fold holds 1 or 2 samples of class 0 and 2 of class 1.
///     let class_0 = validation.filter(|&i| labels[i] == 0).count();
///     assert!((1..=2).contains(&class_0));
///     // Training indices are all the others.
///     assert_eq!(folds.train(fold)?.count(), 10 - folds.validation_len(fold)?);
/// }
/// assert_eq!(folds.fold_of(3), folds.fold_of(3)); // deterministic, no state
/// assert!(KFold::new(10, 1, &mut rng).is_err()); // k must be at least 2
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KFold<'a, L = usize> {
    samples: usize,
    folds: usize,
    order: Permutation,
    labels: Option<&'a [L]>,
}

impl KFold<'static, usize> {
    /// Plain k-fold: `samples` samples in `folds` folds of sizes differing by at most one,
    /// the assignment drawn from `rng` (one 128-bit key).
    ///
    /// # Errors
    /// [`Error::Folds`] unless `2 <= folds <= samples`.
    pub fn new<R: Rng + ?Sized>(samples: usize, folds: usize, rng: &mut R) -> Result<Self, Error> {
        check_folds(samples, folds)?;
        Ok(Self {
            samples,
            folds,
            order: Permutation::new(samples, rng),
            labels: None,
        })
    }
}

impl<'a, L: Copy + Ord> KFold<'a, L> {
    /// Stratified k-fold over `labels.len()` samples: every fold gets `⌊n_c/k⌋` or
    /// `⌈n_c/k⌉` samples of each class `c`, and fold sizes differ by at most one. Labels may
    /// be any ordered type (`u8` class indices, say); a class with fewer than `folds`
    /// samples is missing from some folds, as in scikit-learn.
    ///
    /// # Errors
    /// [`Error::Folds`] unless `2 <= folds <= labels.len()`.
    pub fn stratified<R: Rng + ?Sized>(
        labels: &'a [L],
        folds: usize,
        rng: &mut R,
    ) -> Result<Self, Error> {
        check_folds(labels.len(), folds)?;
        Ok(Self {
            samples: labels.len(),
            folds,
            order: Permutation::new(labels.len(), rng),
            labels: Some(labels),
        })
    }

    /// Number of samples.
    pub const fn len(&self) -> usize {
        self.samples
    }

    /// Always false: there are at least `folds >= 2` samples.
    pub const fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// Number of folds `k`.
    pub const fn folds(&self) -> usize {
        self.folds
    }

    /// True if the folds are stratified by label.
    pub const fn is_stratified(&self) -> bool {
        self.labels.is_some()
    }

    /// The fold whose validation set holds sample `index`, or `None` past the last
    /// sample. O(1) for plain folds, O(n) for stratified ones.
    pub fn fold_of(&self, index: usize) -> Option<usize> {
        if index >= self.samples {
            return None;
        }
        let Some(labels) = self.labels else {
            return self.order.get(index).checked_rem(self.folds);
        };
        let label = *labels.get(index)?;
        // One pass: the class's offset, its size, and the sample's rank in it by index.
        let (mut offset, mut size, mut rank) = (0usize, 0usize, 0usize);
        for (i, other) in labels.iter().enumerate() {
            match other.cmp(&label) {
                core::cmp::Ordering::Less => offset = offset.saturating_add(1),
                core::cmp::Ordering::Equal => {
                    size = size.saturating_add(1);
                    rank = rank.saturating_add(usize::from(i < index));
                }
                core::cmp::Ordering::Greater => {}
            }
        }
        let place = self.order.tweaked(size, offset).get(rank);
        offset.saturating_add(place).checked_rem(self.folds)
    }

    /// Number of samples in the validation set of `fold`: `⌈n/k⌉` for the first `n mod k`
    /// folds, `⌊n/k⌋` for the others.
    ///
    /// # Errors
    /// [`Error::FoldIndex`] unless `fold < k`.
    pub fn validation_len(&self, fold: usize) -> Result<usize, Error> {
        self.check_fold(fold)?;
        let (Some(base), Some(extra)) = (
            self.samples.checked_div(self.folds),
            self.samples.checked_rem(self.folds),
        ) else {
            return Err(Error::FoldIndex {
                fold,
                folds: self.folds,
            });
        };
        Ok(base.saturating_add(usize::from(fold < extra)))
    }

    /// The indices of the samples in the validation set of `fold`, each once.
    ///
    /// Plain folds yield them in increasing order; stratified folds yield them class by
    /// class, in increasing order within a class.
    ///
    /// # Errors
    /// [`Error::FoldIndex`] unless `fold < k`.
    pub fn validation(&self, fold: usize) -> Result<FoldIndices<'a, L>, Error> {
        let len = self.validation_len(fold)?;
        Ok(self.indices(fold, true, len))
    }

    /// The indices of the samples used to train for `fold`: every sample not in its
    /// validation set, each once, in the order described at [`KFold::validation`].
    ///
    /// # Errors
    /// [`Error::FoldIndex`] unless `fold < k`.
    pub fn train(&self, fold: usize) -> Result<FoldIndices<'a, L>, Error> {
        let len = self.samples.saturating_sub(self.validation_len(fold)?);
        Ok(self.indices(fold, false, len))
    }

    fn indices(&self, fold: usize, validation: bool, len: usize) -> FoldIndices<'a, L> {
        let mut indices = FoldIndices {
            folds: *self,
            fold,
            validation,
            remaining: len,
            position: 0,
            class: None,
            next_class: None,
            offset: 0,
            size: 0,
            rank: 0,
            within: Permutation::identity(0),
        };
        if let Some(labels) = self.labels {
            indices.enter(labels.iter().copied().min());
        }
        indices
    }

    fn check_fold(&self, fold: usize) -> Result<(), Error> {
        if fold < self.folds {
            Ok(())
        } else {
            Err(Error::FoldIndex {
                fold,
                folds: self.folds,
            })
        }
    }
}

fn check_folds(samples: usize, folds: usize) -> Result<(), Error> {
    if folds >= 2 && folds <= samples {
        Ok(())
    } else {
        Err(Error::Folds { folds, samples })
    }
}

/// The training or validation indices of one fold; see [`KFold::validation`] and
/// [`KFold::train`]. Holds a copy of the [`KFold`] and a few counters, nothing per sample.
#[derive(Debug, Clone)]
pub struct FoldIndices<'a, L> {
    folds: KFold<'a, L>,
    fold: usize,
    // True to yield the fold's validation samples, false for its training samples.
    validation: bool,
    remaining: usize,
    // Next sample index.
    position: usize,
    // Stratified only: the class being walked and the next larger one, the number of
    // samples in smaller classes, the class's size, how many of its samples have been
    // passed so far, and the class's own order.
    class: Option<L>,
    next_class: Option<L>,
    offset: usize,
    size: usize,
    rank: usize,
    within: Permutation,
}

impl<L: Copy + Ord> FoldIndices<'_, L> {
    /// Starts walking `class` (stratified): one pass for its size and the next class.
    fn enter(&mut self, class: Option<L>) {
        self.class = class;
        let (Some(class), Some(labels)) = (class, self.folds.labels) else {
            return;
        };
        let (mut size, mut next) = (0usize, None);
        for &label in labels {
            if label == class {
                size = size.saturating_add(1);
            } else if label > class && next.is_none_or(|n| label < n) {
                next = Some(label);
            }
        }
        (self.next_class, self.size, self.rank, self.position) = (next, size, 0, 0);
        self.within = self.folds.order.tweaked(size, self.offset);
    }
}

impl<L: Copy + Ord> Iterator for FoldIndices<'_, L> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        let KFold {
            samples,
            folds,
            order,
            labels,
        } = self.folds;
        let Some(labels) = labels else {
            while self.position < samples {
                let index = self.position;
                self.position = self.position.saturating_add(1);
                if (order.get(index).checked_rem(folds) == Some(self.fold)) == self.validation {
                    self.remaining = self.remaining.saturating_sub(1);
                    return Some(index);
                }
            }
            return None;
        };
        loop {
            let class = self.class?;
            let Some(&label) = labels.get(self.position) else {
                // This class is done: on to the next larger label.
                self.offset = self.offset.saturating_add(self.size);
                self.enter(self.next_class);
                continue;
            };
            let sample = self.position;
            self.position = self.position.saturating_add(1);
            if label != class {
                continue;
            }
            let place = self.within.get(self.rank);
            self.rank = self.rank.saturating_add(1);
            let fold = self.offset.saturating_add(place).checked_rem(folds);
            if (fold == Some(self.fold)) == self.validation {
                self.remaining = self.remaining.saturating_sub(1);
                return Some(sample);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<L: Copy + Ord> ExactSizeIterator for FoldIndices<'_, L> {}

impl<L: Copy + Ord> core::iter::FusedIterator for FoldIndices<'_, L> {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro128PlusPlus;
    use std::vec::Vec;

    fn rng(seed: u64) -> Xoshiro128PlusPlus {
        Xoshiro128PlusPlus::seed_from_u64(seed)
    }

    #[test]
    fn fold_of_agrees_with_validation_iterators() {
        let labels: Vec<u8> = (0..103u32).map(|i| (i * 7 % 3) as u8).collect();
        let plain = KFold::new(labels.len(), 4, &mut rng(1)).unwrap();
        let stratified = KFold::stratified(&labels, 4, &mut rng(1)).unwrap();
        for fold in 0..4 {
            for i in plain.validation(fold).unwrap() {
                assert_eq!(plain.fold_of(i), Some(fold), "plain, sample {i}");
            }
            for i in stratified.validation(fold).unwrap() {
                assert_eq!(stratified.fold_of(i), Some(fold), "stratified, sample {i}");
            }
        }
        assert_eq!(plain.fold_of(103), None);
        assert_eq!(stratified.fold_of(103), None);
    }

    #[test]
    fn iterators_report_their_exact_length() {
        let labels = [3u8, 1, 1, 3, 3, 3, 9, 1, 9, 3, 3];
        let folds = KFold::stratified(&labels, 3, &mut rng(2)).unwrap();
        for fold in 0..3 {
            let mut validation = folds.validation(fold).unwrap();
            let expected = folds.validation_len(fold).unwrap();
            assert_eq!(validation.len(), expected);
            let _ = validation.next();
            assert_eq!(validation.len(), expected - 1);
            assert_eq!(validation.count(), expected - 1);
            assert_eq!(folds.train(fold).unwrap().count(), labels.len() - expected);
        }
    }

    #[test]
    fn plain_validation_indices_come_in_increasing_order() {
        let folds = KFold::new(50, 5, &mut rng(3)).unwrap();
        let indices: Vec<usize> = folds.validation(2).unwrap().collect();
        assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
    }

    #[test]
    fn a_single_class_is_dealt_like_plain_folds() {
        let labels = [5u8; 23];
        let folds = KFold::stratified(&labels, 4, &mut rng(4)).unwrap();
        let sizes: Vec<usize> = (0..4)
            .map(|f| folds.validation(f).unwrap().count())
            .collect();
        assert_eq!(sizes, [6, 6, 6, 5]);
    }

    /// Every class of its own (the review's slow case, 6,000 distinct labels, at a third of
    /// the size): each fold still gets every sample once, and `fold_of` agrees.
    #[test]
    #[cfg_attr(miri, ignore)] // 40 M label comparisons; nothing endian-specific
    fn many_distinct_classes_are_dealt_exactly() {
        let labels: Vec<u32> = (0..2000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let folds = KFold::stratified(&labels, 5, &mut rng(5)).unwrap();
        let mut seen = std::vec![false; labels.len()];
        for fold in 0..5 {
            let validation: Vec<usize> = folds.validation(fold).unwrap().collect();
            assert_eq!(validation.len(), 400);
            for i in validation {
                assert!(!seen[i], "sample {i} twice");
                seen[i] = true;
                if i % 97 == 0 {
                    assert_eq!(folds.fold_of(i), Some(fold));
                }
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn folds_and_fold_index_are_validated() {
        assert_eq!(
            KFold::new(5, 6, &mut rng(0)),
            Err(Error::Folds {
                folds: 6,
                samples: 5
            })
        );
        assert!(KFold::new(0, 2, &mut rng(0)).is_err());
        assert!(KFold::stratified(&[0u8; 4], 1, &mut rng(0)).is_err());
        let folds = KFold::new(5, 5, &mut rng(0)).unwrap();
        assert_eq!(
            folds.validation(5).err(),
            Some(Error::FoldIndex { fold: 5, folds: 5 })
        );
        assert!(folds.train(7).is_err());
        assert!(folds.validation_len(5).is_err());
    }
}
