//! K-fold claims checked over many sizes: the folds partition the data, stay stratified
//! and balanced, depend on the seed, and refuse bad fold counts.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // a failed unwrap is a failed test

use microtrain::{Error, KFold, SeedableRng, Xoshiro128PlusPlus};

/// Labels with unequal, non-contiguous classes (0, 2, 5, 9) in no particular order.
fn labels(n: usize) -> Vec<u8> {
    const CLASSES: [u8; 7] = [0, 2, 5, 0, 9, 0, 2];
    (0..n).map(|i| CLASSES[(i * 5 + i / 3) % 7]).collect()
}

/// Asserts that the validation folds cover every sample exactly once, and that each
/// fold's training set is exactly the complement of its validation set.
fn assert_partition<L: Copy + Ord>(folds: &KFold<'_, L>) {
    let n = folds.len();
    let mut times_validated = vec![0usize; n];
    for fold in 0..folds.folds() {
        let mut role = vec![None; n];
        for i in folds.validation(fold).unwrap() {
            assert_eq!(role[i], None, "fold {fold}: sample {i} yielded twice");
            role[i] = Some("validation");
            times_validated[i] += 1;
            assert_eq!(folds.fold_of(i), Some(fold));
        }
        for i in folds.train(fold).unwrap() {
            assert_eq!(
                role[i], None,
                "fold {fold}: sample {i} in train and {role:?}"
            );
            role[i] = Some("train");
        }
        assert!(
            role.iter().all(Option::is_some),
            "fold {fold}: train ∪ validation misses a sample"
        );
    }
    assert!(
        times_validated.iter().all(|&t| t == 1),
        "validation counts {times_validated:?}"
    );
}

#[test]
fn folds_partition_the_samples_exactly() {
    for n in [2usize, 3, 7, 10, 31, 100, 455, 569] {
        for k in [2usize, 3, 5, 10] {
            if k > n {
                continue;
            }
            let seed = (n * 31 + k) as u64;
            let plain = KFold::new(n, k, &mut Xoshiro128PlusPlus::seed_from_u64(seed)).unwrap();
            assert_partition(&plain);
            let labels = labels(n);
            let stratified =
                KFold::stratified(&labels, k, &mut Xoshiro128PlusPlus::seed_from_u64(seed))
                    .unwrap();
            assert_partition(&stratified);
        }
    }
}

/// Asserts that fold sizes differ by at most one, add up to `n` and match `validation_len`.
fn assert_balanced<L: Copy + Ord>(folds: &KFold<'_, L>) {
    let k = folds.folds();
    let sizes: Vec<usize> = (0..k)
        .map(|f| folds.validation(f).unwrap().count())
        .collect();
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(
        max - min <= 1,
        "n {}, k {k}: fold sizes {sizes:?}",
        folds.len()
    );
    assert_eq!(sizes.iter().sum::<usize>(), folds.len());
    for (f, &size) in sizes.iter().enumerate() {
        assert_eq!(folds.validation_len(f).unwrap(), size);
    }
}

#[test]
fn fold_sizes_differ_by_at_most_one_and_match_validation_len() {
    for n in [10usize, 11, 99, 455] {
        for k in [2usize, 3, 5, 7] {
            let labels = labels(n);
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(n as u64);
            assert_balanced(&KFold::new(n, k, &mut rng).unwrap());
            assert_balanced(&KFold::stratified(&labels, k, &mut rng).unwrap());
        }
    }
}

#[test]
fn stratified_folds_hold_each_class_within_one_sample() {
    for n in [20usize, 57, 455, 1000] {
        for k in [2usize, 3, 5, 10] {
            let labels = labels(n);
            let mut rng = Xoshiro128PlusPlus::seed_from_u64((n + k) as u64);
            let folds = KFold::stratified(&labels, k, &mut rng).unwrap();
            for class in [0u8, 2, 5, 9] {
                let per_fold: Vec<usize> = (0..k)
                    .map(|f| {
                        folds
                            .validation(f)
                            .unwrap()
                            .filter(|&i| labels[i] == class)
                            .count()
                    })
                    .collect();
                let (min, max) = (
                    per_fold.iter().min().unwrap(),
                    per_fold.iter().max().unwrap(),
                );
                assert!(
                    max - min <= 1,
                    "n {n}, k {k}, class {class}: per-fold counts {per_fold:?}"
                );
            }
        }
    }
}

fn assignment<L: Copy + Ord>(folds: &KFold<'_, L>) -> Vec<usize> {
    (0..folds.len())
        .map(|i| folds.fold_of(i).unwrap())
        .collect()
}

#[test]
fn different_seeds_give_different_assignments() {
    let labels = labels(200);
    let rng = Xoshiro128PlusPlus::seed_from_u64;
    let plain: Vec<Vec<usize>> = (0..4)
        .map(|seed| assignment(&KFold::new(200, 5, &mut rng(seed)).unwrap()))
        .collect();
    let stratified: Vec<Vec<usize>> = (0..4)
        .map(|seed| assignment(&KFold::stratified(&labels, 5, &mut rng(seed)).unwrap()))
        .collect();
    for assignments in [&plain, &stratified] {
        for x in 0..4 {
            for y in x + 1..4 {
                let differ = (0..200)
                    .filter(|&i| assignments[x][i] != assignments[y][i])
                    .count();
                // Two independent assignments to 5 folds agree on about 1/5 of the samples.
                assert!(
                    differ > 100,
                    "seeds {x} and {y}: only {differ} of 200 differ"
                );
            }
        }
    }
    let again = KFold::stratified(&labels, 5, &mut rng(3)).unwrap();
    assert_eq!(assignment(&again), stratified[3], "same seed, same folds");
}

#[test]
fn bad_fold_counts_and_fold_indices_are_refused() {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    for (n, k) in [(10usize, 0usize), (10, 1), (10, 11), (0, 2), (1, 2)] {
        assert_eq!(
            KFold::new(n, k, &mut rng).err(),
            Some(Error::Folds {
                folds: k,
                samples: n
            })
        );
        let labels = vec![0u8; n];
        assert_eq!(
            KFold::stratified(&labels, k, &mut rng).err(),
            Some(Error::Folds {
                folds: k,
                samples: n
            })
        );
    }
    let folds = KFold::new(10, 10, &mut rng).unwrap();
    assert!(folds.validation(9).is_ok());
    for fold in [10usize, 11, usize::MAX] {
        let refused = Some(Error::FoldIndex { fold, folds: 10 });
        assert_eq!(folds.validation(fold).err(), refused);
        assert_eq!(folds.train(fold).err(), refused);
        assert_eq!(folds.validation_len(fold).err(), refused);
    }
}
