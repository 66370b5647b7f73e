//! Constructors refuse bad hyper-parameters and data with the error variant that names
//! the refused value; good values at the edges of the valid ranges are accepted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::*;

type P = DenseParams<2, 1>;

/// Values that no "finite and positive" parameter may take.
const NOT_POSITIVE: [f32; 6] = [0.0, -0.0, -1e-3, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
/// Values that no "finite and non-negative" parameter may take.
const NOT_NON_NEGATIVE: [f32; 4] = [-1e-9, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
/// Values outside [0, 1).
const NOT_IN_UNIT_INTERVAL: [f32; 6] = [1.0, 1.5, -0.1, f32::NAN, f32::INFINITY, -f32::INFINITY];

/// Equal as bits, so that a refused NaN is reported as that NaN.
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits()
}

/// Asserts that `result` is `Err` matching `check`, printing what came instead.
fn refused<T: core::fmt::Debug>(
    what: &str,
    result: Result<T, Error>,
    check: impl Fn(Error) -> bool,
) {
    match result {
        Err(e) if check(e) => {}
        other => panic!("{what}: expected the matching error, got {other:?}"),
    }
}

#[test]
fn dropout_rate_outside_unit_interval_is_refused() {
    for rate in NOT_IN_UNIT_INTERVAL {
        refused(
            &format!("Dropout::new({rate})"),
            Dropout::<3>::new(rate),
            |e| matches!(e, Error::DropoutRate { rate: r } if same(r, rate)),
        );
    }
    for rate in [0.0f32, 0.5, 0.99] {
        assert!(Dropout::<3>::new(rate).is_ok(), "rate {rate} refused");
    }
}

#[test]
fn negative_or_non_finite_penalties_are_refused() {
    for value in NOT_NON_NEGATIVE {
        let is = |e: Error| matches!(e, Error::Penalty { value: v } if same(v, value));
        refused(&format!("l1({value})"), l1(value), is);
        refused(&format!("l2({value})"), l2(value), is);
        refused(&format!("l1_l2({value}, 0.1)"), l1_l2(value, 0.1), is);
        refused(&format!("l1_l2(0.1, {value})"), l1_l2(0.1, value), is);
        refused(
            &format!("Regularizer::l1({value})"),
            Regularizer::l1(value),
            is,
        );
        refused(
            &format!("Regularizer::l2({value})"),
            Regularizer::l2(value),
            is,
        );
    }
    // Both bad: the first is named.
    refused(
        "l1_l2(-1, NaN)",
        l1_l2(-1.0, f32::NAN),
        |e| matches!(e, Error::Penalty { value } if value == -1.0),
    );
    for value in [0.0f32, 1e-6, 10.0] {
        assert!(
            l1_l2(value, value).is_ok(),
            "l1_l2({value}, {value}) refused"
        );
    }
}

#[test]
fn learning_rates_that_are_not_finite_and_positive_are_refused() {
    for lr in NOT_POSITIVE {
        let is = |e: Error| matches!(e, Error::LearningRate { learning_rate } if same(learning_rate, lr));
        refused(&format!("Sgd::new({lr})"), Sgd::new(lr), is);
        refused(
            &format!("SgdMomentum::new({lr}, 0.9)"),
            SgdMomentum::<P>::new(lr, 0.9, false),
            is,
        );
        refused(&format!("Adam::new({lr})"), Adam::<P>::new(lr), is);
        refused(
            &format!("AdamW::new({lr}, 0.01)"),
            AdamW::<P>::new(lr, 0.01),
            is,
        );
    }
    assert!(Sgd::new(1e-9).is_ok() && Adam::<P>::new(1e3).is_ok());
}

#[test]
fn betas_and_momentum_outside_unit_interval_are_refused() {
    for beta in NOT_IN_UNIT_INTERVAL {
        // Adam's betas pass through `f64` and back: Rust keeps a NaN a NaN there, not its
        // payload (Miri varies it), so a NaN is matched as a NaN.
        let is = |e: Error| matches!(e, Error::Beta { beta: b } if same(b, beta) || (b.is_nan() && beta.is_nan()));
        let adam = Adam::<P>::keras_default();
        refused(
            &format!("Adam beta_1 = {beta}"),
            adam.with_betas(f64::from(beta), 0.999),
            is,
        );
        refused(
            &format!("Adam beta_2 = {beta}"),
            adam.with_betas(0.9, f64::from(beta)),
            is,
        );
        let adam_w = AdamW::<P>::new(1e-3, 0.01).unwrap();
        refused(
            &format!("AdamW beta_1 = {beta}"),
            adam_w.with_betas(f64::from(beta), 0.999),
            is,
        );
        refused(
            &format!("AdamW beta_2 = {beta}"),
            adam_w.with_betas(0.9, f64::from(beta)),
            is,
        );
        refused(
            &format!("SgdMomentum momentum = {beta}"),
            SgdMomentum::<P>::new(0.1, beta, true),
            is,
        );
    }
    assert!(Adam::<P>::keras_default().with_betas(0.0, 0.0).is_ok());
    assert!(SgdMomentum::<P>::new(0.1, 0.0, false).is_ok());
}

#[test]
fn adam_epsilon_that_is_not_finite_and_positive_is_refused() {
    for epsilon in NOT_POSITIVE {
        refused(
            &format!("Adam epsilon = {epsilon}"),
            Adam::<P>::keras_default().with_epsilon(epsilon),
            |e| matches!(e, Error::Epsilon { epsilon: v } if same(v, epsilon)),
        );
    }
    assert!(Adam::<P>::keras_default().with_epsilon(1e-12).is_ok());
}

#[test]
fn negative_or_non_finite_weight_decay_is_refused() {
    for wd in NOT_NON_NEGATIVE {
        refused(
            &format!("AdamW::new(1e-3, {wd})"),
            AdamW::<P>::new(1e-3, wd),
            |e| matches!(e, Error::WeightDecay { weight_decay } if same(weight_decay, wd)),
        );
    }
    assert!(AdamW::<P>::new(1e-3, 0.0).is_ok());
    // Keras' weight decay on any optimizer validates it the same way.
    for wd in NOT_NON_NEGATIVE {
        refused(
            &format!("WeightDecay::new(Sgd, {wd})"),
            WeightDecay::new(Sgd::new(0.1).unwrap(), wd),
            |e| matches!(e, Error::WeightDecay { weight_decay } if same(weight_decay, wd)),
        );
    }
    assert!(WeightDecay::new(Sgd::new(0.1).unwrap(), 0.0).is_ok());
    assert!(WeightDecay::new(Adam::<P>::keras_default(), f32::MAX).is_ok());
}

#[test]
fn negative_or_non_finite_leaky_relu_slope_is_refused() {
    for alpha in NOT_NON_NEGATIVE {
        refused(
            &format!("LeakyRelu::new({alpha})"),
            LeakyRelu::new(alpha),
            |e| matches!(e, Error::Slope { alpha: a } if same(a, alpha)),
        );
    }
    for alpha in [0.0f32, 0.3, 1.0] {
        assert!(LeakyRelu::new(alpha).is_ok_and(|l| l.alpha() == alpha));
    }
}

#[test]
fn empty_or_mismatched_datasets_are_refused() {
    let x = [[0.0f32; 2]; 3];
    let y = [[1.0f32]; 2];
    refused(
        "empty samples",
        Dataset::<[f32; 2], [f32; 1]>::new(&[], &[]),
        |e| e == Error::EmptyData,
    );
    refused("3 samples, 2 targets", Dataset::new(&x, &y), |e| {
        e == Error::LengthMismatch {
            samples: 3,
            targets: 2,
        }
    });
    refused("0 targets", Dataset::new(&x, &y[..0]), |e| {
        e == Error::LengthMismatch {
            samples: 3,
            targets: 0,
        }
    });
    assert!(Dataset::new(&x[..2], &y).is_ok_and(|d| d.len() == 2));
}

#[test]
fn bad_steps_are_refused_and_leave_the_model_unchanged() {
    type Net = (Dense<2, 3, Tanh>, Dense<3, 3, Softmax>);
    let mut model: Net = (Dense::new(Tanh), Dense::new(Softmax));
    model.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(1));
    let before = model;
    let mut trainer = Trainer::<Net, Sgd, 4>::new(Sgd::new(0.1).unwrap());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(2);
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    let x = [[0.1f32, 0.2], [f32::NAN, 0.0], [0.3, -0.4]];
    let labels = [0usize, 1, 3];
    let data = Dataset::new(&x, &labels).unwrap();

    type Case<'a> = (&'a str, &'a [usize], fn(Error) -> bool);
    let cases: [Case; 4] = [
        ("no indices", &[], |e| e == Error::EmptyData),
        ("index past the data", &[0, 3], |e| e == Error::EmptyData),
        ("NaN sample", &[0, 1], |e| e == Error::NonFinite),
        ("label 3 of 3 classes", &[2], |e| {
            e == Error::LabelOutOfRange {
                label: 3,
                classes: 3,
            }
        }),
    ];
    for (what, indices, is) in cases {
        refused(
            what,
            trainer.step(&mut model, &loss, data, indices, &mut rng),
            is,
        );
        assert_eq!(model, before, "{what}: the refused step changed the model");
    }
}

#[test]
fn clipping_limits_and_max_norm_that_are_not_finite_and_positive_are_refused() {
    use microtrain::train::Clipping;
    for limit in NOT_POSITIVE {
        let is = |e: Error| matches!(e, Error::Clip { limit: l } if same(l, limit));
        refused(
            &format!("clip value {limit}"),
            Clipping::NONE.value(limit),
            is,
        );
        refused(
            &format!("clip norm {limit}"),
            Clipping::NONE.norm(limit),
            is,
        );
        refused(
            &format!("global clip norm {limit}"),
            Clipping::NONE.global_norm(limit),
            is,
        );
        refused(
            &format!("max norm {limit}"),
            Dense::<2, 1, Identity>::new(Identity).with_max_norm(limit),
            |e| matches!(e, Error::MaxNorm { max_value } if same(max_value, limit)),
        );
    }
}

/// Every optimizer's learning rate can be changed between steps (schedules and
/// `ReduceLROnPlateau` do), and a bad rate is refused without changing the one in use.
#[test]
fn set_learning_rate_checks_and_keeps_the_rate_on_refusal() {
    fn check<O: Optimizer<P>>(name: &str, mut optimizer: O) {
        let before = optimizer.learning_rate();
        for bad in NOT_NON_NEGATIVE {
            refused(
                name,
                optimizer.set_learning_rate(bad),
                |e| matches!(e, Error::LearningRate { learning_rate } if same(learning_rate, bad)),
            );
            assert!(same(optimizer.learning_rate(), before), "{name}: {bad}");
        }
        // A schedule may decay to 0 (Keras' CosineDecay with its default alpha).
        optimizer.set_learning_rate(0.0).unwrap();
        assert!(same(optimizer.learning_rate(), 0.0), "{name}");
        optimizer.set_learning_rate(0.25).unwrap();
        assert!(same(optimizer.learning_rate(), 0.25), "{name}");
    }
    check("Sgd", Sgd::new(0.1).unwrap());
    check(
        "SgdMomentum",
        SgdMomentum::<P>::new(0.1, 0.9, true).unwrap(),
    );
    check("Adam", Adam::<P>::keras_default());
    check("AdamW", AdamW::<P>::new(1e-3, 1e-2).unwrap());
    check("RMSprop", microtrain::RMSprop::<P>::keras_default());
    check("Adagrad", microtrain::Adagrad::<P>::keras_default());
    check("Nadam", microtrain::Nadam::<P>::keras_default());
}
