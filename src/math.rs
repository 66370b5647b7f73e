//! The only caller of `libm`: every transcendental function the crate uses goes through here,
//! so the whole crate computes the same bits on every target (libm is the same Rust code
//! everywhere, and IEEE-754 `+ - * / sqrt` are correctly rounded).

/// `e^x`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    libm::expf(x)
}

/// `e^x - 1`, accurate for small `x`.
#[inline(always)]
pub fn exp_m1(x: f32) -> f32 {
    libm::expm1f(x)
}

/// `(sin(x), cos(x))`.
#[inline(always)]
pub fn sin_cos(x: f32) -> (f32, f32) {
    libm::sincosf(x)
}

/// Square root of an `f64` (correctly rounded), for constants computed in double
/// precision as Keras computes them in Python.
#[inline(always)]
pub fn sqrt_f64(x: f64) -> f64 {
    libm::sqrt(x)
}

/// Natural logarithm.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    libm::logf(x)
}

/// `ln(1 + x)`, accurate for small `x`.
#[inline(always)]
pub fn ln_1p(x: f32) -> f32 {
    libm::log1pf(x)
}

/// Cosine (Keras' `CosineDecay`).
#[inline(always)]
pub fn cos(x: f32) -> f32 {
    libm::cosf(x)
}

/// Largest integer not above `x` (exact).
#[inline(always)]
pub fn floor(x: f32) -> f32 {
    libm::floorf(x)
}

/// Smallest integer not below `x` (exact).
#[inline(always)]
pub fn ceil(x: f32) -> f32 {
    libm::ceilf(x)
}

/// Square root (correctly rounded, so every implementation gives the same bits).
///
/// With the `fpu-sqrt` feature, on ARM with a hardware FPU (`eabihf` targets:
/// Cortex-M4F/M7/M33…), this is the FPU's `vsqrt.f32` instruction; otherwise `libm::sqrtf`. IEEE-754 requires both to round
/// correctly, so the choice does not change a single bit, only the cost: on a Cortex-M4F
/// `libm`'s software square root takes about 50 instructions, and Adam needs one per
/// parameter per step.
#[inline(always)]
pub fn sqrt(x: f32) -> f32 {
    #[cfg(all(feature = "fpu-sqrt", target_arch = "arm", target_abi = "eabihf"))]
    {
        arm_fpu::sqrt(x)
    }
    #[cfg(not(all(feature = "fpu-sqrt", target_arch = "arm", target_abi = "eabihf")))]
    {
        libm::sqrtf(x)
    }
}

/// Four square roots at once, each exactly [`sqrt`] (the same bits).
///
/// With `fpu-sqrt` on hard-float ARM it is one call that runs four `vsqrt.f32`: the call
/// costs two instructions however many roots it takes, so Adam's loop, four parameters at a
/// time, pays half an instruction per root for it instead of two.
#[inline(always)]
pub fn sqrt4(x: [f32; 4]) -> [f32; 4] {
    #[cfg(all(feature = "fpu-sqrt", target_arch = "arm", target_abi = "eabihf"))]
    {
        let [a, b, c, d] = x;
        let arm_fpu::Four(a, b, c, d) = arm_fpu::sqrt4(a, b, c, d);
        [a, b, c, d]
    }
    #[cfg(not(all(feature = "fpu-sqrt", target_arch = "arm", target_abi = "eabihf")))]
    {
        x.map(sqrt)
    }
}

/// The sum of `values`, added in whatever order is cheapest on the target: for a test of
/// whether every value is finite (a NaN or an infinity makes any sum NaN or infinite),
/// never for a value whose bits matter.
///
/// With `fpu-sqrt` on hard-float ARM, eight values at a time are loaded by one `vldmia`
/// (one call for the whole multiple of eight, the rest added inline): about 1.4
/// instructions per value on a Cortex-M4F, against 2 (a load and an addition) for a
/// compiled loop, whose loads LLVM does not merge.
#[inline(always)]
pub fn sum_in_any_order(values: &[f32]) -> f32 {
    #[cfg(all(feature = "fpu-sqrt", target_arch = "arm", target_abi = "eabihf"))]
    {
        let (blocks, tail) = values.as_chunks::<8>();
        // `-0.0`, the additive identity, which the compiler folds away (`0.0` it cannot).
        let head = if blocks.is_empty() {
            -0.0
        } else {
            arm_fpu::sum_of_blocks(blocks)
        };
        tail.iter().fold(head, |sum, v| sum + v)
    }
    #[cfg(not(all(feature = "fpu-sqrt", target_arch = "arm", target_abi = "eabihf")))]
    {
        values.iter().sum()
    }
}

/// The nearest integer, ties to even (NumPy's `round`).
#[inline(always)]
pub fn round_ties_even(x: f32) -> f32 {
    libm::rintf(x)
}

/// Hyperbolic tangent.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}

/// Absolute value (clears the sign bit; exact).
#[inline(always)]
pub fn abs(x: f32) -> f32 {
    // `f32::abs` is in `core`; on an FPU it is one instruction (`vabs.f32`), where the
    // bit-mask version moves the value to an integer register and back.
    x.abs()
}

/// `-1`, `0` or `1`; `sign(±0) = 0` as the L1 sub-gradient convention (TensorFlow's `sign`).
#[inline(always)]
pub fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Logistic sigmoid `1 / (1 + e^-x)`, written so that neither branch overflows.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + exp(-x))
    } else {
        let e = exp(x);
        e / (1.0 + e)
    }
}

/// The crate's only `unsafe` code, behind the `fpu-sqrt` feature: the FPU square root that
/// stable `no_std` Rust cannot reach otherwise (`f32::sqrt` needs `std`,
/// `core::f32::math::sqrt` is unstable, and `libm` has no 32-bit ARM path), and the
/// finiteness scan's sum with the FPU's multiple-register load, which LLVM does not form from
/// a loop (`sum_in_any_order`). Compiled only for hard-float ARM targets. Miri cannot run it (it interprets no assembly, and the module does
/// not exist on its host targets); what checks it is the firmware run in CI
/// (`.ci/firmware.sh`), which must end with the host's weights bit for bit.
#[cfg(all(feature = "fpu-sqrt", target_arch = "arm", target_abi = "eabihf"))]
#[allow(unsafe_code)]
mod arm_fpu {
    /// `vsqrt.f32`: IEEE-754 correctly rounded square root.
    ///
    /// A naked function rather than inline `asm!`: `asm!` operands in FPU registers need the
    /// `vfp2` target feature, which rustc does not report for these targets, while the
    /// hard-float calling convention already puts the argument and the result in `s0`. For
    /// the same reason the assembler is told the FPU (`.fpu vfpv2`, the oldest with `vsqrt`).
    // SAFETY: the body is `vsqrt.f32 s0, s0; bx lr`: it reads its argument from `s0` and
    // returns its result in `s0`, exactly as the `eabihf` C ABI of this signature requires,
    // touches no memory and no other register, and returns to the caller. Every `eabihf`
    // target has an FPU with this instruction (VFPv2 and later).
    #[unsafe(naked)]
    pub extern "C" fn sqrt(x: f32) -> f32 {
        core::arch::naked_asm!(".fpu vfpv2", "vsqrt.f32 s0, s0", "bx lr")
    }

    /// Four `f32` returned together: a homogeneous aggregate of four floats, which the
    /// `eabihf` C ABI returns in `s0`..`s3`.
    #[repr(C)]
    pub struct Four(pub f32, pub f32, pub f32, pub f32);

    /// The sum of every value of `blocks`, in an unspecified order.
    pub fn sum_of_blocks(blocks: &[[f32; 8]]) -> f32 {
        // SAFETY: the pointer and the count describe `blocks`, a live shared slice: `count`
        // blocks of eight `f32`, 32 readable bytes each, 4-byte aligned (what `vldmia`
        // needs), and nothing writes them while `sum_raw` reads.
        unsafe { sum_raw(blocks.as_ptr(), blocks.len()) }
    }

    /// The sum of `count` blocks of eight `f32` from `blocks`, returned in `s0`.
    ///
    /// # Safety
    /// `blocks` must point to `count` readable, 4-byte aligned blocks of eight `f32`.
    // SAFETY: the `eabihf` C ABI passes `blocks` in `r0` and `count` in `r1` and returns the
    // `f32` in `s0`. The body reads exactly `count` blocks of 32 bytes from `r0` upwards (the
    // caller's contract), writes no memory, and changes only `r0`-`r2`, `s0` and `s8`-`s15`,
    // all caller-saved (the callee-saved FPU registers are `s16`-`s31`), and the flags.
    #[unsafe(naked)]
    unsafe extern "C" fn sum_raw(blocks: *const [f32; 8], count: usize) -> f32 {
        core::arch::naked_asm!(
            ".fpu vfpv2",
            "movs r2, #0",
            "vmov s0, r2",
            "cbz r1, 3f",
            "2:",
            "vldmia r0!, {{s8-s15}}",
            "vadd.f32 s0, s0, s8",
            "vadd.f32 s0, s0, s9",
            "vadd.f32 s0, s0, s10",
            "vadd.f32 s0, s0, s11",
            "vadd.f32 s0, s0, s12",
            "vadd.f32 s0, s0, s13",
            "vadd.f32 s0, s0, s14",
            "vadd.f32 s0, s0, s15",
            "subs r1, r1, #1",
            "bne 2b",
            "3:",
            "bx lr"
        )
    }

    /// `vsqrt.f32` of four values.
    // SAFETY: the `eabihf` C ABI passes the four `f32` arguments in `s0`..`s3` and returns
    // `Four` (a homogeneous floating-point aggregate of four members) in `s0`..`s3`. The body
    // takes the square root of each register in place and returns: it touches no memory, no
    // other register and no callee-saved state (`s0`..`s3` are caller-saved).
    #[unsafe(naked)]
    pub extern "C" fn sqrt4(a: f32, b: f32, c: f32, d: f32) -> Four {
        core::arch::naked_asm!(
            ".fpu vfpv2",
            "vsqrt.f32 s0, s0",
            "vsqrt.f32 s1, s1",
            "vsqrt.f32 s2, s2",
            "vsqrt.f32 s3, s3",
            "bx lr"
        )
    }
}
