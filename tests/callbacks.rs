//! Keras' EarlyStopping and ReduceLROnPlateau: the decision logic replayed on the metric
//! sequences of `tests/reference/keras_callbacks.json` (Keras' own callbacks, see
//! `tests/reference/keras_callbacks.py`) and compared exactly; then `fit` end to end:
//! `restore_best_weights` gives back the best epoch's parameters bit for bit, the new
//! learning rate reaches the optimizer and the report, and misconfigurations are errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::*;
use serde_json::Value;

fn fixture() -> Value {
    let text = include_str!("reference/keras_callbacks.json");
    serde_json::from_str(text).unwrap()
}

fn monitor(name: &str) -> Monitor {
    match name {
        "loss" => Monitor::Loss,
        "accuracy" => Monitor::Accuracy,
        "val_loss" => Monitor::ValLoss,
        "val_accuracy" => Monitor::ValAccuracy,
        other => panic!("unknown monitor {other}"),
    }
}

fn mode(name: &str) -> Mode {
    match name {
        "auto" => Mode::Auto,
        "min" => Mode::Min,
        "max" => Mode::Max,
        other => panic!("unknown mode {other}"),
    }
}

/// An `f32` the fixture holds as the double of an `f32` value (exactly representable).
fn f32_of(value: &Value) -> f32 {
    let wide = value.as_f64().unwrap();
    let narrow = wide as f32;
    assert_eq!(f64::from(narrow), wide, "{wide} is not an f32 value");
    narrow
}

fn usize_of(value: &Value) -> usize {
    usize::try_from(value.as_u64().unwrap()).unwrap()
}

fn values(case: &Value) -> Vec<f32> {
    case["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(f32_of)
        .collect()
}

#[test]
fn the_fixture_records_keras_3_on_jax() {
    let versions = &fixture()["versions"];
    assert_eq!(versions["keras"], "3.15.1");
    assert_eq!(versions["backend"], "jax");
    assert!(versions["jax"].is_string());
}

fn early_stopping_of(case: &Value) -> EarlyStopping {
    let mut rule = EarlyStopping::new(monitor(case["monitor"].as_str().unwrap()))
        .with_mode(mode(case["mode"].as_str().unwrap()))
        .with_patience(usize_of(&case["patience"]))
        .with_min_delta(f32_of(&case["min_delta"]))
        .unwrap()
        .with_start_from_epoch(usize_of(&case["start_from_epoch"]))
        .with_restore_best_weights(case["restore_best_weights"].as_bool().unwrap());
    if !case["baseline"].is_null() {
        rule = rule.with_baseline(f32_of(&case["baseline"])).unwrap();
    }
    rule
}

#[test]
fn early_stopping_decides_as_keras_on_every_fixture_sequence() {
    let fixture = fixture();
    let cases = fixture["early_stopping"].as_array().unwrap();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let rule = early_stopping_of(case);
        assert_eq!(
            rule.monitor().greater_is_better(rule.mode()),
            case["greater_is_better"].as_bool().unwrap(),
            "{name}: direction"
        );
        let values = values(case);
        let mut state = EarlyStoppingState::new(rule);
        // Which epoch's weights the kept copy holds, as Keras' `best_weights`.
        let (mut kept, mut epochs) = (None, 0);
        for (epoch, &value) in values.iter().enumerate() {
            let verdict = state.on_epoch_end(epoch, value);
            if verdict.keep_weights {
                kept = Some(epoch);
            }
            epochs = epoch + 1;
            if verdict.stop {
                break;
            }
        }
        let weights_from = match state.restores() {
            Some(restored) => {
                assert_eq!(kept, Some(restored), "{name}: the restored copy");
                restored
            }
            None => epochs - 1,
        };
        let got = (
            epochs,
            state.stopped_epoch().unwrap_or(0),
            state.stopped_epoch().is_some(),
            state.best_epoch().unwrap_or(0),
            state.wait(),
            weights_from,
        );
        let keras = (
            usize_of(&case["epochs_run"]),
            usize_of(&case["stopped_epoch"]),
            case["stopped"].as_bool().unwrap(),
            usize_of(&case["best_epoch"]),
            usize_of(&case["wait"]),
            usize_of(&case["weights_from_epoch"]),
        );
        assert_eq!(
            got, keras,
            "{name}: (epochs run, stopped_epoch, stopped, best_epoch, wait, weights from \
             epoch) on {values:?}"
        );
    }
}

fn plateau_of(case: &Value) -> ReduceLrOnPlateau {
    ReduceLrOnPlateau::new(monitor(case["monitor"].as_str().unwrap()))
        .with_mode(mode(case["mode"].as_str().unwrap()))
        .with_factor(f32_of(&case["factor"]))
        .unwrap()
        .with_patience(usize_of(&case["patience"]))
        .with_min_delta(f32_of(&case["min_delta"]))
        .unwrap()
        .with_cooldown(usize_of(&case["cooldown"]))
        .with_min_lr(f32_of(&case["min_lr"]))
        .unwrap()
}

#[test]
fn reduce_lr_on_plateau_sets_keras_rates_bit_for_bit() {
    let fixture = fixture();
    let cases = fixture["reduce_lr_on_plateau"].as_array().unwrap();
    assert!(cases.len() >= 10, "{} cases", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let rule = plateau_of(case);
        assert_eq!(
            rule.monitor().greater_is_better(rule.mode()),
            case["greater_is_better"].as_bool().unwrap(),
            "{name}: direction"
        );
        let mut state = ReduceLrOnPlateauState::new(rule);
        let mut rate = f32_of(&case["learning_rate"]);
        let keras: Vec<f32> = case["rates_after_epoch"]
            .as_array()
            .unwrap()
            .iter()
            .map(f32_of)
            .collect();
        let values = values(case);
        for (epoch, (&value, &expected)) in values.iter().zip(&keras).enumerate() {
            if let Some(new) = state.on_epoch_end(value, rate) {
                rate = new;
            }
            assert_eq!(
                rate.to_bits(),
                expected.to_bits(),
                "{name}, epoch {epoch}: rate {rate:e}, Keras {expected:e} on {values:?}"
            );
        }
        assert_eq!(values.len(), keras.len(), "{name}");
    }
}

#[test]
fn the_keras_defaults_are_microtrains() {
    let es = EarlyStopping::new(Monitor::ValLoss);
    assert_eq!(
        (es.min_delta(), es.patience(), es.mode(), es.baseline()),
        (0.0, 0, Mode::Auto, None)
    );
    assert_eq!(
        (es.start_from_epoch(), es.restore_best_weights()),
        (0, false)
    );
    let rl = ReduceLrOnPlateau::new(Monitor::ValLoss);
    assert_eq!(
        (
            rl.factor(),
            rl.patience(),
            rl.min_delta(),
            rl.cooldown(),
            rl.min_lr()
        ),
        (0.1, 10, 1e-4, 0, 0.0)
    );
    assert_eq!(Monitor::ValLoss.keras_name(), "val_loss");
}

// ---- fit, end to end ----

type Net = (Dense<2, 16, Relu>, Dense<16, 3, Softmax>);
type Opt = Adam<<Net as Network>::Params>;
const CLASSES: usize = 3;

/// Overlapping blobs, few training points: the validation loss falls, then rises.
fn noisy(n: usize, seed: u64) -> (Vec<[f32; 2]>, Vec<u8>) {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let centres = [[1.0f32, 0.0], [-0.5, 0.9], [-0.5, -0.9]];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for k in 0..n {
        let class = k % CLASSES;
        let jitter = |rng: &mut Xoshiro128PlusPlus| 2.0 * rng::unit_f32(rng) - 1.0;
        x.push([
            centres[class][0] + 1.2 * jitter(&mut rng),
            centres[class][1] + 1.2 * jitter(&mut rng),
        ]);
        y.push(class as u8);
    }
    (x, y)
}

fn parameters(model: &Net) -> Vec<u32> {
    model.parameters().flatten().map(|w| w.to_bits()).collect()
}

/// Runs `fit` with `rule`, recording each epoch's validation loss and parameters.
fn fit_recording(rule: EarlyStopping, epochs: usize) -> (FitSummary, Net, Vec<f32>, Vec<Vec<u32>>) {
    let (x, y) = noisy(18, 1);
    let (vx, vy) = noisy(60, 2);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let mut model: Net = (Dense::new(Relu), Dense::new(Softmax));
    model.initialize(&mut rng);
    let mut trainer = Trainer::<Net, Opt, 6>::new(Adam::new(0.05).unwrap()).with_best_weights();
    let (mut losses, mut snapshots) = (Vec::new(), Vec::new());
    let summary = trainer
        .fit_with_callback(
            &mut model,
            &SparseCategoricalCrossEntropy::<u8>::new(),
            Dataset::new(&x, &y).unwrap(),
            Some(Dataset::new(&vx, &vy).unwrap()),
            &FitConfig::epochs(epochs).with_early_stopping(rule),
            &mut rng,
            with_model(|report: &EpochReport, model: &Net| {
                losses.push(report.validation.unwrap().loss);
                snapshots.push(parameters(model));
                Control::Continue
            }),
        )
        .unwrap();
    (summary, model, losses, snapshots)
}

/// The epoch of the lowest loss (the first of equals), as Keras' `best_epoch` with
/// `min_delta` 0.
fn lowest(losses: &[f32]) -> usize {
    (0..losses.len()).fold(0, |best, k| if losses[k] < losses[best] { k } else { best })
}

#[test]
fn restore_best_weights_restores_the_best_epoch_bit_for_bit_after_an_early_stop() {
    let rule = EarlyStopping::new(Monitor::ValLoss)
        .with_patience(5)
        .with_restore_best_weights(true);
    let (summary, model, losses, snapshots) = fit_recording(rule, 400);
    let stopped = summary.stopped_epoch.expect("the run overfits and stops");
    assert!(summary.stopped_early && summary.epochs == stopped + 1);
    let best = lowest(&losses);
    assert_eq!(stopped, best + 5, "losses {losses:?}");
    assert!(best > 0, "the best epoch is not the first: {losses:?}");
    assert_eq!(summary.best_epoch, Some(best));
    assert_eq!(summary.restored_epoch, Some(best));
    assert_eq!(
        parameters(&model),
        snapshots[best],
        "epoch {best}'s parameters"
    );
    assert_ne!(
        parameters(&model),
        snapshots[stopped],
        "not the last epoch's"
    );
}

#[test]
fn restore_best_weights_restores_without_an_early_stop_as_keras_3() {
    // A patience the run never exhausts: Keras 3 still restores the best epoch at the end.
    let rule = EarlyStopping::new(Monitor::ValLoss)
        .with_patience(1000)
        .with_restore_best_weights(true);
    let (summary, model, losses, snapshots) = fit_recording(rule, 40);
    assert_eq!((summary.epochs, summary.stopped_epoch), (40, None));
    let best = lowest(&losses);
    assert!(best < 39, "the last epoch is not the best: {losses:?}");
    assert_eq!(summary.restored_epoch, Some(best));
    assert_eq!(parameters(&model), snapshots[best]);
}

#[test]
fn without_restore_the_model_keeps_the_last_epochs_parameters() {
    let rule = EarlyStopping::new(Monitor::ValLoss).with_patience(5);
    let (summary, model, _, snapshots) = fit_recording(rule, 400);
    assert!(summary.stopped_early);
    assert_eq!(summary.restored_epoch, None);
    assert_eq!(&parameters(&model), snapshots.last().unwrap());
}

#[test]
fn the_trainer_without_room_refuses_restore_best_weights_before_training() {
    let (x, y) = noisy(9, 1);
    let data = Dataset::new(&x, &y).unwrap();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let mut model: Net = (Dense::new(Relu), Dense::new(Softmax));
    model.initialize(&mut rng);
    let before = parameters(&model);
    let mut trainer = Trainer::<Net, Opt, 6>::new(Adam::new(0.05).unwrap());
    let loss = SparseCategoricalCrossEntropy::<u8>::new();
    let restoring = EarlyStopping::new(Monitor::Loss).with_restore_best_weights(true);
    let result = trainer.fit(
        &mut model,
        &loss,
        data,
        None,
        &FitConfig::epochs(3).with_early_stopping(restoring),
        &mut rng,
        |_| Control::Continue,
    );
    assert_eq!(result.err(), Some(Error::NoRoomForBestWeights));
    // A validation metric without a validation set, for either callback.
    for config in [
        FitConfig::epochs(3).with_patience(2),
        FitConfig::epochs(3)
            .with_reduce_lr_on_plateau(ReduceLrOnPlateau::new(Monitor::ValAccuracy)),
    ] {
        let result = trainer.fit(&mut model, &loss, data, None, &config, &mut rng, |_| {
            Control::Continue
        });
        assert!(
            matches!(result, Err(Error::MissingMetric { .. })),
            "{result:?}"
        );
    }
    assert_eq!(parameters(&model), before, "nothing was trained");
    // A caller's buffer is room too, and the RAM figure counts the trainer's own copy.
    let mut buffer = <Net as Network>::Params::ZERO;
    let mut borrowing =
        Trainer::<Net, Opt, 6>::new(Adam::new(0.05).unwrap()).with_best_weights_in(&mut buffer);
    let summary = borrowing
        .fit(
            &mut model,
            &loss,
            data,
            None,
            &FitConfig::epochs(3).with_early_stopping(restoring),
            &mut rng,
            |_| Control::Continue,
        )
        .unwrap();
    assert!(summary.restored_epoch.is_some());
    // The copy adds its size, less the tail padding it may fill (under the alignment).
    let grown = Trainer::<Net, Opt, 6, BestWeightsBuffer<<Net as Network>::Params>>::RAM_BYTES
        - Trainer::<Net, Opt, 6>::RAM_BYTES;
    let copy = size_of::<<Net as Network>::Params>();
    assert!(
        grown <= copy && grown + align_of::<Trainer<Net, Opt, 6>>() > copy,
        "grown by {grown} B for a copy of {copy} B"
    );
    assert_eq!(size_of::<NoBestWeights>(), 0);
}

#[test]
fn an_accuracy_the_loss_does_not_compute_is_an_error_after_the_first_epoch() {
    type Reg = (Dense<2, 4, Tanh>, Dense<4, 1, Identity>);
    let x = [[0.0f32, 1.0], [1.0, 0.0]];
    let y = [[1.0f32], [0.0]];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let mut model: Reg = (Dense::new(Tanh), Dense::new(Identity));
    model.initialize(&mut rng);
    let mut trainer = Trainer::<Reg, Sgd, 2>::new(Sgd::new(0.1).unwrap());
    let config = FitConfig::epochs(5).with_early_stopping(EarlyStopping::new(Monitor::Accuracy));
    let result = trainer.fit(
        &mut model,
        &MeanSquaredError,
        Dataset::new(&x, &y).unwrap(),
        None,
        &config,
        &mut rng,
        |_| Control::Continue,
    );
    assert_eq!(
        result.err(),
        Some(Error::MissingMetric {
            monitor: Monitor::Accuracy
        })
    );
}

#[test]
fn fit_lowers_the_learning_rate_as_the_replayed_rule_does() {
    let (x, y) = noisy(18, 1);
    let (vx, vy) = noisy(60, 2);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let mut model: Net = (Dense::new(Relu), Dense::new(Softmax));
    model.initialize(&mut rng);
    let mut trainer = Trainer::<Net, Opt, 6>::new(Adam::new(0.05).unwrap());
    let rule = ReduceLrOnPlateau::new(Monitor::ValLoss)
        .with_patience(2)
        .with_factor(0.5)
        .unwrap()
        .with_cooldown(1)
        .with_min_lr(1e-3)
        .unwrap();
    let mut reports = Vec::new();
    trainer
        .fit(
            &mut model,
            &SparseCategoricalCrossEntropy::<u8>::new(),
            Dataset::new(&x, &y).unwrap(),
            Some(Dataset::new(&vx, &vy).unwrap()),
            &FitConfig::epochs(60).with_reduce_lr_on_plateau(rule),
            &mut rng,
            |report| {
                reports.push(*report);
                Control::Continue
            },
        )
        .unwrap();
    let mut replay = ReduceLrOnPlateauState::new(rule);
    let mut rate = 0.05f32;
    let mut reductions = 0;
    for report in &reports {
        assert_eq!(
            report.learning_rate.to_bits(),
            rate.to_bits(),
            "epoch {}",
            report.epoch
        );
        let new = replay.on_epoch_end(report.validation.unwrap().loss, rate);
        assert_eq!(report.new_learning_rate, new, "epoch {}", report.epoch);
        if let Some(new) = new {
            rate = new;
            reductions += 1;
        }
    }
    assert!(
        reductions >= 3,
        "{reductions} reductions in {} epochs",
        reports.len()
    );
    assert_eq!(
        trainer.optimizer().learning_rate().to_bits(),
        rate.to_bits()
    );
    assert!(rate >= 1e-3);
}

#[test]
fn an_optimizer_refusing_the_new_rate_ends_the_run_with_its_error() {
    // A rate set by a schedule cannot be set (Keras: TypeError): the plateau rule's first
    // reduction is refused. The smallest positive rate, constant, changes no weight, so the
    // loss stops improving after the first epoch.
    let (x, y) = noisy(9, 1);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let mut model: Net = (Dense::new(Relu), Dense::new(Softmax));
    model.initialize(&mut rng);
    let tiny = f32::from_bits(1);
    let schedule = ExponentialDecay::new(tiny, 1000, 1.0, false).unwrap();
    let mut trainer = Trainer::<Net, Scheduled<Sgd, ExponentialDecay>, 6>::new(Scheduled::new(
        Sgd::new(tiny).unwrap(),
        schedule,
    ));
    let rule = ReduceLrOnPlateau::new(Monitor::Loss)
        .with_patience(0)
        .with_factor(0.5)
        .unwrap();
    let mut epochs = 0;
    let result = trainer.fit(
        &mut model,
        &SparseCategoricalCrossEntropy::<u8>::new(),
        Dataset::new(&x, &y).unwrap(),
        None,
        &FitConfig::epochs(10)
            .with_shuffle(false)
            .with_reduce_lr_on_plateau(rule),
        &mut rng,
        |_| {
            epochs += 1;
            Control::Continue
        },
    );
    assert_eq!(result.err(), Some(Error::ScheduledLearningRate));
    assert_eq!(
        epochs, 1,
        "the error came after epoch 1, before its callback"
    );
    let rate = Optimizer::<<Net as Network>::Params>::learning_rate(trainer.optimizer());
    assert_eq!(rate, tiny, "the rate is unchanged");
}
