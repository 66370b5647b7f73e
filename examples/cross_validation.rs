//! Choosing the tutorial's L2 factor and dropout rate by stratified 5-fold
//! cross-validation on the training split, then measuring the choice on the test split.
//!
//! ```text
//! cargo run --release --example cross_validation
//! ```
//!
//! Breast Cancer Wisconsin, the same stratified 80/20 split as the `breast_cancer` example
//! (455 training, 114 test samples). The tutorial's model (`Dense(64, relu, l2(λ))` →
//! `Dropout(rate)` → `Dense(1, sigmoid)`, Adam, batch 32, 10 epochs) for every
//! λ ∈ {0, 1e-4, 1e-3, 1e-2, 1e-1} and rate ∈ {0, 0.2, 0.5}:
//!
//! - [`KFold::stratified`] deals the 455 training samples to 5 folds (`--fold-seed`);
//! - for each fold, the features are re-standardized with the statistics of the other four
//!   folds (so nothing about the validation fold leaks into training), the model is trained
//!   on those four from seeds `0..--seeds` and scored on the held-out fold;
//! - a setting's score on a fold is the mean over the seeds; the table shows the mean ± std
//!   (population) over the 5 folds of validation accuracy and of validation cross-entropy
//!   **without** the penalty (the penalized loss is not comparable across λ).
//!
//! The best setting has the highest mean validation accuracy (ties: the lower mean
//! cross-entropy). It is retrained on all 455 training samples from seeds `0..10`
//! (`--final-seeds`), and its test accuracy is compared with the tutorial's setting
//! (λ = 0.01, rate = 0.5) trained from the same seeds.

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::{BreastCancer, Result, Summary};
use indicatif::{ProgressBar, ProgressStyle};
use microtrain::*;

const USAGE: &str =
    "usage: cross_validation [--folds K] [--fold-seed S] [--seeds N] [--final-seeds N]";

const L2S: [f32; 5] = [0.0, 1e-4, 1e-3, 1e-2, 1e-1];
const RATES: [f32; 3] = [0.0, 0.2, 0.5];
const EPOCHS: usize = 10;
/// The tutorial's choice, for comparison.
const TUTORIAL: (f32, f32) = (0.01, 0.5);

/// Cross-validated scores of one (λ, rate) setting.
struct Scores {
    l2: f32,
    rate: f32,
    accuracy: Summary,
    loss: Summary,
}

fn main() -> Result<()> {
    let args = common::Args::parse(
        &["--folds", "--fold-seed", "--seeds", "--final-seeds"],
        &[],
        USAGE,
    )?;
    let k: usize = args.value("--folds")?.unwrap_or(5);
    let fold_seed: u64 = args.value("--fold-seed")?.unwrap_or(0);
    let seeds: u64 = args.value("--seeds")?.unwrap_or(3);
    let final_seeds: u64 = args.value("--final-seeds")?.unwrap_or(10);
    let data = BreastCancer::load(0)?;
    let folds = KFold::stratified(
        &data.train_labels,
        k,
        &mut Xoshiro128PlusPlus::seed_from_u64(fold_seed),
    )?;

    println!(
        "Breast cancer: {} training samples in {k} stratified folds (fold seed {fold_seed}), \
         {} test samples held out",
        data.train_x.len(),
        data.test_x.len()
    );
    println!(
        "tutorial model, Adam, batch 32, {EPOCHS} epochs; each fold trained from seeds 0..{seeds}\n"
    );

    // The folds' data, gathered once: (train x, train y, validation x, validation y).
    let mut fold_data = Vec::new();
    for fold in 0..k {
        let train: Vec<usize> = folds.train(fold)?.collect();
        let validation: Vec<usize> = folds.validation(fold)?.collect();
        let mut train_x = common::gather(&data.train_x, &train);
        let mut validation_x = common::gather(&data.train_x, &validation);
        // The training split is already standardized; standardizing again with the
        // four training folds' statistics equals standardizing the raw values with them.
        let scaler = Standardizer::fit(&train_x)?;
        scaler.apply(&mut train_x);
        scaler.apply(&mut validation_x);
        fold_data.push((
            train_x,
            common::gather(&data.train_y, &train),
            validation_x,
            common::gather(&data.train_y, &validation),
        ));
    }

    let settings: Vec<(f32, f32)> = L2S
        .iter()
        .flat_map(|&l2| RATES.iter().map(move |&rate| (l2, rate)))
        .collect();
    let bar = ProgressBar::new((settings.len() * k) as u64 * seeds).with_style(
        ProgressStyle::with_template("[{bar:30}] {pos}/{len} runs")?.progress_chars("=> "),
    );
    let start = Instant::now();
    let mut table = Vec::new();
    for &(l2, rate) in &settings {
        let (mut accuracies, mut losses) = (Vec::new(), Vec::new());
        for (train_x, train_y, validation_x, validation_y) in &fold_data {
            let validation = Dataset::new(validation_x, validation_y)?;
            let (mut accuracy, mut loss) = (0.0, 0.0);
            for seed in 0..seeds {
                let trained = common::train_tutorial(
                    Dataset::new(train_x, train_y)?,
                    None,
                    l2,
                    rate,
                    EPOCHS,
                    seed,
                    common::silent,
                )?;
                let metrics = evaluate(&trained.model, &BinaryCrossEntropy, validation)?;
                accuracy += f64::from(metrics.accuracy.unwrap_or(f32::NAN));
                loss += f64::from(data_loss(&trained.model, &BinaryCrossEntropy, validation));
                bar.inc(1);
            }
            accuracies.push(accuracy / seeds as f64);
            losses.push(loss / seeds as f64);
        }
        table.push(Scores {
            l2,
            rate,
            accuracy: Summary::of(&accuracies),
            loss: Summary::of(&losses),
        });
    }
    bar.finish_and_clear();
    let search_time = start.elapsed();

    let best = table
        .iter()
        .max_by(|a, b| {
            a.accuracy
                .mean
                .total_cmp(&b.accuracy.mean)
                .then(b.loss.mean.total_cmp(&a.loss.mean))
        })
        .ok_or("empty grid")?;
    println!(
        "{:>7} {:>5}   {:>17}   {:>17}",
        "l2", "rate", "val accuracy", "val cross-entropy"
    );
    for s in &table {
        let mark = if std::ptr::eq(s, best) {
            "  <- best"
        } else if (s.l2, s.rate) == TUTORIAL {
            "  (tutorial)"
        } else {
            ""
        };
        println!(
            "{:>7} {:>5}   {:.4} ± {:.4}   {:.4} ± {:.4}{mark}",
            s.l2, s.rate, s.accuracy.mean, s.accuracy.std, s.loss.mean, s.loss.std
        );
    }
    println!(
        "(mean ± std over {k} folds; {} training runs in {:.1} s)\n",
        settings.len() * k * seeds as usize,
        search_time.as_secs_f64()
    );

    println!(
        "retrained on all {} training samples, seeds 0..{final_seeds}, scored on the test split:",
        data.train_x.len()
    );
    for (name, (l2, rate)) in [("chosen", (best.l2, best.rate)), ("tutorial", TUTORIAL)] {
        let mut accuracies = Vec::new();
        for seed in 0..final_seeds {
            let trained = common::train_tutorial(
                data.train()?,
                None,
                l2,
                rate,
                EPOCHS,
                seed,
                common::silent,
            )?;
            let test = evaluate(&trained.model, &BinaryCrossEntropy, data.test()?)?;
            accuracies.push(f64::from(test.accuracy.unwrap_or(f32::NAN)));
        }
        let s = Summary::of(&accuracies);
        println!(
            "{name:>9}: l2 {l2}, rate {rate}: test accuracy mean {:.4}, std {:.4}, min {:.4}, max {:.4}",
            s.mean, s.std, s.min, s.max
        );
    }
    Ok(())
}
