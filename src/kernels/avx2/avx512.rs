//! The dense products and Adam of [`simd`](crate::kernels::simd) compiled a third time, for
//! AVX-512: 16 lanes, the tiles of a `-C target-cpu=native` build on an AVX-512 CPU, and its
//! packed forward route (`forward_packed.rs`) for batches of 6 rows or more. The entries
//! (`arch`'s [`Avx512`](super::Avx512) token) enable AVX-512F/DQ, AVX2 and FMA; `V` is
//! `arch`'s `F32x16`, whose operations are the instructions `wide::f32x16` uses when
//! compiled for AVX-512.

use super::arch;

type V = arch::F32x16;
const LANES: usize = 16;

/// `[f(0), …, f(15)]` with constant indices (see `simd`'s `each_lane`).
use crate::kernels::each_of_16 as each_lane;

/// Inlined, as in the AVX2 set: a function of its own would not carry the entries' target
/// features.
#[inline(always)]
fn out_of_line<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// The packed forward route, inlined into the entry (which carries the target features;
/// a function of its own would not). A function rather than the `out_of_line` closure:
/// LLVM left that closure, this large, out of line.
#[inline(always)]
fn packed_forward(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    output: &mut [f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
) {
    forward_packed::forward_packed(input, weights, bias, output, rows, inputs, outputs)
}

/// The packed route's two-source shuffle (`vpermt2ps`).
#[inline(always)]
fn shuffle_pair(a: V, b: V, indices: [u32; 16]) -> V {
    a.shuffle_pair(b, indices)
}

/// This set has the packed forward route (see `simd`'s macro of the same name).
macro_rules! packed_route {
    ($($tokens:tt)*) => { $($tokens)* };
}

/// The register tiles of an AVX-512 build of `simd` (32 registers).
mod tile {
    pub const FORWARD_ROWS: usize = 4;
    pub const FORWARD_OUTPUTS: usize = 4;
    pub const FORWARD_SINGLE_OUTPUTS: usize = 16;
    pub const AXPY_ROWS: usize = 4;
    pub const AXPY_VECTORS: usize = 4;
    pub const PACKED_ROWS: usize = 6;
    pub const PACKED_VECTORS: usize = 4;
    pub const OUTER_ACCUMULATORS: usize = 16;
}

// The same files as `simd`'s own modules, on purpose: one source, three instantiations.
#[allow(clippy::duplicate_mod)]
#[path = "../simd/activation.rs"]
pub(super) mod activation;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/adam.rs"]
pub(super) mod adam;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/forward.rs"]
pub(super) mod forward;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/forward_packed.rs"]
mod forward_packed;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/input_gradient.rs"]
pub(super) mod input_gradient;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/lanes.rs"]
mod lanes;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/weight_gradient.rs"]
pub(super) mod weight_gradient;
