//! The training run that the firmware performs on the device and that
//! `tests/firmware_parity.rs` repeats on the host: the same data, split, seed, model,
//! optimizer and epochs, so the two must end with the same weight checksum when both use the
//! scalar kernels.
//!
//! This file depends on `microtrain` and `core` only, so both the `no_std` firmware and the
//! host test compile it unchanged (the test through `#[path]`).

use microtrain::rng::below;
use microtrain::{
    Adam, Control, Dataset, Dense, DenseDropout, Dropout, EpochReport, Error, FitConfig, Network,
    Relu, SeedableRng, Softmax, SparseCategoricalCrossEntropy, Trainer, Xoshiro128PlusPlus,
    const_config, l2,
};

/// The Iris data set (Fisher 1936, as scikit-learn ships it): 150 rows of 4 measurements in
/// cm and a class label 0..3, sorted by class. See `examples/data/README.md`.
pub const IRIS_CSV: &str = include_str!("../../data/iris.csv");

/// Rows in the data set.
pub const ROWS: usize = 150;
/// Features per row.
pub const FEATURES: usize = 4;
/// Classes.
pub const CLASSES: usize = 3;
/// Held-out rows per class (stratified: the data has 50 of each class).
pub const TEST_PER_CLASS: usize = 10;
/// Held-out rows.
pub const TEST_ROWS: usize = TEST_PER_CLASS * CLASSES;
/// Training rows.
pub const TRAIN_ROWS: usize = ROWS - TEST_ROWS;

/// Seed of the train/test split.
pub const SPLIT_SEED: u64 = 2024;
/// Seed of initialisation, shuffling and dropout masks.
pub const TRAIN_SEED: u64 = 7;
/// Epochs the firmware and the parity test run.
pub const EPOCHS: usize = 40;
/// Held-out accuracy the run must reach, as correct rows out of [`TEST_ROWS`] (90 %).
pub const REQUIRED_CORRECT: usize = (TEST_ROWS * 9).div_ceil(10);

/// `Dense<4, 16, relu>` with L2 on its kernel → `Dropout(0.2)` → `Dense<16, 3, softmax>`,
/// the dropout applied in place on the first layer's outputs ([`DenseDropout`]: the same
/// training bit for bit as the three-layer tuple, 64 bytes of batch buffer less).
pub type Model = (
    DenseDropout<FEATURES, 16, Relu>,
    Dense<16, CLASSES, Softmax>,
);
/// Adam over the model's parameters: Keras' bits, with bias corrections from running powers
/// of the betas (a couple of dozen `f32` operations per step where `powf` in software `f64`
/// took about 1,500 instructions on this core; see `microtrain::Adam`).
pub type Optim = Adam<<Model as Network>::Params>;
/// Mini-batches of one sample.
pub type ModelTrainer = Trainer<Model, Optim, 1>;
/// Labels are stored as `u8` to keep the tables small.
pub type Loss = SparseCategoricalCrossEntropy<u8>;

/// The untrained model (Keras: `Dense(16, relu, kernel_regularizer=l2(1e-3))`,
/// `Dropout(0.2)`, `Dense(3, softmax)`); `const` so that firmware can place it in a `static`.
pub const fn model() -> Model {
    (
        DenseDropout::new(
            Dense::new(Relu).with_kernel_regularizer(const_config!(l2(1e-3))),
            const_config!(Dropout::new(0.2)),
        ),
        Dense::new(Softmax),
    )
}

/// A trainer with zeroed state: Adam, learning rate 0.01, Keras' betas and epsilon.
// `unwrap_const`, not `const_config!`: with the optimizer as a `const` item, the singleton's
// in-place initialisation (`App::new`, run once at boot) went through a stack temporary of the
// trainer, and the stack peak rose from 1,048 to 2,608 B (measure.sh). Here it is evaluated
// where it cannot fail: `Adam::new(0.01)` is valid, and firmware_parity runs this function.
#[allow(deprecated)]
pub const fn trainer() -> ModelTrainer {
    Trainer::new(microtrain::unwrap_const(Adam::new(0.01)))
}

/// The CSV as numbers, `(features, labels)`, parsed at compile time: the table sits in flash
/// and a malformed file is a build error.
pub static IRIS: ([[f32; FEATURES]; ROWS], [u8; ROWS]) = parse_iris(IRIS_CSV);

/// Parses the header line and [`ROWS`] rows of `f,f,f,f,label`.
///
/// A field `d.d` becomes `(digits as f32) / 10^decimals`: both operands are exact in `f32`
/// (fewer than 8 digits), and one correctly rounded division gives the correctly rounded
/// value of the decimal, i.e. what `str::parse::<f32>` returns (the parity test checks this).
///
/// Only [`IRIS`]'s initializer calls it, so it runs in the compiler: an index out of range or
/// a failed check is a build error, never a panic on the device.
#[allow(clippy::indexing_slicing, clippy::panic)]
const fn parse_iris(csv: &str) -> ([[f32; FEATURES]; ROWS], [u8; ROWS]) {
    let bytes = csv.as_bytes();
    let mut x = [[0.0f32; FEATURES]; ROWS];
    let mut y = [0u8; ROWS];
    let mut at = 0;
    while at < bytes.len() && bytes[at] != b'\n' {
        at += 1;
    }
    at += 1;
    let mut row = 0;
    while row < ROWS {
        let mut column = 0;
        while column <= FEATURES {
            let (mut digits, mut scale, mut seen, mut decimals) = (0u32, 1u32, false, false);
            while at < bytes.len() && bytes[at] != b',' && bytes[at] != b'\n' {
                let c = bytes[at];
                if c == b'.' && !decimals {
                    decimals = true;
                } else if c.is_ascii_digit() && digits < 1_000_000 {
                    digits = digits * 10 + (c - b'0') as u32;
                    seen = true;
                    if decimals {
                        scale *= 10;
                    }
                } else {
                    panic!("iris.csv: unexpected character or too many digits");
                }
                at += 1;
            }
            assert!(seen, "iris.csv: empty field");
            let last = column == FEATURES;
            let separator = if last { b'\n' } else { b',' };
            assert!(
                at < bytes.len() && bytes[at] == separator,
                "iris.csv: wrong number of fields"
            );
            at += 1;
            if last {
                assert!(!decimals && digits < CLASSES as u32, "iris.csv: bad label");
                y[row] = digits as u8;
            } else {
                x[row][column] = digits as f32 / scale as f32;
            }
            column += 1;
        }
        row += 1;
    }
    assert!(at == bytes.len(), "iris.csv: more rows than expected");
    (x, y)
}

/// The standardized split: training rows, held-out rows, and the training rows' statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Standardized training samples.
    pub train_x: [[f32; FEATURES]; TRAIN_ROWS],
    /// Training labels.
    pub train_y: [u8; TRAIN_ROWS],
    /// Standardized held-out samples.
    pub test_x: [[f32; FEATURES]; TEST_ROWS],
    /// Held-out labels.
    pub test_y: [u8; TEST_ROWS],
    /// Per-feature mean of the training rows (raw units).
    pub mean: [f32; FEATURES],
    /// Per-feature population standard deviation of the training rows (raw units).
    pub std: [f32; FEATURES],
}

impl Split {
    /// All zeros, so that firmware can reserve it in `.bss`.
    pub const ZERO: Self = Self {
        train_x: [[0.0; FEATURES]; TRAIN_ROWS],
        train_y: [0; TRAIN_ROWS],
        test_x: [[0.0; FEATURES]; TEST_ROWS],
        test_y: [0; TEST_ROWS],
        mean: [0.0; FEATURES],
        std: [0.0; FEATURES],
    };

    /// Fills `self` with the split of [`SPLIT_SEED`]: a Fisher–Yates shuffle of the row
    /// numbers, then the first [`TEST_PER_CLASS`] rows of each class in that order are held
    /// out. Both parts are then standardized with the training rows' mean and population
    /// standard deviation, computed here (on the device) in a fixed order with `f32`
    /// operations and a correctly rounded square root, so every target gets the same bits.
    pub fn build(&mut self) {
        let (x, y) = &IRIS;
        let mut order = [0u8; ROWS];
        for (k, slot) in (0u8..).zip(order.iter_mut()) {
            *slot = k;
        }
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(SPLIT_SEED);
        for i in (1..ROWS).rev() {
            order.swap(i, below(&mut rng, i + 1));
        }

        let mut held = [0usize; CLASSES];
        let mut train = self.train_x.iter_mut().zip(self.train_y.iter_mut());
        let mut test = self.test_x.iter_mut().zip(self.test_y.iter_mut());
        for &k in &order {
            let k = usize::from(k);
            let (Some(sample), Some(&label)) = (x.get(k), y.get(k)) else {
                continue;
            };
            let slot = match held.get_mut(usize::from(label)) {
                Some(count) if *count < TEST_PER_CLASS => {
                    *count += 1;
                    test.next()
                }
                _ => train.next(),
            };
            if let Some((slot_x, slot_y)) = slot {
                *slot_x = *sample;
                *slot_y = label;
            }
        }

        // Explicit loops: they fix the summation order, which `Iterator::sum` does not promise.
        let n = TRAIN_ROWS as f32;
        for f in 0..FEATURES {
            let value = |row: &[f32; FEATURES]| row.get(f).copied().unwrap_or(0.0);
            let mut sum = 0.0f32;
            for row in &self.train_x {
                sum += value(row);
            }
            let mean = sum / n;
            let mut square_sum = 0.0f32;
            for row in &self.train_x {
                let d = value(row) - mean;
                square_sum += d * d;
            }
            let std = microtrain::math::sqrt(square_sum / n);
            for row in self.train_x.iter_mut().chain(self.test_x.iter_mut()) {
                if let Some(v) = row.get_mut(f) {
                    *v = (*v - mean) / std;
                }
            }
            if let (Some(m), Some(s)) = (self.mean.get_mut(f), self.std.get_mut(f)) {
                (*m, *s) = (mean, std);
            }
        }
    }
}

/// What a training run ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Held-out rows classified right.
    pub correct: usize,
    /// FNV-1a (32 bit) of the trained parameters' `f32` bit patterns (see [`checksum`]).
    pub checksum: u32,
    /// Epochs run.
    pub epochs: usize,
}

impl Outcome {
    /// True if the held-out accuracy reaches the bar (90 %).
    pub const fn passed(&self) -> bool {
        self.correct >= REQUIRED_CORRECT
    }
}

/// FNV-1a over the little-endian bytes of every parameter, in the model's parameter order
/// (first layer's weights row by row, its bias, then the last layer's). Any changed bit
/// changes it.
pub fn checksum(model: &Model) -> u32 {
    let mut hash = 0x811c_9dc5u32;
    for tensor in model.parameters() {
        for value in tensor {
            for byte in value.to_bits().to_le_bytes() {
                hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
            }
        }
    }
    hash
}

/// The buffer of each epoch's order of the training rows (see [`fit`]): 2 bytes per row.
pub type Order = [u16; TRAIN_ROWS];

/// The whole run: [`initialize`], [`fit`] for `epochs` epochs, then [`outcome`]. The firmware
/// calls the three steps itself (to time `fit` alone) in this order.
///
/// # Errors
/// As [`fit`].
pub fn train(
    model: &mut Model,
    trainer: &mut ModelTrainer,
    split: &Split,
    order: &mut Order,
    epochs: usize,
    on_epoch: impl FnMut(&EpochReport),
) -> Result<Outcome, Error> {
    let mut rng = initialize(model);
    let epochs = fit(model, trainer, split, order, epochs, &mut rng, on_epoch)?;
    Ok(outcome(model, split, epochs))
}

/// Draws the initial weights from [`TRAIN_SEED`]; returns the generator, which goes on to
/// shuffle and draw dropout masks.
pub fn initialize(model: &mut Model) -> Xoshiro128PlusPlus {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(TRAIN_SEED);
    model.initialize(&mut rng);
    rng
}

/// Trains for `epochs` epochs of single-sample steps on the training rows, reshuffled every
/// epoch; `on_epoch` sees each epoch's report. Returns the epochs run.
///
/// The shuffle is a Fisher–Yates shuffle of the row indices in `order`
/// (`Trainer::fit_with_shuffle_buffer`): 240 bytes of RAM for about 600 instructions per
/// sample less than `fit`'s memoryless permutation, which hashes some 25 rounds per row.
///
/// # Errors
/// None in practice (the training set is not empty); the signature carries `fit`'s.
pub fn fit(
    model: &mut Model,
    trainer: &mut ModelTrainer,
    split: &Split,
    order: &mut Order,
    epochs: usize,
    rng: &mut Xoshiro128PlusPlus,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<usize, Error> {
    let train = Dataset::new(&split.train_x, &split.train_y)?;
    let summary = trainer.fit_with_shuffle_buffer(
        model,
        &Loss::new(),
        train,
        None,
        &FitConfig::epochs(epochs),
        rng,
        order,
        |report: &EpochReport| {
            on_epoch(report);
            Control::Continue
        },
    )?;
    Ok(summary.epochs)
}

/// Scores the model on the held-out rows and checksums its parameters.
pub fn outcome(model: &Model, split: &Split, epochs: usize) -> Outcome {
    let correct = split
        .test_x
        .iter()
        .zip(&split.test_y)
        .filter(|(x, y)| argmax(&model.infer(x)) == usize::from(**y))
        .count();
    Outcome {
        correct,
        checksum: checksum(model),
        epochs,
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if values.get(best).is_some_and(|b| v > b) {
            best = i;
        }
    }
    best
}
