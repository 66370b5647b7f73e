//! The tutorial's Keras program on real data: Breast Cancer Wisconsin (569 samples, 30
//! features, malignant/benign).
//!
//! ```text
//! cargo run --release --example breast_cancer              # one run, seed 0
//! cargo run --release --example breast_cancer -- --seeds 10
//! ```
//!
//! Set-up, as the Keras reference: an 80/20 stratified split (fixed: `--split-seed`,
//! default 0), features standardized with the training split's mean and std,
//! `Dense(64, relu, l2(0.01))` → `Dropout(0.5)` → `Dense(1, sigmoid)`, Adam with Keras'
//! defaults, binary cross-entropy, batches of 32, 10 epochs. The validation figures
//! printed each epoch are on the test split, as in the Keras reference
//! (`validation_data=(x_test, y_test)`): nothing is tuned on them here, but they are not
//! a separate validation set.
//!
//! The training seed (`--seed`, or seeds `0..N` with `--seeds N`) draws the initial
//! weights, the order of every epoch and every dropout mask; the split stays the same.
//!
//! `--patience P` adds what a Keras user adds to the tutorial for longer runs:
//! `EarlyStopping(monitor="val_loss", patience=P, restore_best_weights=True)`, e.g.
//! `-- --epochs 200 --patience 10`. Its validation loss is the test split's (as the
//! reference's `validation_data`), so the test figures then no longer come from data the run
//! never looked at; a study that tunes on them should hold out a validation split instead.

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use common::{BreastCancer, Result, Summary, TutorialTrainer};
use indicatif::{ProgressBar, ProgressStyle};
use microtrain::*;

const USAGE: &str =
    "usage: breast_cancer [--seed S | --seeds N] [--epochs E] [--split-seed S] [--patience P]";

/// The tutorial's settings.
const L2: f32 = 0.01;
const RATE: f32 = 0.5;
const EPOCHS: usize = 10;

fn main() -> Result<()> {
    let args = common::Args::parse(
        &[
            "--seed",
            "--seeds",
            "--epochs",
            "--split-seed",
            "--patience",
        ],
        &[],
        USAGE,
    )?;
    let epochs = args.value("--epochs")?.unwrap_or(EPOCHS);
    let split_seed = args.value("--split-seed")?.unwrap_or(0);
    let data = BreastCancer::load(split_seed)?;

    let (train_counts, test_counts) = (
        common::class_counts(&data.train_labels),
        common::class_counts(&data.test_labels),
    );
    println!("Breast Cancer Wisconsin (Diagnostic): 569 samples x 30 features");
    println!(
        "split (seed {split_seed}, stratified): train {} (malignant {}, benign {}), \
         test {} (malignant {}, benign {}); standardized with the training split's statistics",
        data.train_x.len(),
        train_counts.first().unwrap_or(&0),
        train_counts.get(1).unwrap_or(&0),
        data.test_x.len(),
        test_counts.first().unwrap_or(&0),
        test_counts.get(1).unwrap_or(&0),
    );
    println!(
        "model: Dense<30, 64, Relu> l2({L2}) -> Dropout({RATE}) -> Dense<64, 1, Sigmoid>, \
         {} parameters; Adam (Keras defaults), binary cross-entropy, batch 32, {epochs} epochs",
        <common::Tutorial as Network>::PARAMETERS
    );
    println!("{}", summary::<common::Tutorial>());
    println!(
        "RAM to train (model + gradients + Adam state + batch buffers): {} bytes\n",
        TutorialTrainer::TRAINING_RAM_BYTES
    );

    match args.value::<u64>("--seeds")? {
        Some(_) if args.value::<usize>("--patience")?.is_some() => {
            Err("--patience applies to one run, not to --seeds".into())
        }
        Some(seeds) => many_seeds(&data, seeds, epochs),
        None => {
            let stopping = args.value::<usize>("--patience")?.map(|patience| {
                EarlyStopping::new(Monitor::ValLoss)
                    .with_patience(patience)
                    .with_restore_best_weights(true)
            });
            one_run(&data, args.value("--seed")?.unwrap_or(0), epochs, stopping)
        }
    }
}

/// One seed, Keras-style: a progress bar while an epoch runs, then its line.
fn one_run(
    data: &BreastCancer,
    seed: u64,
    epochs: usize,
    stopping: Option<EarlyStopping>,
) -> Result<()> {
    println!("training seed {seed}; val = the test split, as in the Keras reference");
    let progress = EpochPrinter {
        epoch: 0,
        epochs,
        bar: None,
        style: ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} batches")?
            .progress_chars("=> "),
    };
    let trained = common::train_tutorial_stopping(
        data.train()?,
        Some(data.test()?),
        L2,
        RATE,
        epochs,
        stopping,
        seed,
        progress,
    )?;
    if let Some(rule) = stopping {
        let stopped = trained.summary.stopped_epoch.map_or_else(
            || "ran every epoch".to_string(),
            |e| format!("stopped after epoch {}", e + 1),
        );
        let restored = trained
            .summary
            .restored_epoch
            .map_or_else(|| "none".to_string(), |e| format!("epoch {}", e + 1));
        println!(
            "early stopping (val_loss, patience {}): {stopped}; weights restored from {restored}",
            rule.patience()
        );
    }
    let test = evaluate(&trained.model, &BinaryCrossEntropy, data.test()?)?;
    let train = evaluate(&trained.model, &BinaryCrossEntropy, data.train()?)?;
    println!();
    println!(
        "test accuracy      {:.4}",
        test.accuracy.unwrap_or(f32::NAN)
    );
    println!(
        "test loss          {:.4} (cross-entropy {:.4} + L2 penalty)",
        test.loss,
        data_loss(&trained.model, &BinaryCrossEntropy, data.test()?)
    );
    // Label 0 is malignant: the class a screening must not miss.
    let matrix = ConfusionMatrix::<2>::of_model(&trained.model, &data.test_x, &data.test_labels)?;
    let metric = |m: Option<f32>| m.unwrap_or(f32::NAN);
    println!(
        "test malignant     precision {:.4}  recall {:.4}  F1 {:.4}",
        metric(matrix.precision(0)),
        metric(matrix.recall(0)),
        metric(matrix.f1(0))
    );
    println!("test confusion matrix (0 = malignant, 1 = benign):\n{matrix}");
    println!(
        "train accuracy     {:.4} (after training, dropout off)",
        train.accuracy.unwrap_or(f32::NAN)
    );
    println!(
        "training time      {} ({epochs} epochs, including per-epoch validation)",
        millis(trained.time)
    );
    let best_weights = if stopping.is_some() {
        common::BEST_WEIGHTS_BYTES
    } else {
        0
    };
    println!(
        "RAM for training   {} bytes",
        TutorialTrainer::TRAINING_RAM_BYTES + best_weights
    );
    Ok(())
}

/// Seeds `0..seeds` on the same split: test accuracy per seed and its summary.
fn many_seeds(data: &BreastCancer, seeds: u64, epochs: usize) -> Result<()> {
    println!("training seeds 0..{seeds} on the same split (the seed: init, shuffling, dropout)");
    let bar = ProgressBar::new(seeds)
        .with_style(ProgressStyle::with_template("seed {pos}/{len} [{bar:30}]")?);
    let (mut accuracies, mut total) = (Vec::new(), Duration::ZERO);
    for seed in 0..seeds {
        let trained =
            common::train_tutorial(data.train()?, None, L2, RATE, epochs, seed, common::silent)?;
        let test = evaluate(&trained.model, &BinaryCrossEntropy, data.test()?)?;
        let accuracy = f64::from(test.accuracy.unwrap_or(f32::NAN));
        bar.suspend(|| {
            println!(
                "seed {seed:>3}  test accuracy {accuracy:.4}  test loss {:.4}  time {}",
                test.loss,
                millis(trained.time)
            )
        });
        bar.inc(1);
        accuracies.push(accuracy);
        total += trained.time;
    }
    bar.finish_and_clear();
    let s = Summary::of(&accuracies);
    println!();
    println!(
        "test accuracy over {seeds} seeds: mean {:.4}, std {:.4} (population), min {:.4}, max {:.4}",
        s.mean, s.std, s.min, s.max
    );
    println!(
        "training time: {} per seed, {} in all",
        millis(total / u32::try_from(seeds.max(1))?),
        millis(total)
    );
    println!(
        "RAM for training: {} bytes",
        TutorialTrainer::TRAINING_RAM_BYTES
    );
    Ok(())
}

fn millis(time: Duration) -> String {
    format!("{:.1} ms", time.as_secs_f64() * 1e3)
}

/// Prints one Keras-style line per epoch, with a progress bar over the batches meanwhile.
struct EpochPrinter {
    epoch: usize,
    epochs: usize,
    bar: Option<ProgressBar>,
    style: ProgressStyle,
}

impl<N, O> Callback<N, O> for EpochPrinter {
    fn on_batch(&mut self, batch: usize, batches: usize) {
        let prefix = format!("{:>2}/{}", self.epoch + 1, self.epochs);
        let bar = self.bar.get_or_insert_with(|| {
            ProgressBar::new(batches as u64)
                .with_style(self.style.clone())
                .with_prefix(prefix)
        });
        bar.set_position(batch as u64 + 1);
    }

    fn on_epoch(&mut self, report: &EpochReport, _: &N, _: &O) -> Control {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.epoch = report.epoch + 1;
        let validation = report.validation.unwrap_or_default();
        println!(
            "epoch {:>2}/{}  loss {:.4}  accuracy {:.4}  val_loss {:.4}  val_accuracy {:.4}",
            report.epoch + 1,
            self.epochs,
            report.train.loss,
            report.train.accuracy.unwrap_or(f32::NAN),
            validation.loss,
            validation.accuracy.unwrap_or(f32::NAN),
        );
        Control::Continue
    }
}
