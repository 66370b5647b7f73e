//! `KFold` (plain and stratified) on sizes, fold counts and labels from the fuzzer.
//! Asserts: no panic; construction fails exactly when `folds < 2` or `folds > samples`;
//! otherwise the validation sets partition `0..samples`, each fold's training set is the
//! complement of its validation set, `validation_len` and `fold_of` agree with them.
//!
//! Layout: u16 samples (mod 600), u8 folds, u8 seed, u8 classes (0: plain k-fold), then one
//! u8 label per sample (mod classes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use microtrain::{Error, KFold, SeedableRng, Xoshiro128PlusPlus};
use microtrain_fuzz::Reader;

fuzz_target!(|bytes: &[u8]| {
    let mut r = Reader(bytes);
    let samples = usize::from(r.u16() % 600);
    let folds = usize::from(r.u8());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(u64::from(r.u8()));
    let classes = r.u8();
    let labels: Vec<u8> = (0..samples)
        .map(|_| if classes == 0 { 0 } else { r.u8() % classes })
        .collect();
    if classes == 0 {
        check(KFold::new(samples, folds, &mut rng), samples, folds);
    } else {
        check(KFold::stratified(&labels, folds, &mut rng), samples, folds);
    }
});

fn check<L: Copy + Ord>(kfold: Result<KFold<'_, L>, Error>, samples: usize, folds: usize) {
    let valid = folds >= 2 && folds <= samples;
    let kfold = match kfold {
        Ok(kfold) => {
            assert!(valid, "accepted {folds} folds of {samples}");
            kfold
        }
        Err(error) => {
            assert!(!valid, "refused {folds} folds of {samples}: {error:?}");
            assert_eq!(error, Error::Folds { folds, samples });
            return;
        }
    };
    assert_eq!(kfold.len(), samples);
    assert_eq!(kfold.folds(), folds);
    let mut owner = vec![usize::MAX; samples];
    for fold in 0..folds {
        let validation: Vec<usize> = kfold.validation(fold).expect("fold < k").collect();
        assert_eq!(
            validation.len(),
            kfold.validation_len(fold).expect("fold < k")
        );
        for &i in &validation {
            assert!(i < samples, "index {i} past {samples}");
            assert_eq!(owner[i], usize::MAX, "index {i} in two validation sets");
            owner[i] = fold;
            assert_eq!(kfold.fold_of(i), Some(fold));
        }
        let mut in_validation = vec![false; samples];
        validation.iter().for_each(|&i| in_validation[i] = true);
        let mut train: Vec<usize> = kfold.train(fold).expect("fold < k").collect();
        assert_eq!(train.len(), samples - validation.len());
        train.sort_unstable();
        train.dedup();
        assert_eq!(
            train.len(),
            samples - validation.len(),
            "a repeated training index"
        );
        assert!(train.iter().all(|&i| i < samples && !in_validation[i]));
    }
    assert!(
        owner.iter().all(|&f| f != usize::MAX),
        "an index in no validation set"
    );
    assert!(kfold.validation(folds).is_err() && kfold.train(folds).is_err());
    assert_eq!(kfold.fold_of(samples), None);
}
