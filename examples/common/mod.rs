//! Shared by the real-data examples and `tests/breast_cancer.rs`: CSV loading (with the
//! `csv` crate), the tutorial's model and data, summary statistics over seeds and a small
//! argument parser. Splitting, standardisation and metrics are the library's
//! ([`stratified_split`], [`Standardizer`], [`microtrain::metrics`]).
//!
//! The library itself never allocates; this module is host-side plumbing and uses `Vec`
//! freely.
// Each example uses a different subset of these helpers.
#![allow(dead_code)]

use std::error::Error;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use microtrain::*;

/// Errors of the examples: anything printable.
pub type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// `examples/data/<file>`, found from the crate root so the examples run from any
/// working directory.
pub fn data_path(file: &str) -> PathBuf {
    repository_root().join("examples").join("data").join(file)
}

/// The repository's root: the crate's folder, or its parent for the examples of `benches/`
/// (a crate one level down that shares this module).
pub fn repository_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if env!("CARGO_PKG_NAME") == "microtrain" {
        manifest.to_path_buf()
    } else {
        manifest.parent().unwrap_or(manifest).to_path_buf()
    }
}

/// A classification data set: `N` features per sample and an integer class label.
pub struct Table<const N: usize> {
    /// One row of features per sample.
    pub features: Vec<[f32; N]>,
    /// The class of each sample (`0..classes`).
    pub labels: Vec<u8>,
}

/// Reads `examples/data/<file>`: a header line, then `N` feature columns and an integer
/// label column per line (the format of `examples/data/README.md`).
pub fn load_csv<const N: usize>(file: &str) -> Result<Table<N>> {
    let path = data_path(file);
    let mut reader = csv::Reader::from_path(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let columns = reader.headers()?.len();
    if columns != N + 1 {
        return Err(format!("{file}: {columns} columns, expected {N} features + label").into());
    }
    let mut table = Table {
        features: Vec::new(),
        labels: Vec::new(),
    };
    for (line, record) in reader.records().enumerate() {
        let record = record?;
        let mut row = [0.0f32; N];
        let mut fields = record.iter();
        for (value, field) in row.iter_mut().zip(fields.by_ref()) {
            *value = field
                .parse()
                .map_err(|e| format!("{file}, data line {}: {field:?}: {e}", line + 1))?;
        }
        let label = fields.next().unwrap_or_default();
        let label = label
            .parse()
            .map_err(|e| format!("{file}, data line {}: label {label:?}: {e}", line + 1))?;
        table.features.push(row);
        table.labels.push(label);
    }
    Ok(table)
}

/// Number of samples of each class `0..=max label`.
pub fn class_counts(labels: &[u8]) -> Vec<usize> {
    let classes = labels
        .iter()
        .map(|&l| usize::from(l) + 1)
        .max()
        .unwrap_or(0);
    let mut counts = vec![0; classes];
    for &label in labels {
        if let Some(count) = counts.get_mut(usize::from(label)) {
            *count += 1;
        }
    }
    counts
}

/// `values[i]` for each `i` in `indices` (indices past the end are skipped).
pub fn gather<T: Copy>(values: &[T], indices: &[usize]) -> Vec<T> {
    indices
        .iter()
        .filter_map(|&i| values.get(i).copied())
        .collect()
}

/// The tutorial's model: Keras `Dense(64, relu, kernel_regularizer=l2(λ))` →
/// `Dropout(rate)` → `Dense(1, sigmoid)` on the 30 breast-cancer features.
pub type Tutorial = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>);

/// The tutorial's training set-up: Adam, mini-batches of 32 (Keras' default).
pub type TutorialTrainer = Trainer<Tutorial, TutorialOptimizer, 32>;

/// The tutorial's optimizer: Adam.
pub type TutorialOptimizer = Adam<<Tutorial as Network>::Params>;

/// Bytes [`Trainer::with_best_weights`] adds to [`TutorialTrainer`]: one copy of the
/// parameters.
pub const BEST_WEIGHTS_BYTES: usize = size_of::<<Tutorial as Network>::Params>();

/// The tutorial's model with L2 factor `l2` on the hidden kernel and dropout `rate`
/// (the tutorial: 0.01 and 0.5), not yet initialized.
pub fn tutorial_model(l2: f32, rate: f32) -> Result<Tutorial> {
    Ok((
        Dense::new(Relu).with_kernel_regularizer(microtrain::l2(l2)?),
        Dropout::new(rate)?,
        Dense::new(Sigmoid),
    ))
}

/// Breast Cancer Wisconsin split 80/20 (stratified, seeded) and standardized with the
/// training split's mean and std.
pub struct BreastCancer {
    /// Standardized training features.
    pub train_x: Vec<[f32; 30]>,
    /// Training targets (1 = benign).
    pub train_y: Vec<[f32; 1]>,
    /// Training labels, for stratified folds.
    pub train_labels: Vec<u8>,
    /// Standardized test features (with the training split's statistics).
    pub test_x: Vec<[f32; 30]>,
    /// Test targets.
    pub test_y: Vec<[f32; 1]>,
    /// Test labels.
    pub test_labels: Vec<u8>,
}

/// Fraction of samples in the test split, as the Keras reference's `test_size=0.2`.
pub const TEST_FRACTION: f64 = 0.2;

impl BreastCancer {
    /// Loads `breast_cancer.csv` and splits it with `split_seed`: ⌈0.2·569⌉ = 114 test
    /// samples (as scikit-learn rounds), 455 training samples.
    pub fn load(split_seed: u64) -> Result<Self> {
        let table = load_csv::<30>("breast_cancer.csv")?;
        let test_len = (table.labels.len() as f64 * TEST_FRACTION).ceil() as usize;
        let mut indices = vec![0; table.labels.len()];
        let split = stratified_split::<_, 2>(&table.labels, 0, test_len, split_seed, &mut indices)?;
        let mut train_x = gather(&table.features, split.train);
        let mut test_x = gather(&table.features, split.test);
        let scaler = Standardizer::fit(&train_x)?;
        scaler.apply(&mut train_x);
        scaler.apply(&mut test_x);
        let target = |l: u8| [f32::from(l)];
        let train_labels = gather(&table.labels, split.train);
        let test_labels = gather(&table.labels, split.test);
        Ok(Self {
            train_x,
            train_y: train_labels.iter().map(|&l| target(l)).collect(),
            test_x,
            test_y: test_labels.iter().map(|&l| target(l)).collect(),
            train_labels,
            test_labels,
        })
    }

    /// The training split as a [`Dataset`].
    pub fn train(&self) -> Result<Dataset<'_, [f32; 30], [f32; 1]>> {
        Ok(Dataset::new(&self.train_x, &self.train_y)?)
    }

    /// The test split as a [`Dataset`].
    pub fn test(&self) -> Result<Dataset<'_, [f32; 30], [f32; 1]>> {
        Ok(Dataset::new(&self.test_x, &self.test_y)?)
    }
}

/// A trained model and how long [`Trainer::fit`] took.
pub struct Trained<N> {
    /// The model after the last epoch.
    pub model: N,
    /// Wall time of the `fit` call (including per-epoch validation, if any).
    pub time: Duration,
    /// How the run ended (where early stopping stopped, which epoch it restored).
    pub summary: FitSummary,
}

/// Trains the tutorial's model (`l2`, `rate`) from `seed` — which draws the initial
/// weights, each epoch's shuffle and every dropout mask — with Adam's Keras defaults,
/// binary cross-entropy, batches of 32, for `epochs` epochs.
#[allow(clippy::too_many_arguments)]
pub fn train_tutorial(
    train: Dataset<'_, [f32; 30], [f32; 1]>,
    validation: Option<Dataset<'_, [f32; 30], [f32; 1]>>,
    l2: f32,
    rate: f32,
    epochs: usize,
    seed: u64,
    callback: impl Callback<Tutorial, TutorialOptimizer>,
) -> Result<Trained<Tutorial>> {
    train_tutorial_stopping(train, validation, l2, rate, epochs, None, seed, callback)
}

/// [`train_tutorial`] with Keras' `EarlyStopping` (`early_stopping`, if any, on the
/// `validation` set); a rule that restores the best weights gets a trainer with room for
/// them ([`Trainer::with_best_weights`]: [`BEST_WEIGHTS_BYTES`] more).
#[allow(clippy::too_many_arguments)]
pub fn train_tutorial_stopping(
    train: Dataset<'_, [f32; 30], [f32; 1]>,
    validation: Option<Dataset<'_, [f32; 30], [f32; 1]>>,
    l2: f32,
    rate: f32,
    epochs: usize,
    early_stopping: Option<EarlyStopping>,
    seed: u64,
    callback: impl Callback<Tutorial, TutorialOptimizer>,
) -> Result<Trained<Tutorial>> {
    let mut model = tutorial_model(l2, rate)?;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    model.initialize(&mut rng);
    let plain = FitConfig::epochs(epochs);
    let loss = &BinaryCrossEntropy;
    let start = Instant::now();
    let summary = match early_stopping {
        Some(rule) if rule.restore_best_weights() => {
            let mut trainer = TutorialTrainer::new(Adam::keras_default()).with_best_weights();
            let config = plain.with_early_stopping(rule);
            trainer.fit_with_callback(
                &mut model, loss, train, validation, &config, &mut rng, callback,
            )?
        }
        _ => {
            let mut trainer = TutorialTrainer::new(Adam::keras_default());
            let config = FitConfig {
                early_stopping,
                ..plain
            };
            trainer.fit_with_callback(
                &mut model, loss, train, validation, &config, &mut rng, callback,
            )?
        }
    };
    Ok(Trained {
        model,
        time: start.elapsed(),
        summary,
    })
}

/// A callback that lets every epoch run.
pub fn silent(_: &EpochReport) -> Control {
    Control::Continue
}

/// Mean, standard deviation (population, as numpy's `np.std`), minimum and maximum.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Mean.
    pub mean: f64,
    /// Population standard deviation (divides by n).
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summarizes `values` (all zero for none).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let fold = |f: fn(f64, f64) -> f64, start| values.iter().copied().fold(start, f);
        Self {
            mean,
            std: var.sqrt(),
            min: if values.is_empty() {
                0.0
            } else {
                fold(f64::min, f64::INFINITY)
            },
            max: if values.is_empty() {
                0.0
            } else {
                fold(f64::max, f64::NEG_INFINITY)
            },
        }
    }
}

/// `--name value` and `--flag` command-line options; anything else is refused with the
/// usage text, so a typo does not silently run the default.
pub struct Args {
    items: Vec<String>,
}

impl Args {
    /// Reads the process arguments; `options` are the ones taking a value, `flags` the
    /// ones without.
    pub fn parse(options: &[&str], flags: &[&str], usage: &str) -> Result<Self> {
        let items: Vec<String> = std::env::args().skip(1).collect();
        let mut rest = items.iter();
        while let Some(item) = rest.next() {
            if item == "--help" || item == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            if options.contains(&item.as_str()) {
                if rest.next().is_none() {
                    return Err(format!("{item} needs a value\n{usage}").into());
                }
            } else if !flags.contains(&item.as_str()) {
                return Err(format!("unknown argument {item:?}\n{usage}").into());
            }
        }
        Ok(Self { items })
    }

    /// The value after `--name`, parsed, if given.
    pub fn value<T: FromStr>(&self, name: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        let mut items = self.items.iter();
        while let Some(item) = items.next() {
            if item == name {
                let value = items.next().map(String::as_str).unwrap_or_default();
                return value
                    .parse()
                    .map(Some)
                    .map_err(|e| format!("{name} {value:?}: {e}").into());
            }
        }
        Ok(None)
    }

    /// True if `--flag` is given.
    pub fn flag(&self, name: &str) -> bool {
        self.items.iter().any(|item| item == name)
    }
}
