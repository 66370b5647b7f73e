//! Training learns: XOR, a multi-class problem on held-out points, batches of one and
//! partial last batches; early stopping stops; the RAM figure adds up.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::normal;
use microtrain::rng::unit_f32 as unit;
use microtrain::*;

#[test]
fn xor_is_learned() {
    type Net = (Dense<2, 8, Tanh>, Dense<8, 1, Sigmoid>);
    let x = [[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let y = [[0.0f32], [1.0], [1.0], [0.0]];
    let data = Dataset::new(&x, &y).unwrap();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let mut model: Net = (Dense::new(Tanh), Dense::new(Sigmoid));
    model.initialize(&mut rng);
    let mut trainer =
        Trainer::<Net, Adam<<Net as Network>::Params>, 4>::new(Adam::new(0.05).unwrap());
    trainer
        .fit(
            &mut model,
            &BinaryCrossEntropy,
            data,
            None,
            &FitConfig::epochs(500),
            &mut rng,
            |_: &EpochReport| Control::Continue,
        )
        .unwrap();
    let metrics = evaluate(&model, &BinaryCrossEntropy, data).unwrap();
    let outputs: Vec<f32> = x.iter().map(|s| model.infer(s)[0]).collect();
    assert_eq!(
        metrics.accuracy,
        Some(1.0),
        "XOR inputs {x:?}, outputs {outputs:?}, targets {y:?}"
    );
}

const CLASSES: usize = 3;
/// Three well separated Gaussian blobs: the centres are ≥ 3.4 apart with σ = 0.5, so the
/// Bayes error is about 2·Φ(-3.4) ≈ 0.1% and ≥ 95% held-out accuracy is an easy bar for a
/// model that learned, and out of reach (33%) for one that did not.
const CENTRES: [[f32; 2]; CLASSES] = [[0.0, 2.0], [-1.7, -1.0], [1.7, -1.0]];
const SPREAD: f32 = 0.5;
const MIN_ACCURACY: f32 = 0.95;

fn blobs(per_class: usize, seed: u64) -> (Vec<[f32; 2]>, Vec<u8>) {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for k in 0..per_class * CLASSES {
        let class = k % CLASSES;
        let [cx, cy] = CENTRES[class];
        x.push([
            cx + SPREAD * normal(&mut rng),
            cy + SPREAD * normal(&mut rng),
        ]);
        y.push(class as u8);
    }
    (x, y)
}

type BlobNet = (Dense<2, 16, Relu>, Dense<16, 3, Softmax>);

/// Trains on 150 blob points with batches of `B` and returns the accuracy on 90 others.
fn blob_accuracy<const B: usize>(epochs: usize, learning_rate: f32) -> f32 {
    let (x, y) = blobs(50, 10);
    let (test_x, test_y) = blobs(30, 11);
    let train = Dataset::new(&x, &y).unwrap();
    let test = Dataset::new(&test_x, &test_y).unwrap();
    let loss = SparseCategoricalCrossEntropy::<u8>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(12);
    let mut model: BlobNet = (Dense::new(Relu), Dense::new(Softmax));
    model.initialize(&mut rng);
    let before = evaluate(&model, &loss, test).unwrap();
    let mut trainer = Trainer::<BlobNet, Adam<<BlobNet as Network>::Params>, B>::new(
        Adam::new(learning_rate).unwrap(),
    );
    let summary = trainer
        .fit(
            &mut model,
            &loss,
            train,
            None,
            &FitConfig::epochs(epochs),
            &mut rng,
            |_: &EpochReport| Control::Continue,
        )
        .unwrap();
    assert_eq!(summary.last.map(|r| r.skipped_steps), Some(0));
    let after = evaluate(&model, &loss, test).unwrap();
    assert!(
        after.loss < before.loss,
        "B = {B}: held-out loss went from {} to {}",
        before.loss,
        after.loss
    );
    after.accuracy.unwrap()
}

#[test]
fn blobs_are_classified_on_held_out_points() {
    // 150 samples in batches of 16: nine full batches and a partial one of 6 per epoch.
    let accuracy = blob_accuracy::<16>(60, 0.01);
    assert!(
        accuracy >= MIN_ACCURACY,
        "held-out accuracy {accuracy}, expected ≥ {MIN_ACCURACY}"
    );
}

#[test]
fn batches_of_one_train() {
    let accuracy = blob_accuracy::<1>(10, 0.003);
    assert!(
        accuracy >= MIN_ACCURACY,
        "held-out accuracy {accuracy} with B = 1, expected ≥ {MIN_ACCURACY}"
    );
}

/// Counts `on_batch` calls and checks their numbering.
struct BatchCounter {
    calls: usize,
    expected_batches: usize,
}

impl<N, O> Callback<N, O> for &mut BatchCounter {
    fn on_batch(&mut self, batch: usize, batches: usize) {
        assert_eq!(batches, self.expected_batches, "batches per epoch");
        assert_eq!(batch, self.calls % self.expected_batches, "batch numbering");
        self.calls += 1;
    }
    fn on_epoch(&mut self, _: &EpochReport, _: &N, _: &O) -> Control {
        Control::Continue
    }
}

#[test]
fn a_partial_last_batch_is_one_step_over_the_remaining_samples() {
    // Without shuffling (and without dropout) an epoch of 10 samples in batches of 4 must
    // be exactly the steps on samples 0..4, 4..8 and 8..10.
    type Net = (Dense<3, 5, Tanh>, Dense<5, 2, Identity>);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(20);
    let x: Vec<[f32; 3]> = (0..10)
        .map(|_| core::array::from_fn(|_| 2.0 * unit(&mut rng) - 1.0))
        .collect();
    let y: Vec<[f32; 2]> = x.iter().map(|s| [s[0] * s[1], s[2] - s[0]]).collect();
    let data = Dataset::new(&x, &y).unwrap();
    let mut initial: Net = (Dense::new(Tanh), Dense::new(Identity));
    initial.initialize(&mut rng);

    let mut fitted = initial;
    let mut trainer = Trainer::<Net, Sgd, 4>::new(Sgd::new(0.1).unwrap());
    let mut counter = BatchCounter {
        calls: 0,
        expected_batches: 3,
    };
    let summary = trainer
        .fit_with_callback(
            &mut fitted,
            &MeanSquaredError,
            data,
            None,
            &FitConfig::epochs(2).with_shuffle(false),
            &mut Xoshiro128PlusPlus::seed_from_u64(21),
            &mut counter,
        )
        .unwrap();
    assert_eq!(counter.calls, 6, "two epochs of three batches");

    let mut stepped = initial;
    let mut manual = Trainer::<Net, Sgd, 4>::new(Sgd::new(0.1).unwrap());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(21);
    let (mut loss_sum, mut rows) = (0.0f32, 0usize);
    for _ in 0..2 {
        (loss_sum, rows) = (0.0, 0);
        for batch in [&[0usize, 1, 2, 3][..], &[4, 5, 6, 7], &[8, 9]] {
            let report = manual
                .step(&mut stepped, &MeanSquaredError, data, batch, &mut rng)
                .unwrap();
            assert_eq!(report.rows, batch.len());
            loss_sum += report.loss * report.rows as f32;
            rows += report.rows;
        }
    }
    let a: Vec<f32> = fitted.parameters().flatten().copied().collect();
    let b: Vec<f32> = stepped.parameters().flatten().copied().collect();
    for (k, (p, q)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            p.to_bits(),
            q.to_bits(),
            "parameter {k}: fit gave {p}, the three manual steps per epoch {q}"
        );
    }
    // The epoch's loss weights each batch by its size.
    let reported = summary.last.unwrap().train.loss;
    let expected = loss_sum / rows as f32;
    assert!(
        (reported - expected).abs() <= 1e-6 * expected.abs(),
        "epoch loss {reported}, expected the size-weighted batch mean {expected}"
    );
}

/// Keras' `EarlyStopping(monitor, patience, min_delta)` replayed on a sequence of losses:
/// the number of epochs it lets run (written out here, independently of the crate's
/// `EarlyStoppingState`, which `tests/callbacks.rs` replays against Keras itself).
fn keras_early_stopping_epochs(losses: &[f32], patience: usize, min_delta: f32) -> usize {
    let (mut best, mut wait) = (f32::INFINITY, 0usize);
    for (epoch, &loss) in losses.iter().enumerate() {
        wait += 1;
        if loss + min_delta < best {
            (best, wait) = (loss, 0);
        } else if wait >= patience && epoch > 0 {
            return epoch + 1;
        }
    }
    losses.len()
}

#[test]
fn early_stopping_stops_after_patience_epochs_without_improvement() {
    // With a min_delta no epoch can beat, only the first epoch improves (on +∞); Keras then
    // runs `patience` more epochs and stops.
    type Net = (Dense<2, 4, Tanh>, Dense<4, 3, Softmax>);
    let (x, y) = blobs(10, 30);
    let data = Dataset::new(&x, &y).unwrap();
    for patience in [1usize, 2, 5] {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(31);
        let mut model: Net = (Dense::new(Tanh), Dense::new(Softmax));
        model.initialize(&mut rng);
        let mut trainer = Trainer::<Net, Sgd, 8>::new(Sgd::new(0.01).unwrap());
        let rule = EarlyStopping::new(Monitor::ValLoss)
            .with_patience(patience)
            .with_min_delta(1e6)
            .unwrap();
        let config = FitConfig::epochs(100).with_early_stopping(rule);
        let summary = trainer
            .fit(
                &mut model,
                &SparseCategoricalCrossEntropy::<u8>::new(),
                data,
                Some(data),
                &config,
                &mut rng,
                |_: &EpochReport| Control::Continue,
            )
            .unwrap();
        assert!(summary.stopped_early, "patience {patience}: {summary:?}");
        assert_eq!(
            summary.epochs,
            1 + patience,
            "patience {patience}: ran {} epochs, Keras runs 1 improving + {patience} more",
            summary.epochs
        );
    }
}

#[test]
fn early_stopping_on_an_overfitting_run_stops_where_keras_would() {
    // Few, overlapping training points and a wide network: the validation loss bottoms
    // out and rises again. The stop must fall where Keras' rule puts it on the reported
    // validation losses.
    type Net = (Dense<2, 32, Relu>, Dense<32, 3, Softmax>);
    const PATIENCE: usize = 4;
    const MIN_DELTA: f32 = 1e-3;
    const MAX_EPOCHS: usize = 2000;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(40);
    let noisy = |n: usize, rng: &mut Xoshiro128PlusPlus| {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for k in 0..n {
            let class = k % CLASSES;
            let [cx, cy] = CENTRES[class];
            x.push([0.5 * cx + 1.5 * normal(rng), 0.5 * cy + 1.5 * normal(rng)]);
            y.push(class as u8);
        }
        (x, y)
    };
    let (x, y) = noisy(24, &mut rng);
    let (vx, vy) = noisy(60, &mut rng);
    let train = Dataset::new(&x, &y).unwrap();
    let validation = Dataset::new(&vx, &vy).unwrap();
    let mut model: Net = (Dense::new(Relu), Dense::new(Softmax));
    model.initialize(&mut rng);
    let mut trainer =
        Trainer::<Net, Adam<<Net as Network>::Params>, 8>::new(Adam::new(0.005).unwrap());
    let rule = EarlyStopping::new(Monitor::ValLoss)
        .with_patience(PATIENCE)
        .with_min_delta(MIN_DELTA)
        .unwrap();
    let config = FitConfig::epochs(MAX_EPOCHS).with_early_stopping(rule);
    let mut losses = Vec::new();
    let summary = trainer
        .fit(
            &mut model,
            &SparseCategoricalCrossEntropy::<u8>::new(),
            train,
            Some(validation),
            &config,
            &mut rng,
            |r: &EpochReport| {
                losses.push(r.validation.unwrap().loss);
                Control::Continue
            },
        )
        .unwrap();
    let expected = keras_early_stopping_epochs(&losses, PATIENCE, MIN_DELTA);
    assert!(
        summary.stopped_early && summary.epochs < MAX_EPOCHS,
        "the run did not stop early: {summary:?}"
    );
    assert_eq!(
        summary.epochs, expected,
        "stopped after {} epochs, Keras' rule gives {expected} on validation losses {losses:?}",
        summary.epochs
    );
}

#[test]
fn the_callback_can_stop_training() {
    type Net = (Dense<2, 4, Tanh>, Dense<4, 3, Softmax>);
    let (x, y) = blobs(5, 50);
    let data = Dataset::new(&x, &y).unwrap();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(51);
    let mut model: Net = (Dense::new(Tanh), Dense::new(Softmax));
    model.initialize(&mut rng);
    let mut trainer = Trainer::<Net, Sgd, 4>::new(Sgd::new(0.01).unwrap());
    let summary = trainer
        .fit(
            &mut model,
            &SparseCategoricalCrossEntropy::<u8>::new(),
            data,
            None,
            &FitConfig::epochs(100),
            &mut rng,
            |r: &EpochReport| {
                if r.epoch == 2 {
                    Control::Stop
                } else {
                    Control::Continue
                }
            },
        )
        .unwrap();
    assert_eq!(summary.epochs, 3, "{summary:?}");
    assert!(
        !summary.stopped_early,
        "a callback stop is not early stopping"
    );
}

#[test]
fn training_ram_is_the_model_plus_the_trainer() {
    type Net = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>);
    type Opt = Adam<<Net as Network>::Params>;
    type T = Trainer<Net, Opt, 32>;
    let model = size_of::<Net>();
    let trainer = size_of::<T>();
    assert_eq!(T::RAM_BYTES, trainer);
    assert_eq!(
        T::TRAINING_RAM_BYTES,
        model + trainer,
        "model {model} + trainer {trainer}"
    );
    // What the crate docs say the trainer holds: gradients (one float per parameter), Adam's
    // two moments, one [f32; width] per layer boundary and batch row, 8 bytes per dropout.
    let floats = <Net as Network>::PARAMETERS * 3 + 32 * (30 + 64 + 64 + 1);
    let documented = floats * size_of::<f32>() + 8;
    assert!(
        trainer >= documented,
        "trainer {trainer} bytes, but its documented buffers alone need {documented}"
    );
    assert!(model >= <Net as Network>::PARAMETERS * size_of::<f32>());
}
