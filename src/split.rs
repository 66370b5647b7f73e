//! A seeded, stratified train/validation/test split over sample indices, without a heap.

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

use crate::error::Error;
use crate::loss::Label;
use crate::rng::Permutation;

/// The three parts of a [`stratified_split`]: sample indices, each part in the seeded
/// order in which its samples were drawn.
#[derive(Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// Indices of the training samples.
    pub train: &'a [usize],
    /// Indices of the validation samples (empty if none were asked for).
    pub validation: &'a [usize],
    /// Indices of the test samples.
    pub test: &'a [usize],
}

/// Splits the samples `0..labels.len()` into test, validation and training indices, each
/// class keeping its share in every part; writes them into `indices` (one slot per sample)
/// and returns the three parts as sub-slices of it. `C` is the number of classes.
///
/// Each class `c` with `n_c` of the `n` samples gets `test_len · n_c / n` test samples,
/// rounded by largest remainder so that the shares add up to `test_len` (ties to the lower
/// class), then likewise `validation_len` validation samples shared out by what the test
/// part left of each class; which samples of a
/// class go where is decided by a permutation seeded with `seed`. This plays the role of
/// scikit-learn's `train_test_split(stratify=y, random_state=…)` (applied twice for three
/// parts) but cannot reproduce its exact choice of samples, which depends on numpy's
/// generator. The same seed gives the same split on every target.
///
/// ```
/// use microtrain::stratified_split;
/// let labels = [0u8, 0, 0, 0, 0, 0, 1, 1, 1, 1];
/// let mut indices = [0usize; 10];
/// let split = stratified_split::<_, 2>(&labels, 2, 2, 7, &mut indices)?;
/// assert_eq!((split.train.len(), split.validation.len(), split.test.len()), (6, 2, 2));
/// // 60 % / 40 % in the data, so one sample of each class in the test part.
/// assert_eq!(split.test.iter().filter(|&&i| labels[i] == 1).count(), 1);
/// # Ok::<(), microtrain::Error>(())
/// ```
///
/// # Errors
/// [`Error::EmptyData`] for no labels; [`Error::Buffer`] unless `indices` has one slot per
/// label; [`Error::LabelOutOfRange`] for a label `>= C`; [`Error::SplitSize`] if
/// `validation_len + test_len` exceeds the number of samples.
pub fn stratified_split<'a, T: Label, const C: usize>(
    labels: &[T],
    validation_len: usize,
    test_len: usize,
    seed: u64,
    indices: &'a mut [usize],
) -> Result<Split<'a>, Error> {
    let n = labels.len();
    if n == 0 {
        return Err(Error::EmptyData);
    }
    if indices.len() != n {
        return Err(Error::Buffer {
            needed: n,
            available: indices.len(),
        });
    }
    let held_out = validation_len.saturating_add(test_len);
    if held_out > n {
        return Err(Error::SplitSize {
            requested: held_out,
            samples: n,
        });
    }
    let mut counts = [0usize; C];
    for label in labels {
        let class = label.index();
        let count = counts.get_mut(class).ok_or(Error::LabelOutOfRange {
            label: class,
            classes: C,
        })?;
        *count = count.saturating_add(1);
    }
    let mut test_quota = quotas(&counts, n, test_len);
    // Validation shares come from what the test part left of each class.
    let mut rest = counts;
    for (r, q) in rest.iter_mut().zip(&test_quota) {
        *r = r.saturating_sub(*q);
    }
    let mut validation_quota = quotas(&rest, n.saturating_sub(test_len), validation_len);

    let order = Permutation::new(n, &mut Xoshiro128PlusPlus::seed_from_u64(seed));
    let (test, rest_slots) = indices.split_at_mut(test_len);
    let (validation, train) = rest_slots.split_at_mut(validation_len);
    let (mut at_test, mut at_validation, mut at_train) = (0usize, 0usize, 0usize);
    for position in 0..n {
        let index = order.get(position);
        let class = labels.get(index).map_or(0, |l| l.index());
        let (part, at): (&mut [usize], &mut usize) =
            match (test_quota.get_mut(class), validation_quota.get_mut(class)) {
                (Some(q), _) if *q > 0 => {
                    *q = q.saturating_sub(1);
                    (&mut *test, &mut at_test)
                }
                (_, Some(q)) if *q > 0 => {
                    *q = q.saturating_sub(1);
                    (&mut *validation, &mut at_validation)
                }
                _ => (&mut *train, &mut at_train),
            };
        // Quotas add up to the parts' lengths, so every slot exists.
        if let Some(slot) = part.get_mut(*at) {
            *slot = index;
        }
        *at = at.saturating_add(1);
    }
    Ok(Split {
        train,
        validation,
        test,
    })
}

/// Each class's share of `len` samples out of `total`, `len · counts[c] / total`, rounded
/// by largest remainder (ties to the lower class) so that the shares add up to `len`.
fn quotas<const C: usize>(counts: &[usize; C], total: usize, len: usize) -> [usize; C] {
    let total = total.max(1);
    let share = |count: usize| len.saturating_mul(count);
    let mut quota = [0usize; C];
    for (q, &count) in quota.iter_mut().zip(counts) {
        *q = share(count).checked_div(total).unwrap_or(0);
    }
    let given: usize = quota.iter().sum();
    let mut raised = [false; C];
    for _ in 0..len.saturating_sub(given) {
        let mut best: Option<(usize, usize)> = None;
        for (class, (&count, &done)) in counts.iter().zip(&raised).enumerate() {
            let remainder = share(count).checked_rem(total).unwrap_or(0);
            if !done && best.is_none_or(|(_, r)| remainder > r) {
                best = Some((class, remainder));
            }
        }
        let Some((class, _)) = best else { break };
        if let (Some(q), Some(done)) = (quota.get_mut(class), raised.get_mut(class)) {
            *q = q.saturating_add(1);
            *done = true;
        }
    }
    quota
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> [u8; 50] {
        let mut labels = [0u8; 50];
        for (i, l) in labels.iter_mut().enumerate() {
            // 25 of class 0, 15 of class 1, 10 of class 2
            *l = if i < 25 {
                0
            } else if i < 40 {
                1
            } else {
                2
            };
        }
        labels
    }

    #[test]
    fn every_sample_lands_in_exactly_one_part_with_its_class_share() {
        let labels = labels();
        let mut indices = [0usize; 50];
        let split = stratified_split::<_, 3>(&labels, 10, 10, 3, &mut indices).unwrap();
        let mut seen = [0u8; 50];
        for &i in split.train.iter().chain(split.validation).chain(split.test) {
            seen[i] += 1;
        }
        assert!(seen.iter().all(|&s| s == 1));
        assert_eq!(split.train.len(), 30);
        for part in [split.validation, split.test] {
            let per_class = |c| part.iter().filter(|&&i| labels[i] == c).count();
            assert_eq!([per_class(0), per_class(1), per_class(2)], [5, 3, 2]);
        }
    }

    #[test]
    fn the_seed_decides_the_samples_and_the_same_seed_repeats_them() {
        let labels = labels();
        let (mut a, mut b, mut c) = ([0usize; 50], [0usize; 50], [0usize; 50]);
        let first = stratified_split::<_, 3>(&labels, 5, 9, 1, &mut a).unwrap();
        let again = stratified_split::<_, 3>(&labels, 5, 9, 1, &mut b).unwrap();
        let other = stratified_split::<_, 3>(&labels, 5, 9, 2, &mut c).unwrap();
        assert_eq!(first, again);
        assert_ne!(first.test, other.test);
    }

    #[test]
    fn remainders_are_given_to_the_largest_shares() {
        // 7 samples of 3 classes (3, 2, 2) into 3 test samples: exact shares 9/7, 6/7, 6/7,
        // floors 1, 0, 0; the two remaining go to classes 1 and 2 (remainder 6 > 2).
        assert_eq!(quotas(&[3, 2, 2], 7, 3), [1, 1, 1]);
        // Ties go to the lower class.
        assert_eq!(quotas(&[2, 2], 4, 1), [1, 0]);
        assert_eq!(quotas(&[5, 0], 5, 5), [5, 0]);
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut indices = [0usize; 4];
        let labels = [0u8, 1, 1, 0];
        assert_eq!(
            stratified_split::<_, 2>(&labels, 3, 2, 0, &mut indices),
            Err(Error::SplitSize {
                requested: 5,
                samples: 4
            })
        );
        assert_eq!(
            stratified_split::<_, 2>(&[0u8, 2, 1, 0], 1, 1, 0, &mut indices),
            Err(Error::LabelOutOfRange {
                label: 2,
                classes: 2
            })
        );
        assert_eq!(
            stratified_split::<_, 2>(&labels[..3], 1, 1, 0, &mut indices),
            Err(Error::Buffer {
                needed: 3,
                available: 4
            })
        );
        assert_eq!(
            stratified_split::<u8, 2>(&[], 0, 0, 0, &mut []),
            Err(Error::EmptyData)
        );
    }
}
