//! # microtrain
//!
//! Train small neural networks with L1, L2, L1+L2 and dropout regularization without a
//! heap: on a desktop CPU or inside microcontroller firmware.
//!
//! - Layers have sizes fixed at compile time ([`Dense<IN, OUT, Activation>`](Dense),
//!   [`Dropout<N>`](Dropout)) and chain as a tuple; a size mismatch does not compile.
//! - Every buffer's size is known at compile time: training never allocates, and a model
//!   and its [`Trainer`] can be `static`s. [`Trainer::TRAINING_RAM_BYTES`] is the RAM.
//! - Keras semantics by default: `l2(λ)` adds `λ·Σw²` to the loss, `Dropout(rate)` drops
//!   with probability `rate` and scales kept units by `1/(1-rate)`, Adam's ε sits outside
//!   the square root. Where PyTorch differs, the item's docs say so.
//! - The same seed gives the same training run, bit for bit (see *Determinism*).
//!
//! ## Add it
//! ```toml
//! [dependencies]
//! microtrain = "0.1"
//! # in firmware: the same line; the crate is no_std with no default features
//! ```
//!
//! | feature | what it does |
//! |---|---|
//! | *(none)* | the SIMD kernels on targets with vector units (x86_64, AArch64, wasm `simd128`), the scalar ones elsewhere (Cortex-M, RISC-V) |
//! | `scalar` | the scalar reference kernels everywhere: the same bits on every target (see *Determinism*) |
//! | `simd` | the `wide` kernels also on Cortex-M and RISC-V (e.g. to measure them there); `scalar` wins if both are on |
//! | `fpu-sqrt` | square roots on the FPU on hard-float ARM (`vsqrt.f32`), and the gradients' finiteness scan with one `vldmia` per eight values (the crate's one `unsafe` module there); same bits, Adam's square root from ~50 instructions to 2 on a Cortex-M4F |
//! | `defmt` | [`defmt::Format`](https://docs.rs/defmt) for [`Error`] and the training reports, for firmware that logs with defmt |
//! | `std` | on x86_64, run-time dispatch: the dense products, Adam and the dropout masks run AVX-512 or AVX2 + FMA code on CPUs that have it, in builds without `-C target-cpu` ([`kernels::avx2`](kernels)); the crate's `Error` implements `core::error::Error` with or without it |
//!
//! ## The tutorial's model
//! ```
//! use microtrain::*;
//! // Keras: Dense(64, relu, kernel_regularizer=l2(0.01)) -> Dropout(0.5) -> Dense(1, sigmoid)
//! network! { type Model = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>); }
//! let mut model: Model = (
//!     Dense::new(Relu).with_kernel_regularizer(l2(0.01)?),
//!     Dropout::new(0.5)?,
//!     Dense::new(Sigmoid),
//! );
//! let mut rng = Xoshiro128PlusPlus::seed_from_u64(42);
//! // Draw the initial weights (Glorot-uniform, as Keras). Training a model that was
//! // neither initialised nor loaded is refused with `Error::Uninitialized`.
//! model.initialize(&mut rng);
//! // Adam with Keras' defaults, mini-batches of 32.
//! let mut trainer = Trainer::<Model, _, 32>::new(Adam::keras_default());
//! println!("{}", trainer.summary()); // layers, widths, parameters, training RAM
//! # let x = [[0.5f32; 30]; 8]; let y = [[1.0f32]; 8];
//! let data = Dataset::new(&x, &y)?;
//! trainer.fit(&mut model, &BinaryCrossEntropy, data, None, &FitConfig::epochs(10), &mut rng,
//!     |report| { println!("loss {:.4}", report.train.loss); Control::Continue })?;
//! # Ok::<(), microtrain::Error>(())
//! ```
//!
//! ## The API by task
//! | task | what to use |
//! |---|---|
//! | define a model | [`network!`] over a tuple of [`Dense`], [`Dropout`], [`DenseDropout`]; activations in [`activation`]; penalties [`l1`], [`l2`], [`l1_l2`]; [`Dense::with_max_norm`] |
//! | regularize further (Keras' layers) | [`GaussianNoise`], [`GaussianDropout`], [`AlphaDropout`] with [`Selu`]; [`Dense::with_activity_regularizer`]; constraints in [`constraint`] ([`Dense::with_kernel_constraint`], [`Dense::with_bias_constraint`]) |
//! | prepare data | [`Standardizer`] (fitted on the training rows), [`stratified_split`] (seeded, into train/validation/test indices), [`KFold`] for cross-validation; [`Dataset`] pairs samples and targets, with Keras' sample and class weights ([`Dataset::with_sample_weights`], [`Dataset::with_class_weights`]) |
//! | train | [`Trainer`] with an optimizer ([`Adam`], [`AdamW`], [`Sgd`], [`SgdMomentum`], [`RMSprop`], [`Adagrad`], [`Nadam`]; Keras' `weight_decay` on any of them with [`WeightDecay`]) and a loss ([`loss`]: from logits, label smoothing); [`Trainer::fit`] for epochs ([`Trainer::fit_with_shuffle_buffer`]: a Fisher–Yates shuffle over a caller's index buffer, for a device that counts instructions), [`Trainer::step`] for one batch (e.g. one sample as it arrives on a device); [`Clipping`] |
//! | schedule the learning rate | [`Scheduled`] with [`ExponentialDecay`], [`PiecewiseConstantDecay`], [`InverseTimeDecay`], [`PolynomialDecay`], [`CosineDecay`] |
//! | validate | `fit`'s `validation` argument (per-epoch [`EpochReport::validation`]), [`evaluate`] (loss and accuracy), [`ConfusionMatrix`] (precision, recall, F1), [`RegressionMetrics`] (MSE, MAE, R²), [`data_loss`] (the loss without the penalty) |
//! | stop early | [`EarlyStopping`] in [`FitConfig::with_early_stopping`] (Keras' `EarlyStopping`: monitor, `min_delta`, patience, baseline, `start_from_epoch`, `restore_best_weights` with [`Trainer::with_best_weights`]); [`FitConfig::with_patience`] for the short form; or return [`Control::Stop`] from the callback |
//! | adapt the learning rate | [`ReduceLrOnPlateau`] in [`FitConfig::with_reduce_lr_on_plateau`] (Keras' `ReduceLROnPlateau`); [`Optimizer::set_learning_rate`] |
//! | checkpoint during training | a [`Callback`] sees the model and optimizer after each epoch ([`with_model`] for a closure); [`persist::save`] |
//! | save / load | [`persist::save`], [`persist::load`] (parameters); [`persist::save_with_optimizer`], [`persist::load_with_optimizer`] (to resume training); [`persist::save_resumable`], [`persist::load_resumable`] (with the generator: bit for bit after a reset); sizes from [`persist::parameters_len`] |
//! | inspect | [`Trainer::summary`] / [`summary()`] (Keras' `model.summary()`), [`Trainer::TRAINING_RAM_BYTES`], [`Trainer::gradients`] |
//! | run on a device | the recipe below; [`predict`] or [`Network::infer`] for inference |
//!
//! ## Firmware: a static model, no allocator
//! Everything is sized at compile time and `const`-constructible, so a firmware keeps the
//! model and its trainer in `static`s (zero-initialised `.bss`, no flash for the weights)
//! and needs no allocator. A sketch, for one core (take the `&mut`s once, e.g. with
//! `cortex_m::singleton!` or from a `static mut` behind a critical section):
//!
//! ```
//! use microtrain::*;
//! network! { pub type Model = (DenseDropout<4, 16, Relu>, Dense<16, 3, Softmax>); }
//! pub type ModelTrainer = Trainer<Model, Adam<<Model as Network>::Params>, 1>;
//!
//! // `const` constructors: validated at compile time by `const_config!`.
//! const MODEL: Model = (
//!     DenseDropout::new(
//!         Dense::new(Relu).with_kernel_regularizer(const_config!(l2(1e-3))),
//!         const_config!(Dropout::new(0.2)),
//!     ),
//!     Dense::new(Softmax),
//! );
//! const TRAINER: ModelTrainer = Trainer::new(const_config!(Adam::new(0.01)));
//!
//! fn on_device(model: &mut Model, trainer: &mut ModelTrainer, x: &[[f32; 4]], y: &[u8])
//!     -> Result<(), Error>
//! {
//!     let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
//!     model.initialize(&mut rng); // or `persist::load` the weights saved before a reset
//!     let data = Dataset::new(x, y)?;
//!     trainer.fit(model, &SparseCategoricalCrossEntropy::<u8>::new(), data, None,
//!         &FitConfig::epochs(5), &mut rng, |_| Control::Continue)?;
//!     Ok(())
//! }
//! # let (mut model, mut trainer) = (MODEL, TRAINER);
//! # on_device(&mut model, &mut trainer, &[[0.1, 0.2, 0.3, 0.4]; 3], &[0, 1, 2])?;
//! # Ok::<(), microtrain::Error>(())
//! ```
//!
//! Build with `--no-default-features` for `thumbv7em-none-eabihf`, `thumbv6m-none-eabi` or
//! `riscv32imac-unknown-none-elf` (add `fpu-sqrt` on a Cortex-M4F/M7/M33). Unwrapping a
//! `Result` costs no float formatting: [`Error`]'s `Debug` prints floats as bits on
//! bare-metal targets. The source repository's `examples/cortex-m4f` is such a firmware,
//! run under QEMU by its CI on a Cortex-M4F, a Cortex-M0 and a RISC-V core.
//!
//! ## Determinism
//! Training draws every random number (initialisation, shuffling, dropout masks) from the
//! generator the caller passes, so the same seed gives the same run, bit for bit, on the
//! same build. Across builds:
//! - with the scalar kernels (the `scalar` feature, and the default on targets without a
//!   SIMD unit: Cortex-M, RISC-V) every operation is an IEEE-754 `f32` operation in a fixed
//!   order, with no fused multiply-add, and every transcendental comes from `libm`'s Rust
//!   code; such builds give **identical bits on every target** (x86_64, AArch64,
//!   thumbv7em, thumbv6m soft-float, riscv32imac);
//! - the SIMD kernels sum in another order, `wide` fuses multiply-adds where the target has
//!   FMA, and their sigmoid, tanh and softmax use `wide`'s vector `exp` (within 4 ulp of
//!   `libm`'s): their bits are identical between builds for the same target features
//!   (e.g. two `x86_64` builds without `-C target-cpu`), not across them;
//! - with the `std` feature, an x86_64 build without AVX2 + FMA enabled at compile time
//!   chooses its dense products and Adam at run time: the same binary gives one set of bits
//!   on CPUs with AVX-512F/DQ, another on CPUs with AVX2 + FMA and no AVX-512, a third on
//!   CPUs without (same level, same bits).
//!
//! ## Speed: build with the CPU's vector width
//! The SIMD kernels pick their vector width when they are compiled, from the target
//! features. A plain `cargo build` for x86_64 has SSE2 only (4 lanes, no fused multiply-add),
//! which ran a training step 2–3× slower than AVX2 + FMA, and 2.4–4.5× slower than
//! AVX-512, on the machine behind README's figures. With the `std` feature such a build
//! runs the dense products, Adam and the dropout masks with AVX-512 or AVX2 + FMA on CPUs
//! that have them (`kernels::avx2`, chosen at run time); the rest of the SIMD set (the
//! activations, the loss) stays SSE2 without the flags. Build the application that trains
//! with
//! ```text
//! RUSTFLAGS="-C target-cpu=x86-64-v3" cargo build --release   # AVX2 + FMA (CPUs from 2013 on)
//! RUSTFLAGS="-C target-cpu=native" cargo build --release      # this CPU, AVX-512 where present
//! ```
//! or set `rustflags` under `[build]` in its `.cargo/config.toml`. Builds for different
//! target features train to different bits (see *Determinism*). On Cortex-M and RISC-V the
//! scalar kernels are the default and need no flags.
//!
//! ## Memory
//! Training RAM = `size_of` the model (parameters, configuration) + the [`Trainer`]
//! (gradients: one float per parameter; optimizer state: 2 for Adam, 1 for momentum, 0
//! for SGD; one `[f32; width]` per layer boundary and batch row; 8 bytes per dropout
//! layer). [`Trainer::TRAINING_RAM_BYTES`] computes it. [`DenseDropout`] applies a dropout
//! in place on the dense layer before it (ReLU and other [`SignDerivative`] activations),
//! which saves that boundary's buffer and trains bit for bit like the pair with ReLU.
//! A [`Frozen`] layer has no gradients and no optimizer state; borrowed from a `static`, its
//! parameters stay in flash (see README's *Adapting on the device*).
#![no_std]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]
#![cfg_attr(not(any(feature = "fpu-sqrt", simd_dispatch)), forbid(unsafe_code))]
// With `fpu-sqrt`, `deny`: `math::arm_fpu` (hard-float ARM only) allows its FPU square roots.
// With run-time dispatch (x86_64 with `std`), `deny`: `kernels::avx2::arch` allows the
// AVX2 + FMA and AVX-512 entries and intrinsics.
#![cfg_attr(any(feature = "fpu-sqrt", simd_dispatch), deny(unsafe_code))]
#![deny(missing_docs)]
// Integer overflow and division by zero (index arithmetic) count as panics too.
#![deny(clippy::arithmetic_side_effects)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod activation;
pub mod constraint;
pub mod cv;
pub mod error;
#[cfg(feature = "safetensors")]
pub mod import;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod math;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod penalty;
pub mod persist;
pub mod replay;
pub mod rng;
pub mod split;
pub mod standardize;
pub mod summary;
pub mod train;

pub use activation::Selu;
pub use activation::{
    Activation, Elementwise, Identity, LeakyRelu, Relu, Sigmoid, SignDerivative, Softmax, Tanh,
};
pub use cv::KFold;
pub use error::Error;
pub use layers::{AlphaDropout, GaussianDropout, GaussianNoise};
pub use layers::{
    ConstZero, Dense, DenseDropout, DenseParams, Dropout, Frozen, Hidden, Initializer, Layer,
    NoParams, OutputLayer, Parameters, Row,
};
pub use loss::{
    BinaryCrossEntropy, BinaryCrossEntropyFromLogits, CategoricalCrossEntropy, Label, Loss,
    MeanSquaredError, SparseCategoricalCrossEntropy,
};
pub use loss::{
    CategoricalCrossEntropyFromLogits, LabelSmoothing, SmoothLabels,
    SparseCategoricalCrossEntropyFromLogits,
};
pub use metrics::{ConfusionMatrix, RegressionMetrics, data_loss};
pub use model::{Network, Workspace};
pub use optim::StateTag;
pub use optim::{Adagrad, Nadam, RMSprop};
pub use optim::{Adam, AdamW, Optimizer, Sgd, SgdMomentum};
pub use optim::{
    CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRateSchedule, PiecewiseConstantDecay,
    PolynomialDecay, Scheduled,
};
pub use optim::{DecayedTensors, WeightDecay};
pub use penalty::{ActivityRegularizer, NoActivityRegularizer};
pub use penalty::{Regularizer, l1, l1_l2, l2};
pub use rand_core::{Rng, SeedableRng};
pub use rand_xoshiro::Xoshiro128PlusPlus;
pub use replay::ReplayBuffer;
pub use split::{Split, stratified_split};
pub use standardize::Standardizer;
pub use summary::{Summary, summary};
pub use train::{
    BestWeights, BestWeightsBuffer, EarlyStopping, EarlyStoppingState, EarlyStoppingVerdict, Mode,
    Monitor, NoBestWeights, ReduceLrOnPlateau, ReduceLrOnPlateauState, WithModel, with_model,
};
pub use train::{
    Callback, Clipping, Control, Dataset, EpochReport, FitConfig, FitSummary, Metrics,
    RefusedSteps, StepReport, Trainer, evaluate, predict,
};

/// Evaluates a configuration `Result` at compile time, inside `const { }`, and gives its
/// value: an `Err` is a compile error, and the expression cannot depend on a run-time value,
/// so no misuse can panic at run time. For `static`s, `const`s and configuration inside
/// functions alike.
///
/// ```
/// use microtrain::{Adam, Dense, Dropout, Relu, Trainer, const_config, l2};
/// static DROPOUT: Dropout<16> = const_config!(Dropout::new(0.2));
/// fn hidden() -> Dense<4, 16, Relu> {
///     Dense::new(Relu).with_kernel_regularizer(const_config!(l2(1e-3)))
/// }
/// # let _ = (DROPOUT, hidden());
/// ```
///
/// A value known only at run time does not compile (validate it with the constructor's
/// `Result` instead):
/// ```compile_fail
/// use microtrain::{Dropout, const_config};
/// fn dropout(rate: f32) -> Dropout<16> {
///     const_config!(Dropout::new(rate))
/// }
/// ```
/// and neither does an invalid constant:
/// ```compile_fail
/// use microtrain::{Dropout, const_config};
/// static DROPOUT: Dropout<16> = const_config!(Dropout::new(1.5));
/// ```
#[macro_export]
macro_rules! const_config {
    ($config:expr $(,)?) => {
        const {
            match $config {
                ::core::result::Result::Ok(value) => value,
                #[allow(clippy::panic)]
                ::core::result::Result::Err(_) => {
                    ::core::panic!("invalid microtrain configuration in a const context")
                }
            }
        }
    };
}

/// Unwraps a `Result` in a `const` context (a compile error if it is `Err`), so that a
/// validated configuration can initialise a `static`. Deprecated: it can also be called at
/// run time, where an `Err` panics; [`const_config!`] cannot.
///
/// ```
/// # #![allow(deprecated)]
/// use microtrain::{Dropout, unwrap_const};
/// static DROPOUT: Dropout<16> = unwrap_const(Dropout::new(0.2));
/// ```
#[deprecated(
    note = "use `const_config!(…)`, which is evaluated at compile time and cannot panic at run time"
)]
pub const fn unwrap_const<T: Copy>(result: Result<T, Error>) -> T {
    match result {
        Ok(value) => value,
        #[allow(clippy::panic)]
        Err(_) => panic!("invalid microtrain configuration in a const context"),
    }
}

/// The README's code, compiled and run as a doctest so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
