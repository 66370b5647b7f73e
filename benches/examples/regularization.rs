//! What L1, L2 and dropout do to an over-parameterized network on little data.
//!
//! ```text
//! cargo run --release --example regularization
//! cargo run --release --example regularization -- --label-noise 0.3
//! ```
//!
//! Digits (1797 images of 8×8 pixels, divided by 16 to lie in [0, 1]): a stratified
//! training set of 200 samples (`--train-size`; `--split-seed`, default 0), the other 1597 as the test
//! set. An MLP 64 → 256 relu → 256 relu → 10 softmax (85,002 parameters, 425 per training
//! sample) trained with Adam (Keras defaults), sparse categorical cross-entropy, batches of
//! 32, 100 epochs, in six configurations. Penalties apply to the kernels of all three
//! dense layers (biases are not penalized); dropout follows each hidden layer. Every
//! configuration uses the same network type: a dropout rate of 0 passes values through.
//!
//! Each configuration is trained from the same seeds (`--seeds`, default 3), which draw
//! the initial weights, the batch order and the dropout masks; the table shows means over
//! the seeds. Losses in the table and the curves are the cross-entropy **without** the
//! penalty, evaluated with dropout off, so the configurations are comparable. The curves
//! (an SVG under `target/`, or `--svg PATH`) are measured every `--curve-every` epochs
//! (default 2: scoring the 1597 test samples costs more than an epoch of training).
//!
//! `--label-noise P` replaces the labels of a fraction `P` of the training samples by a
//! different class drawn at random (the test labels stay clean): a setting where an
//! unregularized network memorizes wrong labels.

#[path = "../../examples/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::{Result, Summary};
use indicatif::{ProgressBar, ProgressStyle};
use microtrain::rng::{Permutation, below};
use microtrain::*;
use plotters::prelude::*;

const USAGE: &str = "usage: regularization [--seeds N] [--epochs E] [--train-size N] \
                     [--label-noise P] [--svg PATH] [--curve-every K] [--split-seed S]";

type Mlp = (
    Dense<64, 256, Relu>,
    Dropout<256>,
    Dense<256, 256, Relu>,
    Dropout<256>,
    Dense<256, 10, Softmax>,
);
type MlpTrainer = Trainer<Mlp, Adam<<Mlp as Network>::Params>, 32>;
type Data<'a> = Dataset<'a, [f32; 64], u8>;

const CLASSES: usize = 10;
/// A weight counts as near zero below this magnitude: a tenth of the smallest Glorot
/// limit of the three layers (√(6/512) ≈ 0.108), where under 1% of the initial weights
/// fall, and about the size of one Adam step (learning rate 1e-3), the closest an L1
/// penalty driven by Adam can bring a weight to zero.
const NEAR_ZERO: f32 = 1e-2;

/// One regularization setting (Keras names).
struct Config {
    name: &'static str,
    l1: f32,
    l2: f32,
    rate: f32,
}

const CONFIGS: [Config; 6] = [
    Config {
        name: "none",
        l1: 0.0,
        l2: 0.0,
        rate: 0.0,
    },
    Config {
        name: "L1 1e-4",
        l1: 1e-4,
        l2: 0.0,
        rate: 0.0,
    },
    Config {
        name: "L2 1e-3",
        l1: 0.0,
        l2: 1e-3,
        rate: 0.0,
    },
    Config {
        name: "L1L2 1e-4,1e-3",
        l1: 1e-4,
        l2: 1e-3,
        rate: 0.0,
    },
    Config {
        name: "Dropout 0.5",
        l1: 0.0,
        l2: 0.0,
        rate: 0.5,
    },
    Config {
        name: "L2 1e-3 + Dropout 0.5",
        l1: 0.0,
        l2: 1e-3,
        rate: 0.5,
    },
];

impl Config {
    fn model(&self) -> Result<Mlp> {
        let penalty = l1_l2(self.l1, self.l2)?;
        Ok((
            Dense::new(Relu).with_kernel_regularizer(penalty),
            Dropout::new(self.rate)?,
            Dense::new(Relu).with_kernel_regularizer(penalty),
            Dropout::new(self.rate)?,
            Dense::new(Softmax).with_kernel_regularizer(penalty),
        ))
    }
}

/// What one training run ends with, and its learning curves.
struct Outcome {
    train_accuracy: f64,
    test_accuracy: f64,
    test_loss: f64,
    weight_norm: f64,
    near_zero: f64,
    /// (epoch, cross-entropy without penalty) on the training and test sets.
    train_curve: Vec<(usize, f64)>,
    test_curve: Vec<(usize, f64)>,
}

fn main() -> Result<()> {
    let args = common::Args::parse(
        &[
            "--seeds",
            "--epochs",
            "--train-size",
            "--label-noise",
            "--svg",
            "--curve-every",
            "--split-seed",
        ],
        &[],
        USAGE,
    )?;
    let seeds: u64 = args.value("--seeds")?.unwrap_or(3);
    let epochs: usize = args.value("--epochs")?.unwrap_or(100);
    let split_seed: u64 = args.value("--split-seed")?.unwrap_or(0);
    let curve_every: usize = args.value("--curve-every")?.unwrap_or(2).max(1);
    let train_size: usize = args.value("--train-size")?.unwrap_or(200);
    let noise: f64 = args.value("--label-noise")?.unwrap_or(0.0);
    let svg: PathBuf = args.value("--svg")?.unwrap_or_else(|| {
        let name = if noise > 0.0 {
            "regularization-noisy.svg"
        } else {
            "regularization.svg"
        };
        common::repository_root().join("target").join(name)
    });

    let mut table = common::load_csv::<64>("digits.csv")?;
    for row in &mut table.features {
        for pixel in row {
            *pixel /= 16.0;
        }
    }
    let n = table.labels.len();
    if !(CLASSES..n).contains(&train_size) {
        return Err(format!("--train-size must be in {CLASSES}..{n}").into());
    }
    let mut indices = vec![0; n];
    let split =
        stratified_split::<_, 10>(&table.labels, 0, n - train_size, split_seed, &mut indices)?;
    let train_x = common::gather(&table.features, split.train);
    let mut train_y = common::gather(&table.labels, split.train);
    let test_x = common::gather(&table.features, split.test);
    let test_y = common::gather(&table.labels, split.test);
    let flipped = corrupt(&mut train_y, noise)?;
    let train = Dataset::new(&train_x, &train_y)?;
    let test = Dataset::new(&test_x, &test_y)?;

    println!(
        "Digits: {} training samples (stratified, split seed {split_seed}{}), {} test samples",
        train.len(),
        if flipped > 0 {
            format!("; {flipped} training labels replaced by a wrong class")
        } else {
            String::new()
        },
        test.len()
    );
    println!(
        "MLP 64-256-256-10, {} parameters; Adam, batch 32, {epochs} epochs; \
         mean over seeds 0..{seeds}",
        <Mlp as Network>::PARAMETERS
    );
    println!(
        "penalties on all kernels; dropout after each hidden layer; \
         near zero = |w| < {NEAR_ZERO}\n"
    );

    let bar = ProgressBar::new(CONFIGS.len() as u64 * seeds).with_style(
        ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} runs, {elapsed}")?
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let mut results = Vec::new();
    for config in &CONFIGS {
        bar.set_message(config.name);
        let mut runs = Vec::new();
        for seed in 0..seeds {
            runs.push(run(config, (train, test), epochs, curve_every, seed)?);
            bar.inc(1);
        }
        results.push(runs);
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed();

    println!(
        "{:<22} {:>9} {:>14} {:>7} {:>14} {:>8} {:>9}",
        "configuration", "train acc", "test acc", "gap", "test CE", "|w|", "near zero"
    );
    for (config, runs) in CONFIGS.iter().zip(&results) {
        let mean = |f: fn(&Outcome) -> f64| Summary::of(&runs.iter().map(f).collect::<Vec<_>>());
        let (train_acc, test_acc, test_loss) = (
            mean(|o| o.train_accuracy),
            mean(|o| o.test_accuracy),
            mean(|o| o.test_loss),
        );
        println!(
            "{:<22} {:>9.4} {:>7.4}±{:.4} {:>7.4} {:>7.4}±{:.4} {:>8.2} {:>9.3}",
            config.name,
            train_acc.mean,
            test_acc.mean,
            test_acc.std,
            train_acc.mean - test_acc.mean,
            test_loss.mean,
            test_loss.std,
            mean(|o| o.weight_norm).mean,
            mean(|o| o.near_zero).mean,
        );
    }
    println!(
        "\n± = std over seeds (population); gap = train acc - test acc; \
         test CE = test cross-entropy without the penalty;\n\
         |w| = L2 norm of all kernel weights; near zero = fraction of kernel weights \
         with |w| < {NEAR_ZERO}"
    );
    println!(
        "{} runs in {:.1} s",
        CONFIGS.len() as u64 * seeds,
        elapsed.as_secs_f64()
    );

    let title = format!(
        "Digits, {} training samples{}: cross-entropy without penalty, mean over {seeds} seed(s)",
        train.len(),
        if flipped > 0 {
            format!(" ({flipped} mislabelled)")
        } else {
            String::new()
        }
    );
    plot(&svg, &results, &title)?;
    println!("learning curves: {}", svg.display());
    Ok(())
}

/// Replaces the labels of `round(fraction · n)` training samples, chosen by a seeded
/// permutation, by a different class drawn uniformly; returns how many.
fn corrupt(labels: &mut [u8], fraction: f64) -> Result<usize> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err("--label-noise must be in [0, 1]".into());
    }
    let count = (fraction * labels.len() as f64).round() as usize;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0x0015_ab1e);
    let order = Permutation::new(labels.len(), &mut rng);
    for position in 0..count {
        if let Some(label) = labels.get_mut(order.get(position)) {
            let shift = 1 + below(&mut rng, CLASSES - 1) as u8;
            *label = (*label + shift) % CLASSES as u8;
        }
    }
    Ok(count)
}

/// Trains one configuration from one seed, recording the loss curves after each epoch.
fn run(
    config: &Config,
    (train, test): (Data, Data),
    epochs: usize,
    curve_every: usize,
    seed: u64,
) -> Result<Outcome> {
    let loss = SparseCategoricalCrossEntropy::<u8>::new();
    // The model (340 kB) and trainer (1.2 MB) live on the heap, not on the stack.
    let mut model = Box::new(config.model()?);
    let mut trainer = Box::new(MlpTrainer::new(Adam::keras_default()));
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    model.initialize(&mut rng);
    let (mut train_curve, mut test_curve) = (Vec::new(), Vec::new());
    // One epoch per call: `fit` draws the same random numbers either way, and between
    // calls the curves can be measured without the penalty.
    for epoch in 1..=epochs {
        trainer.fit(
            &mut model,
            &loss,
            train,
            None,
            &FitConfig::epochs(1),
            &mut rng,
            common::silent,
        )?;
        if epoch % curve_every == 0 || epoch == 1 || epoch == epochs {
            let point = |data| (epoch, f64::from(data_loss(&*model, &loss, data)));
            train_curve.push(point(train));
            test_curve.push(point(test));
        }
    }
    let accuracy = |data| {
        let metrics = evaluate(&*model, &loss, data).ok();
        f64::from(metrics.and_then(|m| m.accuracy).unwrap_or(f32::NAN))
    };
    let kernels = [
        model.0.params.weights.as_flattened(),
        model.2.params.weights.as_flattened(),
        model.4.params.weights.as_flattened(),
    ];
    let weights = || kernels.iter().flat_map(|k| k.iter());
    let count = weights().count() as f64;
    Ok(Outcome {
        train_accuracy: accuracy(train),
        test_accuracy: accuracy(test),
        test_loss: test_curve.last().map_or(f64::NAN, |&(_, loss)| loss),
        weight_norm: weights()
            .map(|&w| f64::from(w) * f64::from(w))
            .sum::<f64>()
            .sqrt(),
        near_zero: weights().filter(|w| w.abs() < NEAR_ZERO).count() as f64 / count,
        train_curve,
        test_curve,
    })
}

/// Two panels (training and test cross-entropy against the epoch, mean over seeds, log
/// scale), one line per configuration.
fn plot(path: &PathBuf, results: &[Vec<Outcome>], title: &str) -> Result<()> {
    // Tableau 10: distinct in colour and in grey.
    const COLOURS: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    type Pick = fn(&Outcome) -> &Vec<(usize, f64)>;
    // Every run of a configuration records the same epochs, so the mean is point by point.
    let mean_curve = |runs: &[Outcome], pick: Pick| -> Vec<(usize, f64)> {
        let Some(first) = runs.first() else {
            return Vec::new();
        };
        (0..pick(first).len())
            .filter_map(|i| {
                let (epoch, _) = *pick(first).get(i)?;
                let values: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| pick(r).get(i).map(|&(_, v)| v))
                    .collect();
                Some((epoch, Summary::of(&values).mean))
            })
            .collect()
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let panels = root.split_evenly((1, 2));
    let picks: [(&str, Pick); 2] = [
        ("training set", |o| &o.train_curve),
        ("test set", |o| &o.test_curve),
    ];
    for (panel, (caption, pick)) in panels.iter().zip(picks) {
        let curves: Vec<Vec<(usize, f64)>> =
            results.iter().map(|runs| mean_curve(runs, pick)).collect();
        let values = || {
            curves
                .iter()
                .flatten()
                .map(|&(_, v)| v)
                .filter(|v| *v > 0.0)
        };
        let low = values().fold(f64::INFINITY, f64::min).max(1e-6);
        let high = values().fold(0.0, f64::max).max(low * 2.0);
        let last = curves.iter().flatten().map(|&(e, _)| e).max().unwrap_or(1);
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(
                1..last,
                (low * 0.8..high * 1.25)
                    .log_scale()
                    .with_key_points(ticks(low * 0.8, high * 1.25)),
            )?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("cross-entropy (log scale)")
            .y_label_formatter(&|v| format!("{v}"))
            .draw()?;
        for ((curve, config), colour) in curves.iter().zip(&CONFIGS).zip(COLOURS) {
            chart
                .draw_series(LineSeries::new(
                    curve.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(config.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// The values 1, 2, 3 and 5 times a power of ten between `low` and `high`: round tick marks
/// for a logarithmic axis.
fn ticks(low: f64, high: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powi(low.log10().floor() as i32);
    while decade <= high {
        for step in [1.0, 2.0, 3.0, 5.0] {
            // Rounding to 12 significant digits prints 0.3 rather than 0.30000000000000004.
            let tick = format!("{:.12e}", step * decade)
                .parse()
                .unwrap_or(step * decade);
            if (low..=high).contains(&tick) {
                ticks.push(tick);
            }
        }
        decade *= 10.0;
    }
    ticks
}
