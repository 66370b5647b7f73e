//! Weights trained elsewhere, from [safetensors] files (what PyTorch, JAX/Flax and Keras
//! can all write), on the host. Feature `safetensors` (which implies `std`).
//!
//! # Name mapping
//! A file names its tensors; a microtrain network has positions. The mapping is explicit:
//! each [`Dense`](crate::Dense) layer takes its weights and bias from two named tensors.
//!
//! | framework | layer | weights | bias | [`Layout`] |
//! |---|---|---|---|---|
//! | PyTorch `nn.Sequential` | `Linear` at position `k` | `"{k}.weight"`, shape `[out, in]` | `"{k}.bias"`, `[out]` | [`Layout::OutIn`] |
//! | PyTorch module attribute `fc1` | `Linear` | `"fc1.weight"` | `"fc1.bias"` | [`Layout::OutIn`] |
//! | Keras / Flax `Dense` | `kernel` | shape `[in, out]` | `bias`, `[out]` | [`Layout::InOut`] |
//!
//! PyTorch's `nn.Sequential` counts activations and dropouts as modules, so its positions
//! skip them (`Linear, ReLU, Linear` are `0` and `2`). PyTorch's `[out][in]` row order is
//! microtrain's own (`weights[o][i]`) and is copied as it is; Keras' and Flax's `[in][out]`
//! kernels are transposed.
//!
//! # Checks
//! Every tensor is checked — present, `F32`, the exact shape, finite values — before
//! anything is returned, and an error names the tensor. [`dense`] returns the parameters
//! rather than writing them, so a model is changed only once every layer has been read:
//!
//! ```
//! use microtrain::import::{self, Layout};
//! use microtrain::{Dense, Relu, Softmax};
//! # fn main() -> Result<(), import::ImportError> {
//! # let bytes = std::fs::read("tests/fixtures/pytorch_mlp.safetensors").unwrap();
//! // PyTorch: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), saved with
//! // safetensors.torch.save_file(model.state_dict(), "mlp.safetensors").
//! let mut model = (Dense::<4, 8, Relu>::new(Relu), Dense::<8, 3, Softmax>::new(Softmax));
//! let file = import::parse(&bytes)?;
//! let first = import::dense(&file, "0.weight", "0.bias", Layout::OutIn)?;
//! let second = import::dense(&file, "2.weight", "2.bias", Layout::OutIn)?;
//! (model.0.params, model.1.params) = (first, second);
//! # Ok(()) }
//! ```
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

use safetensors::{Dtype, SafeTensors};

use crate::layers::{ConstZero, DenseParams};

/// How a file stores a dense layer's weight matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[out][in]`: PyTorch's `Linear.weight` (microtrain's own order).
    OutIn,
    /// `[in][out]`: Keras' and Flax's `Dense` kernel.
    InOut,
}

/// Why a file could not be imported; every variant but [`ImportError::File`] names the
/// tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// The bytes are not a valid safetensors file.
    File(String),
    /// No tensor of that name; `available` lists the file's names.
    Missing {
        /// The name looked for.
        name: String,
        /// The names in the file, sorted.
        available: Vec<String>,
    },
    /// The tensor is not `F32`.
    Dtype {
        /// The tensor.
        name: String,
        /// Its element type, as safetensors names it.
        found: String,
    },
    /// The tensor's shape is not the layer's.
    Shape {
        /// The tensor.
        name: String,
        /// The shape the layer needs.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// The tensor holds a NaN or an infinity.
    NonFinite {
        /// The tensor.
        name: String,
    },
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(reason) => write!(f, "not a safetensors file: {reason}"),
            Self::Missing { name, available } => {
                write!(
                    f,
                    "tensor {name:?} is not in the file (it has {available:?})"
                )
            }
            Self::Dtype { name, found } => {
                write!(f, "tensor {name:?} is {found}, microtrain needs F32")
            }
            Self::Shape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor {name:?} has shape {found:?}, the layer needs {expected:?}"
            ),
            Self::NonFinite { name } => write!(f, "tensor {name:?} holds a NaN or an infinity"),
        }
    }
}

impl std::error::Error for ImportError {}

/// Reads a safetensors file's header (the tensors are borrowed from `bytes`, not copied).
///
/// # Errors
/// [`ImportError::File`] if the header is malformed or the offsets do not fit the bytes.
pub fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, ImportError> {
    SafeTensors::deserialize(bytes).map_err(|e| ImportError::File(e.to_string()))
}

/// The `f32` values of the tensor `name`, checked to have exactly `shape`.
///
/// # Errors
/// [`ImportError::Missing`], [`ImportError::Dtype`], [`ImportError::Shape`] or
/// [`ImportError::NonFinite`], naming the tensor.
pub fn tensor(
    file: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, ImportError> {
    let view = file.tensor(name).map_err(|_| {
        let mut available: Vec<String> = file.names().into_iter().map(String::from).collect();
        available.sort();
        ImportError::Missing {
            name: name.to_string(),
            available,
        }
    })?;
    if view.dtype() != Dtype::F32 {
        return Err(ImportError::Dtype {
            name: name.to_string(),
            found: std::format!("{:?}", view.dtype()),
        });
    }
    if view.shape() != shape {
        return Err(ImportError::Shape {
            name: name.to_string(),
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    // safetensors stores little-endian values; the header's offsets were checked against
    // the shape by `parse`, so the chunks are exactly the values.
    let values: Vec<f32> = view
        .data()
        .as_chunks::<4>()
        .0
        .iter()
        .map(|b| f32::from_le_bytes(*b))
        .collect();
    if !values.iter().all(|v| v.is_finite()) {
        return Err(ImportError::NonFinite {
            name: name.to_string(),
        });
    }
    Ok(values)
}

/// The weights and bias of a `Dense<IN, OUT, _>` layer from the tensors `weight` and
/// `bias` (see the module's name mapping).
///
/// # Errors
/// As [`tensor`], for whichever of the two is wrong (the weights are checked first).
pub fn dense<const IN: usize, const OUT: usize>(
    file: &SafeTensors<'_>,
    weight: &str,
    bias: &str,
    layout: Layout,
) -> Result<DenseParams<IN, OUT>, ImportError> {
    let shape = match layout {
        Layout::OutIn => [OUT, IN],
        Layout::InOut => [IN, OUT],
    };
    let weights = tensor(file, weight, &shape)?;
    let biases = tensor(file, bias, &[OUT])?;
    let mut params = DenseParams::<IN, OUT>::ZERO;
    match layout {
        Layout::OutIn => {
            for (row, values) in params.weights.iter_mut().zip(weights.chunks_exact(IN)) {
                row.copy_from_slice(values);
            }
        }
        Layout::InOut => {
            for (i, values) in weights.chunks_exact(OUT).enumerate() {
                for (row, &value) in params.weights.iter_mut().zip(values) {
                    if let Some(w) = row.get_mut(i) {
                        *w = value;
                    }
                }
            }
        }
    }
    for (b, &value) in params.bias.iter_mut().zip(&biases) {
        *b = value;
    }
    Ok(params)
}
