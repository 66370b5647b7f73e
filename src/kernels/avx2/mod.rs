//! The dense products and Adam of [`simd`](super::simd), compiled again for AVX2 + FMA and
//! chosen at run time: what a default build for x86_64 (SSE2 only) runs on a CPU that has
//! them, with the `std` feature (which brings the CPU detection).
//!
//! `wide` picks its code with `cfg(target_feature)` for the whole crate graph, so its
//! vectors keep their SSE2 bodies (two halves, multiply and add unfused) even inside a
//! function compiled with AVX2. These kernels are therefore the same source files as
//! [`simd`](super::simd)'s (`src/kernels/simd/{lanes,forward,input_gradient,
//! weight_gradient,adam}.rs`), compiled a second time with their vector type `V` bound to
//! an 8-lane AVX register type of this module (`arch`'s `F32x8`, whose operations are
//! single AVX2 / FMA instructions) and the tiles of an `x86-64-v3` build, under entries
//! compiled with `#[target_feature(enable = "avx2,fma")]`. They give the bits of the
//! [`simd`](super::simd) set of a `-C target-cpu=x86-64-v3` build, up to the order of the
//! lanes in a horizontal sum (tests compare them with the scalar set within the same
//! bound as every SIMD kernel).
//!
//! On a CPU with AVX-512 (F and DQ) the dispatch takes a third instantiation instead,
//! `avx512.rs` ([`Avx512`]): the same files again with 16 lanes, the tiles of an AVX-512
//! build and its packed forward route (`forward_packed.rs`), which are the kernels of a
//! `-C target-cpu=native` build on such a CPU.
//!
//! `activation.rs` (ReLU, leaky ReLU, every derivative, [`multiply`](super::simd::multiply))
//! is compiled again too, with the scalar kernels' bits at each level; `sigmoid`, `tanh` and
//! `softmax` (`transcendental.rs`) are not: they need a vector `exp`, and stay `wide`'s SSE2
//! ones.

// As in `simd`: index arithmetic audited instead of linted (see `simd/mod.rs`).
#![allow(clippy::arithmetic_side_effects)]

mod arch;
mod avx512;

pub use arch::{Avx2Fma, Avx512};

type V = arch::F32x8;
const LANES: usize = 8;

/// `[f(0), …, f(7)]` with constant indices (see `simd`'s `each_lane`).
use crate::kernels::each_of_8 as each_lane;

/// For this set, the parts `simd` keeps out of line are inlined too: a function of their
/// own would not carry the target features of the entries (`arch`).
#[inline(always)]
fn out_of_line<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// No packed forward route at 8 lanes (see `simd`'s macro of the same name).
macro_rules! packed_route {
    ($($tokens:tt)*) => {};
}

/// The register tiles of an `x86-64-v3` build of `simd` (16 registers).
mod tile {
    pub const FORWARD_ROWS: usize = 2;
    pub const FORWARD_OUTPUTS: usize = 4;
    pub const FORWARD_SINGLE_OUTPUTS: usize = 8;
    pub const AXPY_ROWS: usize = 2;
    pub const AXPY_VECTORS: usize = 4;
    pub const OUTER_ACCUMULATORS: usize = 8;
}

// The same files as `simd`'s own modules, on purpose: one source, three instantiations
// (`avx512` is the third).
#[allow(clippy::duplicate_mod)]
#[path = "../simd/activation.rs"]
mod activation;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/adam.rs"]
mod adam;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/forward.rs"]
mod forward;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/input_gradient.rs"]
mod input_gradient;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/lanes.rs"]
mod lanes;
#[allow(clippy::duplicate_mod)]
#[path = "../simd/weight_gradient.rs"]
mod weight_gradient;
