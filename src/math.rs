//! The only caller of `libm`: every transcendental function the crate uses goes through here,
//! so the whole crate computes the same bits on every target (libm is the same Rust code
//! everywhere, and IEEE-754 `+ - * / sqrt` are correctly rounded).

/// `e^x`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    libm::expf(x)
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

/// Square root (correctly rounded).
#[inline(always)]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// Hyperbolic tangent.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}

/// Absolute value (clears the sign bit; exact).
#[inline(always)]
pub fn abs(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
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
