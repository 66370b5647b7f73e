//! The traps a new user falls into, each closed: a model trained without being initialised,
//! a layer-size mismatch (compile_fail doctests in `src/model.rs`), callbacks that needed
//! type annotations, and the helpers users used to write by hand, used together on real data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use microtrain::persist::{self, load, save};
use microtrain::*;

network! {
    /// Three classes from four features, through a dropout.
    type Net = (Dense<4, 8, Relu>, Dropout<8>, Dense<8, 3, Softmax>);
}

fn untrained() -> Net {
    (
        Dense::new(Relu),
        Dropout::new(0.2).unwrap(),
        Dense::new(Softmax),
    )
}

fn data() -> (Vec<[f32; 4]>, Vec<u8>) {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    let x: Vec<[f32; 4]> = (0..90)
        .map(|_| core::array::from_fn(|_| microtrain::rng::unit_f32(&mut rng) * 2.0 - 1.0))
        .collect();
    let y = x
        .iter()
        .map(|v| u8::from(v[0] > 0.0) + u8::from(v[1] > 0.3))
        .collect();
    (x, y)
}

#[test]
fn an_uninitialised_model_is_refused_by_fit_and_step_and_nothing_changes() {
    let (x, y) = data();
    let data = Dataset::new(&x, &y).unwrap();
    let loss = SparseCategoricalCrossEntropy::<u8>::new();
    let mut model = untrained();
    let before = model;
    let mut trainer = Trainer::<Net, _, 16>::new(Adam::keras_default());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let fitted = common::fit_plain(
        &mut trainer,
        &mut model,
        &loss,
        data,
        &FitConfig::epochs(3),
        &mut rng,
    );
    assert_eq!(fitted.err(), Some(Error::Uninitialized));
    assert_eq!(
        trainer
            .step(&mut model, &loss, data, &[0, 1, 2], &mut rng)
            .err(),
        Some(Error::Uninitialized)
    );
    assert_eq!(model, before, "a refused model is left as it was");
    assert!(!model.is_initialized());

    // One layer initialised is not enough: the other still holds the constructor's zeros.
    model.0.initialize(&mut rng);
    assert!(!model.is_initialized());
    model.initialize(&mut rng);
    assert!(model.is_initialized());
    let summary = common::fit_plain(
        &mut trainer,
        &mut model,
        &loss,
        data,
        &FitConfig::epochs(3),
        &mut rng,
    )
    .unwrap();
    assert_eq!(summary.epochs, 3);
}

#[test]
fn a_loaded_model_counts_as_initialised() {
    let mut trained = untrained();
    trained.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(3));
    let mut buffer = [0u8; persist::parameters_len::<Net>()];
    save(&trained, &mut buffer).unwrap();
    let mut restored = untrained();
    assert!(!restored.is_initialized());
    load(&mut restored, &buffer).unwrap();
    assert!(restored.is_initialized());
}

#[test]
fn dense_dropout_and_static_models_report_their_state() {
    network! { type Fused = (DenseDropout<2, 4, Relu>, Dense<4, 1, Sigmoid>); }
    static FRESH: Fused = (
        DenseDropout::new(Dense::new(Relu), const_config!(Dropout::new(0.5))),
        Dense::new(Sigmoid),
    );
    assert!(!FRESH.is_initialized());
    let mut model = FRESH;
    model.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(0));
    assert!(model.is_initialized());
}

#[test]
fn the_fit_callback_needs_no_annotation_and_can_stop_the_run() {
    let (x, y) = data();
    let data = Dataset::new(&x, &y).unwrap();
    let mut model = untrained();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(2);
    model.initialize(&mut rng);
    let mut trainer = Trainer::<Net, _, 8>::new(Sgd::new(0.1).unwrap());
    let mut losses = Vec::new();
    let summary = trainer
        .fit(
            &mut model,
            &SparseCategoricalCrossEntropy::<u8>::new(),
            data,
            Some(data),
            &FitConfig::epochs(10),
            &mut rng,
            |report| {
                losses.push(report.train.loss);
                if report.epoch == 3 {
                    Control::Stop
                } else {
                    Control::Continue
                }
            },
        )
        .unwrap();
    assert_eq!((summary.epochs, losses.len()), (4, 4));
}

#[test]
fn split_standardise_train_and_score_with_the_library_helpers() {
    let (mut x, y) = data();
    // Features on a scale that needs standardising.
    for row in &mut x {
        row[0] = row[0] * 50.0 + 200.0;
    }
    let mut indices = vec![0; y.len()];
    let split = stratified_split::<_, 3>(&y, 15, 15, 11, &mut indices).unwrap();
    assert_eq!(
        (split.train.len(), split.validation.len(), split.test.len()),
        (60, 15, 15)
    );
    let scaler = Standardizer::fit_indexed(&x, split.train).unwrap();
    scaler.apply(&mut x);
    let gather =
        |part: &[usize]| -> (Vec<[f32; 4]>, Vec<u8>) { part.iter().map(|&i| (x[i], y[i])).unzip() };
    let (train_x, train_y) = gather(split.train);
    let (val_x, val_y) = gather(split.validation);
    let (test_x, test_y) = gather(split.test);
    let loss = SparseCategoricalCrossEntropy::<u8>::new();
    let mut model = untrained();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(4);
    model.initialize(&mut rng);
    let mut trainer = Trainer::<Net, _, 8>::new(Adam::new(0.02).unwrap());
    trainer
        .fit(
            &mut model,
            &loss,
            Dataset::new(&train_x, &train_y).unwrap(),
            Some(Dataset::new(&val_x, &val_y).unwrap()),
            &FitConfig::epochs(60).with_patience(10),
            &mut rng,
            |_| Control::Continue,
        )
        .unwrap();
    let test = Dataset::new(&test_x, &test_y).unwrap();
    let matrix = ConfusionMatrix::<3>::of_model(&model, &test_x, &test_y).unwrap();
    assert_eq!(matrix.total(), 15);
    // The confusion matrix's accuracy is evaluate's, counted another way.
    let evaluated = evaluate(&model, &loss, test).unwrap().accuracy.unwrap();
    assert!((matrix.accuracy().unwrap() - evaluated).abs() < 1e-6);
    assert!(evaluated >= 0.8, "test accuracy {evaluated}\n{matrix}");
    // Without a penalty, evaluate's loss is the data loss.
    let data_only = data_loss(&model, &loss, test);
    assert!((evaluate(&model, &loss, test).unwrap().loss - data_only).abs() < 1e-6);
}

#[test]
fn error_debug_reads_like_a_derived_one_on_the_host() {
    assert_eq!(
        format!("{:?}", Dropout::<4>::new(1.5).err().unwrap()),
        "DropoutRate { rate: 1.5 }"
    );
    assert_eq!(
        format!(
            "{:?}",
            Error::LengthMismatch {
                samples: 3,
                targets: 2
            }
        ),
        "LengthMismatch { samples: 3, targets: 2 }"
    );
    assert_eq!(format!("{:?}", Error::Uninitialized), "Uninitialized");
    assert_eq!(
        format!("{:#?}", Error::Clip { limit: -1.0 }),
        "Clip {\n    limit: -1.0,\n}"
    );
}

#[test]
fn a_single_layer_trains_from_zero_weights_like_a_linear_regression() {
    network! { type Linear = (Dense<1, 1>,); }
    let mut model: Linear = (Dense::new(Identity),);
    assert!(model.is_initialized());
    let (x, y) = ([[1.0], [2.0], [3.0]], [[2.0], [4.0], [6.0]]);
    let mut trainer = Trainer::<Linear, _, 3>::new(Sgd::new(0.1).unwrap());
    common::fit_plain(
        &mut trainer,
        &mut model,
        &MeanSquaredError,
        Dataset::new(&x, &y).unwrap(),
        &FitConfig::epochs(200),
        &mut Xoshiro128PlusPlus::seed_from_u64(0),
    )
    .unwrap();
    let slope = model.0.params.weights[0][0];
    assert!((slope - 2.0).abs() < 0.05, "slope {slope}");
}
