//! The one error type of the crate: every fallible call names the value it refused.

use core::fmt;

/// Why a configuration, a data set or a training step was refused.
///
/// Each variant carries the offending value so that a log line (or a debugger on a
/// microcontroller) tells what to fix without reading the source.
///
/// `Debug` (what `unwrap` prints) reads like a derived one. On bare-metal targets
/// (`target_os = "none"`) it writes each `f32` as its exact bit pattern,
/// `f32::from_bits(0x3fc00000)`, so that a firmware that only unwraps does not link
/// `core`'s float formatting (about 25 KB of flash on a Cortex-M4F: README, *On a
/// microcontroller*).
/// With the `defmt` feature, `Error` is also `defmt::Format`.
#[derive(Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// A dropout rate outside `[0, 1)` (Keras' `rate`: the probability of dropping a unit).
    DropoutRate {
        /// The refused rate.
        rate: f32,
    },
    /// A regularization factor that is negative or not finite.
    Penalty {
        /// The refused factor (`l1` or `l2`).
        value: f32,
    },
    /// A learning rate that is not finite and positive.
    LearningRate {
        /// The refused learning rate.
        learning_rate: f32,
    },
    /// A momentum or Adam `beta` outside `[0, 1)`.
    Beta {
        /// The refused value.
        beta: f32,
    },
    /// An `epsilon` that is not finite and positive.
    Epsilon {
        /// The refused value.
        epsilon: f32,
    },
    /// A weight-decay factor that is negative or not finite.
    WeightDecay {
        /// The refused value.
        weight_decay: f32,
    },
    /// A LeakyReLU slope that is negative or not finite.
    Slope {
        /// The refused slope.
        alpha: f32,
    },
    /// A gradient-clipping limit that is not finite and positive.
    Clip {
        /// The refused limit.
        limit: f32,
    },
    /// A max-norm constraint that is not finite and positive.
    MaxNorm {
        /// The refused maximum.
        max_value: f32,
    },
    /// A saved model whose flags hold a bit this version does not know, or disagree with
    /// its optimizer-state count.
    Flags {
        /// The flags found.
        flags: u16,
    },
    /// Saved optimizer state that is finite but not a state the optimizer can continue
    /// from (e.g. a negative second moment of Adam).
    OptimizerState,
    /// An early-stopping `min_delta` that is NaN or infinite.
    MinDelta {
        /// The refused value.
        min_delta: f32,
    },
    /// A batch size of zero.
    BatchSize,
    /// A sample slice that is empty.
    EmptyData,
    /// Samples and targets of different lengths.
    LengthMismatch {
        /// Number of samples.
        samples: usize,
        /// Number of targets.
        targets: usize,
    },
    /// A class label that is not smaller than the number of classes.
    LabelOutOfRange {
        /// The refused label.
        label: usize,
        /// Number of classes of the output layer.
        classes: usize,
    },
    /// A fold count below 2 or above the number of samples.
    Folds {
        /// The refused fold count.
        folds: usize,
        /// Number of samples.
        samples: usize,
    },
    /// A fold index not below the fold count.
    FoldIndex {
        /// The refused index.
        fold: usize,
        /// Number of folds.
        folds: usize,
    },
    /// An input, loss or gradient that is NaN or infinite: the step was not applied.
    NonFinite,
    /// A buffer too small for a saved model.
    Buffer {
        /// Bytes the operation needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A saved model that does not start with the format's magic bytes.
    Magic,
    /// A saved model in a format version this build cannot read.
    Version {
        /// The version found in the buffer.
        found: u16,
    },
    /// A saved model whose layer sizes or parameter counts differ from the model's.
    Shape,
    /// A saved model whose checksum does not match its contents.
    Checksum,
    /// A split asked for more held-out samples than there are.
    SplitSize {
        /// Validation plus test samples asked for.
        requested: usize,
        /// Number of samples.
        samples: usize,
    },
    /// A model of two or more layers with a layer whose weights are all zero, as `const`
    /// construction leaves them: it was never initialised (`model.initialize(&mut rng)`) nor
    /// loaded, and training would keep every unit of a layer alike.
    Uninitialized,
    /// Saved optimizer state written by another optimizer, or under settings the state
    /// depends on that differ (Adam's betas): see [`crate::StateTag`]. The kinds are equal
    /// when only the settings differ.
    OptimizerMismatch {
        /// The kind of optimizer that wrote the state (`*b"ADMW"`).
        saved: [u8; 4],
        /// The kind of optimizer loading it.
        expected: [u8; 4],
    },
    /// A saved generator state no generator can be in (xoshiro's all-zero state).
    GeneratorState,
    /// A label-smoothing amount outside `[0, 1]` (Keras' `label_smoothing`).
    LabelSmoothing {
        /// The refused amount.
        label_smoothing: f32,
    },
    /// Sample weights of another length than the samples.
    WeightCount {
        /// Number of samples.
        samples: usize,
        /// Number of weights.
        weights: usize,
    },
    /// A sample or class weight that is negative or not finite.
    Weight {
        /// The refused weight.
        weight: f32,
    },
    /// An early-stopping `baseline` that is NaN or infinite.
    Baseline {
        /// The refused value.
        baseline: f32,
    },
    /// A `ReduceLrOnPlateau` factor outside `(0, 1)`.
    Factor {
        /// The refused value.
        factor: f32,
    },
    /// A `ReduceLrOnPlateau` `min_lr` that is negative or not finite.
    MinLearningRate {
        /// The refused value.
        min_lr: f32,
    },
    /// A callback monitors a metric the run does not compute: a validation metric without
    /// a validation set, or an accuracy for a loss that has none.
    MissingMetric {
        /// The metric.
        monitor: crate::train::Monitor,
    },
    /// `restore_best_weights` on a trainer without room for them: build it with
    /// `Trainer::with_best_weights` (or `with_best_weights_in`).
    NoRoomForBestWeights,
    /// A weight constraint's bound or rate out of range (e.g. `MinMaxNorm` with
    /// `min_value > max_value`, or a `rate` outside `[0, 1]`).
    ConstraintValue {
        /// The value refused.
        value: f32,
    },
    /// A norm constraint's axis other than 0 or 1 (Keras' axes of a `Dense` kernel).
    ConstraintAxis {
        /// The axis asked for.
        axis: usize,
    },
    /// A `GaussianNoise` standard deviation that is negative or not finite.
    NoiseStddev {
        /// The standard deviation asked for.
        stddev: f32,
    },
    /// [`Optimizer::set_learning_rate`](crate::Optimizer::set_learning_rate) on an optimizer
    /// whose rate a schedule sets ([`crate::Scheduled`]); Keras raises `TypeError` ("not
    /// settable") there.
    ScheduledLearningRate,
    /// A learning-rate schedule with `decay_steps = 0`.
    DecaySteps,
    /// A schedule's `decay_rate` that is negative or not finite.
    DecayRate {
        /// The refused rate.
        decay_rate: f32,
    },
    /// A polynomial decay's `power` that is negative or not finite.
    Power {
        /// The refused power.
        power: f32,
    },
    /// A cosine decay's `alpha` outside `[0, 1]`.
    Alpha {
        /// The refused fraction.
        alpha: f32,
    },
    /// Piecewise-constant boundaries that do not increase strictly.
    Boundaries,
    /// An Adagrad `initial_accumulator_value` that is negative or not finite.
    InitialAccumulator {
        /// The refused value.
        value: f32,
    },
    /// A shuffle buffer whose length is not the number of samples, or a data set too large
    /// for `u16` indices (more than 65,536 samples).
    ShuffleBuffer {
        /// Number of samples.
        samples: usize,
        /// Length of the buffer.
        buffer: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::DropoutRate { rate } => write!(f, "dropout rate {rate} is outside [0, 1)"),
            Error::Penalty { value } => {
                write!(f, "regularization factor {value} is negative or not finite")
            }
            Error::LearningRate { learning_rate } => {
                write!(
                    f,
                    "learning rate {learning_rate} is not finite and positive"
                )
            }
            Error::Beta { beta } => write!(f, "beta/momentum {beta} is outside [0, 1)"),
            Error::Epsilon { epsilon } => {
                write!(f, "epsilon {epsilon} is not finite and positive")
            }
            Error::WeightDecay { weight_decay } => {
                write!(f, "weight decay {weight_decay} is negative or not finite")
            }
            Error::Slope { alpha } => {
                write!(f, "LeakyReLU slope {alpha} is negative or not finite")
            }
            Error::Clip { limit } => {
                write!(
                    f,
                    "gradient clipping limit {limit} is not finite and positive"
                )
            }
            Error::MaxNorm { max_value } => {
                write!(f, "max-norm {max_value} is not finite and positive")
            }
            Error::ConstraintValue { value } => {
                write!(f, "constraint bound or rate {value} is out of range")
            }
            Error::ConstraintAxis { axis } => {
                write!(f, "constraint axis {axis} is neither 0 nor 1")
            }
            Error::NoiseStddev { stddev } => {
                write!(f, "noise stddev {stddev} is negative or not finite")
            }
            Error::BatchSize => write!(f, "batch size must be at least 1"),
            Error::EmptyData => write!(f, "no samples were given"),
            Error::LengthMismatch { samples, targets } => {
                write!(f, "{samples} samples but {targets} targets")
            }
            Error::LabelOutOfRange { label, classes } => {
                write!(
                    f,
                    "label {label} is not below the number of classes {classes}"
                )
            }
            Error::Folds { folds, samples } => {
                write!(
                    f,
                    "{folds} folds for {samples} samples: need 2 <= folds <= samples"
                )
            }
            Error::FoldIndex { fold, folds } => write!(f, "fold {fold} is not below {folds}"),
            Error::NonFinite => write!(f, "a sample, loss, gradient or value was NaN or infinite"),
            Error::Buffer { needed, available } => {
                write!(f, "buffer of {available} bytes, {needed} needed")
            }
            Error::Magic => write!(f, "not a saved microtrain model (bad magic bytes)"),
            Error::Version { found } => {
                write!(f, "saved model format version {found} is not supported")
            }
            Error::Shape => write!(
                f,
                "saved model's layer sizes or parameter counts differ from this model's"
            ),
            Error::Checksum => write!(f, "saved model is corrupted (CRC-32 mismatch)"),
            Error::MinDelta { min_delta } => {
                write!(f, "early-stopping min_delta {min_delta} is not finite")
            }
            Error::Flags { flags } => write!(f, "saved model has unknown flags {flags:#06x}"),
            Error::OptimizerState => write!(
                f,
                "saved optimizer state is not one the optimizer can continue from"
            ),
            Error::SplitSize { requested, samples } => {
                write!(f, "{requested} held-out samples asked of {samples}")
            }
            Error::Uninitialized => write!(
                f,
                "a layer's weights are all zero: initialise the model \
                 (`model.initialize(&mut rng)`) or load saved parameters before training"
            ),
            Error::OptimizerMismatch { saved, expected } => {
                if saved == expected {
                    write!(
                        f,
                        "saved optimizer state was written by {} with other settings (betas)",
                        Kind(saved)
                    )
                } else {
                    write!(
                        f,
                        "saved optimizer state was written by {}, not by {}",
                        Kind(saved),
                        Kind(expected)
                    )
                }
            }
            Error::GeneratorState => write!(f, "saved generator state is all zeros"),
            Error::LabelSmoothing { label_smoothing } => {
                write!(f, "label smoothing {label_smoothing} is outside [0, 1]")
            }
            Error::WeightCount { samples, weights } => {
                write!(f, "{samples} samples but {weights} sample weights")
            }
            Error::Weight { weight } => {
                write!(
                    f,
                    "sample or class weight {weight} is negative or not finite"
                )
            }
            Error::Baseline { baseline } => {
                write!(f, "early-stopping baseline {baseline} is not finite")
            }
            Error::Factor { factor } => {
                write!(f, "ReduceLrOnPlateau factor {factor} is outside (0, 1)")
            }
            Error::MinLearningRate { min_lr } => {
                write!(
                    f,
                    "ReduceLrOnPlateau min_lr {min_lr} is negative or not finite"
                )
            }
            Error::MissingMetric { monitor } => write!(
                f,
                "the monitored metric `{}` is not computed by this run",
                monitor.keras_name()
            ),
            Error::NoRoomForBestWeights => write!(
                f,
                "restore_best_weights needs a trainer built with `with_best_weights()`"
            ),
            Error::ScheduledLearningRate => write!(
                f,
                "the learning rate is set by a schedule and cannot be set directly"
            ),
            Error::DecaySteps => write!(f, "decay_steps must be at least 1"),
            Error::DecayRate { decay_rate } => {
                write!(f, "decay_rate {decay_rate} is negative or not finite")
            }
            Error::Power { power } => write!(f, "power {power} is negative or not finite"),
            Error::Alpha { alpha } => write!(f, "cosine decay alpha {alpha} is outside [0, 1]"),
            Error::Boundaries => write!(f, "piecewise boundaries must increase strictly"),
            Error::ShuffleBuffer { samples, buffer } => write!(
                f,
                "a shuffle buffer of {buffer} indices for {samples} samples (one u16 per sample, at most 65,536)"
            ),
            Error::InitialAccumulator { value } => write!(
                f,
                "initial_accumulator_value {value} is negative or not finite"
            ),
        }
    }
}

/// An optimizer's kind ([`crate::StateTag::kind`]) as its bytes, e.g. `b"ADAM"`.
struct Kind([u8; 4]);

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("b\"")?;
        for byte in self.0 {
            write!(f, "{}", core::ascii::escape_default(byte))?;
        }
        f.write_str("\"")
    }
}

/// An `f32` field of [`Error`]'s `Debug`: `core`'s float formatting on hosted targets, the
/// exact bits on bare-metal ones (see [`Error`]).
struct FloatField(f32);

impl fmt::Debug for FloatField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if cfg!(target_os = "none") {
            write_bits(self.0, f)
        } else {
            fmt::Debug::fmt(&self.0, f)
        }
    }
}

/// Writes `value` as the Rust expression that rebuilds it exactly, with integer formatting
/// only.
fn write_bits(value: f32, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "f32::from_bits({:#010x})", value.to_bits())
}

/// One field of an [`Error`] variant, for its `Debug`.
#[derive(Clone, Copy)]
enum Field {
    Float(f32),
    Count(usize),
    Kind([u8; 4]),
    Name(&'static str),
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Field::Float(value) => fmt::Debug::fmt(&FloatField(value), f),
            Field::Count(value) => fmt::Debug::fmt(&value, f),
            Field::Kind(kind) => fmt::Display::fmt(&Kind(kind), f),
            Field::Name(value) => fmt::Debug::fmt(value, f),
        }
    }
}

impl Error {
    /// The variant's name and its fields (name and value), at most two.
    fn parts(&self) -> (&'static str, [Option<(&'static str, Field)>; 2]) {
        use Field::{Count, Float};
        let one = |name, value| [Some((name, value)), None];
        let two = |a, x, b, y| [Some((a, Count(x))), Some((b, Count(y)))];
        match *self {
            Error::DropoutRate { rate } => ("DropoutRate", one("rate", Float(rate))),
            Error::Penalty { value } => ("Penalty", one("value", Float(value))),
            Error::LearningRate { learning_rate } => {
                ("LearningRate", one("learning_rate", Float(learning_rate)))
            }
            Error::Beta { beta } => ("Beta", one("beta", Float(beta))),
            Error::Epsilon { epsilon } => ("Epsilon", one("epsilon", Float(epsilon))),
            Error::WeightDecay { weight_decay } => {
                ("WeightDecay", one("weight_decay", Float(weight_decay)))
            }
            Error::Slope { alpha } => ("Slope", one("alpha", Float(alpha))),
            Error::Clip { limit } => ("Clip", one("limit", Float(limit))),
            Error::MaxNorm { max_value } => ("MaxNorm", one("max_value", Float(max_value))),
            Error::MinDelta { min_delta } => ("MinDelta", one("min_delta", Float(min_delta))),
            Error::Flags { flags } => ("Flags", one("flags", Count(usize::from(flags)))),
            Error::OptimizerState => ("OptimizerState", [None, None]),
            Error::BatchSize => ("BatchSize", [None, None]),
            Error::EmptyData => ("EmptyData", [None, None]),
            Error::LengthMismatch { samples, targets } => (
                "LengthMismatch",
                two("samples", samples, "targets", targets),
            ),
            Error::LabelOutOfRange { label, classes } => {
                ("LabelOutOfRange", two("label", label, "classes", classes))
            }
            Error::Folds { folds, samples } => ("Folds", two("folds", folds, "samples", samples)),
            Error::FoldIndex { fold, folds } => ("FoldIndex", two("fold", fold, "folds", folds)),
            Error::NonFinite => ("NonFinite", [None, None]),
            Error::Buffer { needed, available } => {
                ("Buffer", two("needed", needed, "available", available))
            }
            Error::Magic => ("Magic", [None, None]),
            Error::Version { found } => ("Version", one("found", Count(usize::from(found)))),
            Error::Shape => ("Shape", [None, None]),
            Error::Checksum => ("Checksum", [None, None]),
            Error::SplitSize { requested, samples } => {
                ("SplitSize", two("requested", requested, "samples", samples))
            }
            Error::Uninitialized => ("Uninitialized", [None, None]),
            Error::OptimizerMismatch { saved, expected } => (
                "OptimizerMismatch",
                [
                    Some(("saved", Field::Kind(saved))),
                    Some(("expected", Field::Kind(expected))),
                ],
            ),
            Error::GeneratorState => ("GeneratorState", [None, None]),
            Error::LabelSmoothing { label_smoothing } => (
                "LabelSmoothing",
                one("label_smoothing", Float(label_smoothing)),
            ),
            Error::WeightCount { samples, weights } => {
                ("WeightCount", two("samples", samples, "weights", weights))
            }
            Error::Weight { weight } => ("Weight", one("weight", Float(weight))),
            Error::Baseline { baseline } => ("Baseline", one("baseline", Float(baseline))),
            Error::Factor { factor } => ("Factor", one("factor", Float(factor))),
            Error::MinLearningRate { min_lr } => ("MinLearningRate", one("min_lr", Float(min_lr))),
            Error::MissingMetric { monitor } => (
                "MissingMetric",
                one("monitor", Field::Name(monitor.keras_name())),
            ),
            Error::NoRoomForBestWeights => ("NoRoomForBestWeights", [None, None]),
            Error::ConstraintValue { value } => ("ConstraintValue", one("value", Float(value))),
            Error::ConstraintAxis { axis } => ("ConstraintAxis", one("axis", Count(axis))),
            Error::NoiseStddev { stddev } => ("NoiseStddev", one("stddev", Float(stddev))),
            Error::ScheduledLearningRate => ("ScheduledLearningRate", [None, None]),
            Error::DecaySteps => ("DecaySteps", [None, None]),
            Error::DecayRate { decay_rate } => ("DecayRate", one("decay_rate", Float(decay_rate))),
            Error::Power { power } => ("Power", one("power", Float(power))),
            Error::Alpha { alpha } => ("Alpha", one("alpha", Float(alpha))),
            Error::Boundaries => ("Boundaries", [None, None]),
            Error::ShuffleBuffer { samples, buffer } => {
                ("ShuffleBuffer", two("samples", samples, "buffer", buffer))
            }
            Error::InitialAccumulator { value } => {
                ("InitialAccumulator", one("value", Float(value)))
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not derived: a derived `Debug` formats the `f32` fields with `core`'s float
        // formatting on every target (see the type's docs). One loop over a table of the
        // variant's fields also keeps the code small (a firmware that unwraps links it).
        let (name, fields) = self.parts();
        if fields.iter().all(Option::is_none) {
            return f.write_str(name);
        }
        let mut out = f.debug_struct(name);
        for (field, value) in fields.iter().flatten() {
            out.field(field, value);
        }
        out.finish()
    }
}

impl core::error::Error for Error {}

/// `Ok(value)` if `value` is finite and `>= 0`, else `err`.
pub(crate) const fn non_negative(value: f32, err: Error) -> Result<f32, Error> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(err)
    }
}

/// `Ok(value)` if `value` is finite and `> 0`, else `err`.
pub(crate) const fn positive(value: f32, err: Error) -> Result<f32, Error> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(err)
    }
}

/// `Ok(value)` if `0 <= value < 1`, else `err` (NaN fails both comparisons).
pub(crate) const fn unit_interval(value: f32, err: Error) -> Result<f32, Error> {
    if value >= 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    /// What bare-metal builds print for an `f32` field.
    struct Bits(f32);
    impl fmt::Debug for Bits {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_bits(self.0, f)
        }
    }

    #[test]
    fn bare_metal_floats_print_as_the_bits_that_rebuild_them() {
        for value in [1.5f32, -0.0, f32::NAN, f32::INFINITY, 1e-40, f32::MAX] {
            let text = format!("{:?}", Bits(value));
            let hex = text
                .strip_prefix("f32::from_bits(0x")
                .and_then(|t| t.strip_suffix(')'))
                .unwrap();
            assert_eq!(hex.len(), 8, "{text}");
            assert_eq!(u32::from_str_radix(hex, 16), Ok(value.to_bits()), "{text}");
        }
        assert_eq!(format!("{:?}", Bits(1.5)), "f32::from_bits(0x3fc00000)");
    }

    #[test]
    fn optimizer_kinds_print_as_byte_strings() {
        let mismatch = Error::OptimizerMismatch {
            saved: *b"ADMW",
            expected: *b"AD\0M",
        };
        assert_eq!(
            format!("{mismatch:?}"),
            r#"OptimizerMismatch { saved: b"ADMW", expected: b"AD\x00M" }"#
        );
        assert_eq!(
            format!("{mismatch}"),
            r#"saved optimizer state was written by b"ADMW", not by b"AD\x00M""#
        );
    }
}
