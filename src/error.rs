//! The one error type of the crate: every fallible call names the value it refused.

use core::fmt;

/// Why a configuration, a data set or a training step was refused.
///
/// Each variant carries the offending value so that a log line (or a debugger on a
/// microcontroller) tells what to fix without reading the source.
#[derive(Debug, Clone, Copy, PartialEq)]
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
        }
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
