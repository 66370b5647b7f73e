//! The `breast_cancer` example's pipeline at reduced size: the same data, split,
//! standardization and model, trained for 5 epochs instead of 10 from one seed.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // a failed unwrap is a failed test

#[path = "../examples/common/mod.rs"]
mod common;

use common::BreastCancer;
use microtrain::{BinaryCrossEntropy, Standardizer, evaluate};

/// Lowest acceptable test accuracy after 5 epochs. Always predicting the majority class
/// (benign) scores 72/114 = 0.632 on this split, so the floor shows the model learned.
/// Over training seeds 0..100 the 5-epoch test accuracy ranged from 0.921 to 0.974
/// (mean 0.949; `cargo run --release --example breast_cancer -- --epochs 5 --seeds 100`),
/// so 0.90 leaves room for other kernels' rounding (the `scalar` feature, FMA) without
/// letting a broken trainer through.
const ACCURACY_FLOOR: f32 = 0.90;

#[test]
fn split_is_stratified_80_20_and_standardized_with_training_statistics() {
    let data = BreastCancer::load(0).unwrap();
    assert_eq!((data.train_x.len(), data.test_x.len()), (455, 114));
    // 212 malignant, 357 benign: 20% of each is 42.4 and 71.4, rounded to add up to 114.
    assert_eq!(common::class_counts(&data.train_labels), [170, 285]);
    assert_eq!(common::class_counts(&data.test_labels), [42, 72]);
    // Standardizing the training split again must change nothing: mean 0, std 1.
    let again = Standardizer::fit(&data.train_x).unwrap();
    for (feature, (mean, std)) in again.mean.iter().zip(&again.std).enumerate() {
        assert!(mean.abs() < 1e-5, "feature {feature}: mean {mean}");
        assert!((std - 1.0).abs() < 1e-4, "feature {feature}: std {std}");
    }
}

#[test]
fn tutorial_model_beats_the_accuracy_floor_after_five_epochs() {
    let data = BreastCancer::load(0).unwrap();
    let trained =
        common::train_tutorial(data.train().unwrap(), None, 0.01, 0.5, 5, 0, common::silent)
            .unwrap();
    let test = evaluate(&trained.model, &BinaryCrossEntropy, data.test().unwrap()).unwrap();
    let accuracy = test.accuracy.unwrap();
    assert!(
        accuracy >= ACCURACY_FLOOR,
        "test accuracy {accuracy} below {ACCURACY_FLOOR} (loss {})",
        test.loss
    );
}
