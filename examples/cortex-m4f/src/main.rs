//! Trains an Iris classifier on the microcontroller itself and reports over semihosting:
//! the loss of every epoch, the held-out accuracy, a checksum of the trained weights, the
//! RAM it took and, where the emulator counts them, the instructions it took.
//!
//! Exit code 0 if the held-out accuracy reaches 90 %, 1 otherwise (and on a panic).
#![no_std]
#![no_main]

#[cfg(target_arch = "arm")]
use panic_semihosting as _;

mod platform;
mod stack;
#[allow(dead_code)] // shared with the host test, which uses other parts of it
mod training;

use microtrain::EpochReport;
use platform::say;
use training::{Model, ModelTrainer, Split};

/// Epochs to run: [`training::EPOCHS`], unless `FIRMWARE_EPOCHS` is set when building.
/// `measure.sh` builds a twin with 0 epochs to subtract everything but training.
const EPOCHS: usize = match option_env!("FIRMWARE_EPOCHS") {
    Some(text) => parse_decimal(text),
    None => training::EPOCHS,
};

const fn parse_decimal(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut value, mut at) = (0usize, 0);
    while at < bytes.len() {
        assert!(
            bytes[at].is_ascii_digit(),
            "FIRMWARE_EPOCHS must be a number"
        );
        value = value * 10 + (bytes[at] - b'0') as usize;
        at += 1;
    }
    value
}

/// Everything the run keeps in RAM besides its stack frames; a singleton in `.bss`.
pub struct App {
    split: Split,
    model: Model,
    trainer: ModelTrainer,
    order: training::Order,
}

impl App {
    const fn new() -> Self {
        Self {
            split: Split::ZERO,
            model: training::model(),
            // measure.sh builds this feature to price the library's default check of
            // every update (`Trainer::with_checked_updates`); the bits are the same.
            trainer: training::trainer().with_checked_updates(!cfg!(feature = "unchecked-updates")),
            order: [0; training::TRAIN_ROWS],
        }
    }
}

/// `value` rounded to `1 / 10^4`, as an integer: the output stays free of float formatting
/// (which would cost about 15 KB of flash).
fn ten_thousandths(value: f32) -> u32 {
    // `as` saturates: a NaN prints as 0, an infinity as the largest value.
    (value * 10_000.0 + 0.5) as u32
}

/// The sum behind the library's finiteness scan of the gradients, on this target (with
/// `fpu-sqrt` on the Cortex-M4F, assembly that host tests cannot run): exact on small
/// integers at every length to 19 (blocks of eight and tails), and a NaN or an infinity at any
/// position makes it non-finite. Run after training, outside the counted instructions.
/// [`microtrain::math::sum_in_any_order`] once, out of line (inlined at each call, the
/// check took 2 KB of flash).
#[inline(never)]
fn scan_sum(values: &[f32]) -> f32 {
    microtrain::math::sum_in_any_order(core::hint::black_box(values))
}

#[inline(never)]
fn scan_sees_every_non_finite() -> bool {
    let mut values = [1.0f32; 19];
    // `black_box` on the bounds: the loops stay loops, and `get` rather than indexing keeps
    // the panic machinery (about 4 KB of flash) out of the build.
    let count = core::hint::black_box(values.len());
    for len in 0..=count {
        let Some(head) = values.get(..len) else {
            return false;
        };
        let sum = scan_sum(head);
        if sum != len as f32 {
            return false;
        }
    }
    for at in 0..count {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let Some(slot) = values.get_mut(at) else {
                return false;
            };
            *slot = bad;
            let sum = scan_sum(&values);
            if sum.is_finite() {
                return false;
            }
        }
        if let Some(slot) = values.get_mut(at) {
            *slot = 1.0;
        }
    }
    true
}

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    let stack = stack::paint();
    let mut counter = platform::Counter::start();
    say!("microtrain on {}", platform::TARGET);
    say!(
        "model: Dense<4,16,relu>+l2(1e-3) -> Dropout(0.2) -> Dense<16,3,softmax>; Adam(0.01); batch 1; {} epochs",
        EPOCHS
    );

    let Some(app) = platform::take_app() else {
        platform::exit(false)
    };
    app.split.build();
    say!(
        "data: Iris, {} training / {} held-out rows; standardized with the training rows' mean/std (x1e4):",
        training::TRAIN_ROWS,
        training::TEST_ROWS
    );
    for (mean, std) in app.split.mean.iter().zip(&app.split.std) {
        say!(
            "  mean {} std {}",
            ten_thousandths(*mean),
            ten_thousandths(*std)
        );
    }

    let App {
        split,
        model,
        trainer,
        order,
    } = app;
    let mut rng = training::initialize(model);
    // Instructions spent in `fit` outside the callback (which prints): the training itself.
    let mut trained = 0u64;
    let mut resumed = counter.instructions();
    let fitted = training::fit(
        model,
        trainer,
        split,
        order,
        EPOCHS,
        &mut rng,
        |report: &EpochReport| {
            let paused = counter.instructions();
            let spent = match (resumed, paused) {
                (Some(from), Some(to)) => Some(to - from),
                _ => None,
            };
            trained += spent.unwrap_or(0);
            let loss = ten_thousandths(report.train.loss);
            let accuracy = report
                .train
                .accuracy
                .map_or(0, |a| (a * 1000.0 + 0.5) as u32);
            match spent {
                Some(instructions) => say!(
                    "epoch {:>3} loss {}.{:04} train-acc {:>3}.{}% insns {}",
                    report.epoch + 1,
                    loss / 10_000,
                    loss % 10_000,
                    accuracy / 10,
                    accuracy % 10,
                    instructions
                ),
                None => say!(
                    "epoch {:>3} loss {}.{:04} train-acc {:>3}.{}%",
                    report.epoch + 1,
                    loss / 10_000,
                    loss % 10_000,
                    accuracy / 10,
                    accuracy % 10
                ),
            }
            resumed = counter.instructions();
        },
    );
    // `black_box`: the error path stays in the build even where the compiler could prove
    // that training never fails.
    #[cfg(feature = "unwrap-errors")]
    let fitted: Result<usize, microtrain::Error> = Ok(core::hint::black_box(fitted).unwrap());
    let Ok(epochs) = fitted else {
        say!("RESULT FAIL training refused its data");
        platform::exit(false)
    };
    if !scan_sees_every_non_finite() {
        say!("RESULT FAIL the finiteness scan's sum missed a NaN or an infinity");
        platform::exit(false)
    }
    let outcome = training::outcome(model, split, epochs);

    let permille = outcome.correct * 1000 / training::TEST_ROWS;
    say!(
        "held-out accuracy: {}/{} = {}.{}% (bar: {}/{})",
        outcome.correct,
        training::TEST_ROWS,
        permille / 10,
        permille % 10,
        training::REQUIRED_CORRECT,
        training::TEST_ROWS
    );
    say!(
        "weights checksum (FNV-1a of the f32 bits): {:#010x}",
        outcome.checksum
    );
    say!(
        "ram: model {} B + trainer {} B = TRAINING_RAM_BYTES {} B; data split {} B; shuffle order {} B; stack peak {} of {} B",
        core::mem::size_of::<Model>(),
        ModelTrainer::RAM_BYTES,
        ModelTrainer::TRAINING_RAM_BYTES,
        core::mem::size_of::<Split>(),
        core::mem::size_of::<training::Order>(),
        stack.peak(),
        stack.size()
    );
    let samples = (epochs * training::TRAIN_ROWS) as u64;
    if counter.instructions().is_some() && samples > 0 {
        say!(
            "instructions in fit: {} total, {} per epoch, {}.{:02} per sample",
            trained,
            trained / epochs as u64,
            trained / samples,
            trained % samples * 100 / samples
        );
    }
    say!(
        "RESULT {} accuracy={}/{} checksum={:#010x} epochs={}",
        if outcome.passed() { "PASS" } else { "FAIL" },
        outcome.correct,
        training::TEST_ROWS,
        outcome.checksum,
        epochs
    );
    platform::exit(outcome.passed())
}
