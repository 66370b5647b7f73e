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
//! ## The tutorial's model
//! ```
//! use microtrain::*;
//! // Keras: Dense(64, relu, kernel_regularizer=l2(0.01)) -> Dropout(0.5) -> Dense(1, sigmoid)
//! type Model = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>);
//! let mut model: Model = (
//!     Dense::new(Relu).with_kernel_regularizer(l2(0.01)?),
//!     Dropout::new(0.5)?,
//!     Dense::new(Sigmoid),
//! );
//! let mut rng = Xoshiro128PlusPlus::seed_from_u64(42);
//! model.initialize(&mut rng);
//! // Adam with Keras' defaults, mini-batches of 32.
//! let mut trainer = Trainer::<Model, Adam<<Model as Network>::Params>, 32>::new(Adam::keras_default());
//! # let x = [[0.5f32; 30]; 8]; let y = [[1.0f32]; 8];
//! let data = Dataset::new(&x, &y)?;
//! trainer.fit(&mut model, &BinaryCrossEntropy, data, None, &FitConfig::epochs(10), &mut rng,
//!     |r: &EpochReport| { let _ = r.train.loss; Control::Continue })?;
//! # Ok::<(), microtrain::Error>(())
//! ```
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
//!   (e.g. two `x86_64` builds without `-C target-cpu`), not across them.
//!
//! ## Speed: build with the CPU's vector width
//! The SIMD kernels pick their vector width when they are compiled, from the target
//! features. A plain `cargo build` for x86_64 has SSE2 only (4 lanes, no fused multiply-add),
//! which ran a training step 2–3× slower than AVX2 + FMA, and 2.4–4.5× slower than
//! AVX-512, on the machine behind README's figures. Build the application that trains with
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
#![cfg_attr(not(feature = "fpu-sqrt"), forbid(unsafe_code))]
// With `fpu-sqrt`, `deny`: `math::arm_fpu` (hard-float ARM only) allows its FPU square roots.
#![cfg_attr(feature = "fpu-sqrt", deny(unsafe_code))]
#![deny(missing_docs)]
// Integer overflow and division by zero (index arithmetic) count as panics too.
#![deny(clippy::arithmetic_side_effects)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod activation;
pub mod cv;
pub mod error;
#[cfg(feature = "safetensors")]
pub mod import;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod math;
pub mod model;
pub mod optim;
pub mod penalty;
pub mod persist;
pub mod replay;
pub mod rng;
pub mod train;

pub use activation::{
    Activation, Elementwise, Identity, LeakyRelu, Relu, Sigmoid, SignDerivative, Softmax, Tanh,
};
pub use cv::KFold;
pub use error::Error;
pub use layers::{
    ConstZero, Dense, DenseDropout, DenseParams, Dropout, Frozen, Hidden, Initializer, Layer,
    NoParams, OutputLayer, Parameters, Row,
};
pub use loss::{
    BinaryCrossEntropy, BinaryCrossEntropyFromLogits, CategoricalCrossEntropy, Label, Loss,
    MeanSquaredError, SparseCategoricalCrossEntropy,
};
pub use model::{Network, Workspace};
pub use optim::{Adam, AdamW, Optimizer, Sgd, SgdMomentum};
pub use penalty::{Regularizer, l1, l1_l2, l2};
pub use rand_core::{Rng, SeedableRng};
pub use rand_xoshiro::Xoshiro128PlusPlus;
pub use replay::ReplayBuffer;
pub use train::{
    Callback, Clipping, Control, Dataset, EpochReport, FitConfig, FitSummary, Metrics, StepReport,
    Trainer, evaluate, predict,
};

/// Unwraps a `Result` in a `const` context (a compile error if it is `Err`), so that a
/// validated configuration can initialise a `static`.
///
/// ```
/// use microtrain::{Dropout, unwrap_const};
/// static DROPOUT: Dropout<16> = unwrap_const(Dropout::new(0.2));
/// ```
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
