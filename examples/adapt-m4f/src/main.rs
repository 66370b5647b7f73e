//! Adapts a host-trained digits classifier to one user on the device, and survives a power
//! cycle. See README.md.
//!
//! Each boot: load the store (adapted head, Adam state and the generator) if it is there
//! and passes `persist`'s checks, else the factory weights; print the held-out accuracy; fine-tune the
//! head (the prefix stays frozen in flash); print the accuracy again; save to the store.
//! When the boot found no store it also trains the whole model the same way, for
//! comparison. Exit code 0 unless a step failed or the store could not be written.
#![no_std]
#![no_main]

use panic_semihosting as _;

#[allow(dead_code)] // shared with examples/cortex-m4f, which uses all of it
#[path = "../../cortex-m4f/src/platform.rs"]
mod platform;
mod store;

use microtrain::{
    Adam, Control, Dataset, Dense, Dropout, EpochReport, Error, FitConfig, Frozen, Network, Relu,
    SeedableRng, Softmax, SparseCategoricalCrossEntropy, Trainer, Xoshiro128PlusPlus, const_config,
    l2, persist,
};
use platform::say;

mod factory {
    use microtrain::DenseParams;
    include!(concat!(env!("OUT_DIR"), "/factory.rs"));
}

type Prefix = Dense<64, 32, Relu>;
type Head = Dense<32, 10, Softmax>;
/// On the device: the prefix borrowed from flash, frozen; dropout and L2 on the head.
type Adapted = (Frozen<Prefix, &'static Prefix>, Dropout<32>, Head);
/// The same with the frozen prefix copied into RAM (only for the RAM figure).
type PrefixInRam = (Frozen<Prefix>, Dropout<32>, Head);
/// The whole model trained on the device, for comparison.
type Whole = (Prefix, Dropout<32>, Head);

const BATCH: usize = 8;
// Keras' Adam, bit for bit: its bias corrections come from running powers of the betas (a
// couple of dozen `f32` operations per step on this core, which has no double-precision unit;
// `powf`'s software `f64` only about one step in a hundred), so there is no cheaper mode to
// choose here.
type AdaptOptimizer = Adam<<Adapted as Network>::Params>;
type AdaptTrainer = Trainer<Adapted, AdaptOptimizer, BATCH>;
type WholeTrainer = Trainer<Whole, Adam<<Whole as Network>::Params>, BATCH>;
/// Epochs of fine-tuning per boot over the user's 249 images.
const EPOCHS: usize = 15;
const LEARNING_RATE: f32 = 1e-2;
const STORE_LEN: usize = persist::resumable_len::<Adapted, AdaptOptimizer>();
/// The generator's seed at the first boot; later boots continue the saved generator.
const SEED: u64 = 7;

/// The factory prefix, in flash.
static PREFIX: Prefix = Dense::new(Relu).with_params(factory::PREFIX);
const DROPOUT: Dropout<32> = const_config!(Dropout::new(0.2));
const HEAD: Head = Dense::new(Softmax)
    .with_kernel_regularizer(const_config!(l2(1e-3)))
    .with_params(factory::HEAD);

/// Everything the run keeps in RAM besides its stack; a singleton in `.bss`.
pub struct App {
    model: Adapted,
    trainer: AdaptTrainer,
    whole: Whole,
    whole_trainer: WholeTrainer,
    store: [u8; STORE_LEN],
}

impl App {
    fn new() -> Self {
        let adam = const_config!(Adam::new(LEARNING_RATE));
        Self {
            model: (Frozen::borrowed(&PREFIX), DROPOUT, HEAD),
            trainer: Trainer::new(adam),
            whole: (PREFIX, DROPOUT, HEAD),
            whole_trainer: Trainer::new(const_config!(Adam::new(LEARNING_RATE))),
            store: [0; STORE_LEN],
        }
    }
}

fn correct<N: Network<Input = [f32; 64], Output = [f32; 10]>>(model: &N) -> usize {
    factory::TEST_X
        .iter()
        .zip(&factory::TEST_Y)
        .filter(|(x, y)| {
            let p = model.infer(x);
            let guess = (0..10).fold(0, |best, k| if p.get(k) > p.get(best) { k } else { best });
            guess == usize::from(**y)
        })
        .count()
}

fn error_name(error: Error) -> &'static str {
    match error {
        Error::Checksum => "checksum mismatch",
        Error::Magic => "not a saved model",
        Error::Version { .. } => "unknown format version",
        Error::Shape => "another model",
        Error::Buffer { .. } => "truncated",
        Error::NonFinite => "non-finite values",
        Error::OptimizerMismatch { .. } => "another optimizer",
        Error::GeneratorState => "invalid generator state",
        _ => "invalid",
    }
}

/// Fine-tunes `model` for [`EPOCHS`] epochs; returns the instructions per step, if counted.
fn fine_tune<N, const B: usize>(
    model: &mut N,
    trainer: &mut Trainer<N, Adam<N::Params>, B>,
    rng: &mut Xoshiro128PlusPlus,
    counter: &mut platform::Counter,
) -> Result<Option<u64>, Error>
where
    N: Network<Input = [f32; 64], Output = [f32; 10], OutputActivation = Softmax>,
{
    let data = Dataset::new(&factory::ADAPT_X, &factory::ADAPT_Y)?;
    let start = counter.instructions();
    let summary = trainer.fit(
        model,
        &SparseCategoricalCrossEntropy::<u8>::new(),
        data,
        None,
        &FitConfig::epochs(EPOCHS),
        rng,
        |_: &EpochReport| Control::Continue,
    )?;
    let steps = (summary.epochs * factory::ADAPT_Y.len().div_ceil(B)) as u64;
    Ok(match (start, counter.instructions()) {
        (Some(from), Some(to)) if steps > 0 => Some((to - from) / steps),
        _ => None,
    })
}

fn percent(correct: usize) -> (usize, usize) {
    let permille = correct * 1000 / factory::TEST_Y.len();
    (permille / 10, permille % 10)
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut counter = platform::Counter::start();
    say!("microtrain on-device adaptation on {}", platform::TARGET);
    say!(
        "model: Frozen<Dense<64,32,relu>> in flash -> Dropout(0.2) -> Dense<32,10,softmax>+l2(1e-3); Adam({}e-3); batch {}; {} epochs per boot over {} user images",
        (LEARNING_RATE * 1000.0 + 0.5) as u32,
        BATCH,
        EPOCHS,
        factory::ADAPT_Y.len()
    );
    let Some(app) = platform::take_app() else {
        platform::exit(false)
    };
    let App {
        model,
        trainer,
        whole,
        whole_trainer,
        store: bytes,
    } = app;

    // Replaced by the store's generator if the store loads (nothing changes if it does not).
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(SEED);
    let found = store::read(bytes);
    let status = match found {
        None => {
            say!("store: none; factory weights");
            "none"
        }
        Some(len) => {
            match persist::load_resumable(model, trainer.optimizer_mut(), &mut rng, &bytes[..len]) {
                Ok(()) => {
                    say!(
                        "store: loaded adapted head, optimizer state and generator ({} bytes)",
                        len
                    );
                    "loaded"
                }
                Err(e) => {
                    say!(
                        "store: rejected ({}); falling back to the factory weights",
                        error_name(e)
                    );
                    "rejected"
                }
            }
        }
    };
    let test_len = factory::TEST_Y.len();
    let before = correct(model);
    let (whole_percent, tenth) = percent(before);
    say!(
        "held-out accuracy before: {}/{} = {}.{}%",
        before,
        test_len,
        whole_percent,
        tenth
    );

    let per_step = match fine_tune(model, trainer, &mut rng, &mut counter) {
        Ok(per_step) => per_step,
        Err(e) => {
            say!("RESULT FAIL fine-tuning refused: {}", error_name(e));
            platform::exit(false)
        }
    };
    let after = correct(model);
    let (p, t) = percent(after);
    say!(
        "held-out accuracy after: {}/{} = {}.{}%",
        after,
        test_len,
        p,
        t
    );
    if let Some(insns) = per_step {
        say!(
            "instructions per adaptation step (batch {}): {}",
            BATCH,
            insns
        );
    }

    let saved = persist::save_resumable(model, trainer.optimizer(), &rng, bytes);
    let written = match saved {
        Ok(len) => store::write(&bytes[..len]),
        Err(_) => false,
    };
    say!(
        "store: {} ({} bytes)",
        if written { "saved" } else { "NOT saved" },
        STORE_LEN
    );
    say!(
        "ram (training state): head only {} B (prefix in flash); prefix in RAM {} B; whole model {} B",
        AdaptTrainer::TRAINING_RAM_BYTES,
        Trainer::<PrefixInRam, Adam<<PrefixInRam as Network>::Params>, BATCH>::TRAINING_RAM_BYTES,
        WholeTrainer::TRAINING_RAM_BYTES
    );

    if status == "none" {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(SEED);
        match fine_tune(whole, whole_trainer, &mut rng, &mut counter) {
            Ok(per_step) => {
                let whole_after = correct(whole);
                let (p, t) = percent(whole_after);
                say!(
                    "whole model trained on the device instead: {}/{} = {}.{}%",
                    whole_after,
                    test_len,
                    p,
                    t
                );
                if let Some(insns) = per_step {
                    say!(
                        "instructions per whole-model step (batch {}): {}",
                        BATCH,
                        insns
                    );
                }
            }
            Err(e) => say!("whole-model training refused: {}", error_name(e)),
        }
    }
    say!(
        "RESULT {} store={} before={}/{} after={}/{}",
        if written { "PASS" } else { "FAIL" },
        status,
        before,
        test_len,
        after,
        test_len
    );
    platform::exit(written)
}
