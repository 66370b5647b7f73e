//! SIMD kernels on `wide` vectors (placeholder: the scalar set until the vector set lands).

pub use super::scalar::*;
