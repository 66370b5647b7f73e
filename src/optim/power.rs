//! `β^t` as Keras computes it for Adam's (and Nadam's) bias corrections.
//!
//! Keras 3 evaluates `ops.power(float32(β), float32(t))`; with the JAX backend on the CPU that
//! is XLA's `pow`, which calls the C library's `powf`. glibc's (since 2.28) and musl's `powf`
//! are the same algorithm (Szabolcs Nagy's, Arm Optimized Routines, MIT licence): `log2` of
//! the base from a 16-entry table and a degree-5 polynomial in `f64`, the product with the
//! exponent in `f64`, and `exp2` from a 32-entry table and a cubic. This module is that
//! algorithm for a positive finite base below one and a positive exponent, with the
//! constants of `e_powf_log2_data.c` and `e_exp2f_data.c` and the operations in their order,
//! without fused multiply-adds (glibc's FMA build gives the same bits on every β and `t`
//! tested: `tests/reference/keras_optimizers.py` records JAX's powers, and `tests/keras.rs`
//! compares them bit for bit).
//!
//! `libm::powf` is another algorithm (FreeBSD's, in `f32`): 31 % of the powers of 0.999
//! for `t ≤ 100,000` differed from JAX's in the last bit. Repeated multiplication drifts
//! further (20 roundings after 20 steps). A last-bit difference in `β2^t ≈ 0.98` is a
//! relative change of 3e-6 in `1 - β2^t`, more than the whole gap between Keras' `f32`
//! arithmetic and the exact result.
//!
//! `log2(β)` depends only on β and is computed once, by the optimizer's constructor; a step
//! pays for the exponential only, and not even that once the power is below `2^-26`, where
//! `1 - β^t` rounds to 1 whatever its last bits are (after 171 steps for 0.9, 17,950 for
//! 0.999). The exponential is `f64` arithmetic, which a Cortex-M4F (single-precision FPU)
//! runs in software: about 750 instructions per power, 1,500 per Adam step, more than the
//! whole update of the Iris model in `examples/cortex-m4f` (which trains at batch 1).
//! [`RunningPower`] gives the same bits from the previous step's power for a dozen `f32`
//! operations, and falls back to this exact path for the 0.5 % of powers where it cannot
//! prove it does (`measure.sh`, with the Fisher–Yates shuffle of the same version: 8,644 →
//! 6,636 instructions per sample with the update check, 7,167 → 5,191 without).

/// `(1/c, log2(c))` for the 16 subintervals of `[0x3f330000, 2·0x3f330000)`.
const LOG2_TABLE: [(u64, u64); 16] = [
    (0x3ff6_61ec_79f8_f3be, 0xbfde_fec6_5b96_3019),
    (0x3ff5_71ed_4aaf_883d, 0xbfdb_0b68_32d4_fca4),
    (0x3ff4_9539_f0f0_10b0, 0xbfd7_418b_0a1f_b77b),
    (0x3ff3_c995_b0b8_0385, 0xbfd3_9de9_1a6d_cf7b),
    (0x3ff3_0d19_0c88_64a5, 0xbfd0_1d9b_f3f2_b631),
    (0x3ff2_5e22_7b0b_8ea0, 0xbfc9_7c1d_1b3b_7af0),
    (0x3ff1_bb4a_4a1a_343f, 0xbfc2_f9e3_93af_3c9f),
    (0x3ff1_2358_f08a_e5ba, 0xbfb9_60cb_bf78_8d5c),
    (0x3ff0_953f_4199_00a7, 0xbfaa_6f9d_b647_5fce),
    (0x3ff0_0000_0000_0000, 0x0000_0000_0000_0000),
    (0x3fee_608c_fd9a_47ac, 0x3fb3_38ca_9f24_f53d),
    (0x3fec_a4b3_1f02_6aa0, 0x3fc4_76a9_5438_91ba),
    (0x3feb_2036_576a_fce6, 0x3fce_840b_4ac4_e4d2),
    (0x3fe9_c2d1_63a1_aa2d, 0x3fd4_0645_f0c6_651c),
    (0x3fe8_86e6_0378_41ed, 0x3fd8_8e9c_2c1b_9ff8),
    (0x3fe7_67dc_f553_4862, 0x3fdc_e0a4_4eb1_7bcc),
];
/// The polynomial for `log2(1 + r)`, highest degree first.
const LOG2_POLY: [u64; 5] = [
    0x3fd2_7616_c949_6e0b,
    0xbfd7_1969_a075_c67a,
    0x3fde_c70a_6ca7_badd,
    0xbfe7_1547_48be_f6c8,
    0x3ff7_1547_652a_b82b,
];
/// `2^(i/32)` with `i << 47` subtracted from the bits, so that adding `k << 47` scales it.
const EXP2_TABLE: [u64; 32] = [
    0x3ff0_0000_0000_0000,
    0x3fef_d9b0_d315_8574,
    0x3fef_b558_6cf9_890f,
    0x3fef_9301_d012_5b51,
    0x3fef_72b8_3c7d_517b,
    0x3fef_5487_3168_b9aa,
    0x3fef_387a_6e75_6238,
    0x3fef_1e9d_f51f_dee1,
    0x3fef_06fe_0a31_b715,
    0x3fee_f1a7_373a_a9cb,
    0x3fee_dea6_4c12_3422,
    0x3fee_ce08_6061_892d,
    0x3fee_bfda_d536_2a27,
    0x3fee_b42b_569d_4f82,
    0x3fee_ab07_dd48_5429,
    0x3fee_a47e_b03a_5585,
    0x3fee_a09e_667f_3bcd,
    0x3fee_9f75_e8ec_5f74,
    0x3fee_a114_73eb_0187,
    0x3fee_a589_994c_ce13,
    0x3fee_ace5_422a_a0db,
    0x3fee_b737_b0cd_c5e5,
    0x3fee_c491_82a3_f090,
    0x3fee_d503_b23e_255d,
    0x3fee_e89f_995a_d3ad,
    0x3fee_ff76_f2fb_5e47,
    0x3fef_199b_dd85_529c,
    0x3fef_3720_dcef_9069,
    0x3fef_5818_dcfb_a487,
    0x3fef_7c97_337b_9b5f,
    0x3fef_a4af_a2a4_90da,
    0x3fef_d076_5b6e_4540,
];
/// The cubic for `2^r`, highest degree first (without the constant 1).
const EXP2_POLY: [u64; 3] = [
    0x3fac_6af8_4b91_2394,
    0x3fce_bfce_50fa_c4f3,
    0x3fe6_2e42_ff0c_52d6,
];
/// `1.5·2^52 / 32`: adding it rounds to a multiple of 1/32 and leaves `32·x` in the low bits.
const SHIFT: f64 = 211_106_232_532_992.0;

/// `log2(base)` as `powf` computes it, for a finite `base ≥ 0` (`f32(β)` for Adam); `-∞`
/// for a zero base (every positive power of it is 0).
pub(crate) const fn log2_of(base: f32) -> f64 {
    if base.is_nan() || base <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let mut ix = base.to_bits();
    if ix < 0x0080_0000 {
        // A subnormal base: normalised as `powf` does.
        ix = (base * 8_388_608.0).to_bits() & 0x7fff_ffff;
        ix = ix.wrapping_sub(23 << 23);
    }
    let tmp = ix.wrapping_sub(0x3f33_0000);
    let i = ((tmp >> 19) & 15) as usize;
    let top = tmp & 0xff80_0000;
    let iz = ix.wrapping_sub(top);
    let k = (top as i32) >> 23;
    let (invc, logc) = if i < LOG2_TABLE.len() {
        #[allow(clippy::indexing_slicing)]
        let (invc, logc) = LOG2_TABLE[i];
        (f64::from_bits(invc), f64::from_bits(logc))
    } else {
        (1.0, 0.0)
    };
    let z = f32::from_bits(iz) as f64;
    let r = z * invc - 1.0;
    let y0 = logc + k as f64;
    let [a0, a1, a2, a3, a4] = LOG2_POLY;
    let [a0, a1, a2, a3, a4] = [
        f64::from_bits(a0),
        f64::from_bits(a1),
        f64::from_bits(a2),
        f64::from_bits(a3),
        f64::from_bits(a4),
    ];
    let r2 = r * r;
    let y = a0 * r + a1;
    let p = a2 * r + a3;
    let r4 = r2 * r2;
    let q = a4 * r + y0;
    let q = p * r2 + q;
    y * r4 + q
}

/// `1 - β^t` in `f32`, with `β^t = powf(β, t)` from `log2_beta = log2_of(f32(β))` and `t ≥ 1`:
/// Adam's bias correction as Keras computes it.
pub(crate) fn one_minus_power(log2_beta: f64, t: f32) -> f32 {
    let exponent = t as f64 * log2_beta;
    // Below 2^-26 the power leaves `1 - β^t` at exactly 1 (the half-way 1 - 2^-25 rounds to
    // 1 too); a NaN (0 · -∞ cannot occur: t ≥ 1) would fail the test and be computed.
    if exponent <= -26.0 {
        return 1.0;
    }
    1.0 - exp2(exponent)
}

/// `β^t` for the consecutive steps of a run, carried as an unevaluated sum `hi + lo` of two
/// `f32` (about 48 bits) and multiplied by `2^L ≈ base_hi + base_lo` (`L = log2_of(β)`) at
/// every step: a dozen `f32` operations where [`one_minus_power`] is software `f64` on a
/// core without a double-precision unit. [`RunningPower::one_minus`] gives
/// [`one_minus_power`]'s bits, or `None` when it cannot prove it does, and the caller then
/// computes them exactly.
///
/// **Why the bits are `powf`'s.** `powf` rounds to `f32` a double `d = 2^E·(1 + ε₁)` with
/// `E = fl(t·L)`: its `exp2` has a relative error below `1.69·2^-34` before rounding (glibc's
/// `e_exp2f.c`, the same polynomial and table), its table and the five double operations
/// add `6·2^-53`, and `E` differs from `t·L` by at most `26·2^-53` while the power is above
/// `2^-26` (`2^-48.8` relative); so `|d / 2^(t·L) - 1| < 2^-33.2`. Here the seed is libm's
/// `exp2(t·L)` in `f64` ([`exp2_f64`]) split into two `f32` (relative error below `2^-47.3`),
/// the base likewise,
/// and each step's exact product (Dekker's, no fused multiply-add needed) with its
/// rounded cross terms adds below `2^-45`; a reseed every [`RESEED_STEPS`] steps keeps the
/// sum below `2^-34.7`. So `hi + lo` is within `2^-32.7` of `d`, relatively: where it lies
/// farther than [`MARGIN`] (`2^-32`, 1.6 times that) from every point half-way between two
/// `f32`, `d` rounds to the same `f32` as `hi + lo`, which is `hi`. About 0.5 % of the
/// powers (between `2^-8` and `2^-7` of them, by the width of that window) are that close,
/// and take the exact path; `tests` compares every step up to 100,000 for a dozen betas bit
/// for bit and checks the largest distance seen (`2^-33.24`, glibc's own bound).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RunningPower {
    hi: f32,
    lo: f32,
    base_hi: f32,
    base_lo: f32,
}

/// Steps between two seeds of a [`RunningPower`] (a power of two: the step count tells when).
pub(crate) const RESEED_STEPS: u32 = 1024;

/// The relative distance from a rounding boundary under which [`RunningPower::one_minus`]
/// declines to answer: `2^-32`.
const MARGIN: f32 = 1.0 / 4_294_967_296.0;

/// `2^-25`: at or below it `1 - p` rounds to 1 in `f32` (`1 - 2^-25` is half-way between
/// `1 - 2^-24` and 1, and goes to the even 1).
const LAST_POWER_BELOW_ONE: f32 = 1.0 / 33_554_432.0;

impl RunningPower {
    /// No power (every correction 1): what a zero base gives.
    pub(crate) const ZERO: Self = Self {
        hi: 0.0,
        lo: 0.0,
        base_hi: 0.0,
        base_lo: 0.0,
    };

    /// `β^t` from `log2_beta = log2_of(f32(β))`, for `t ≥ 1`: two [`exp2_f64`], out of
    /// line (it is `f64` arithmetic, once in [`RESEED_STEPS`] steps).
    #[inline(never)]
    pub(crate) fn seeded(log2_beta: f64, t: f32) -> Self {
        let (hi, lo) = split_f64(exp2_f64(t as f64 * log2_beta));
        let (base_hi, base_lo) = split_f64(exp2_f64(log2_beta));
        Self {
            hi,
            lo,
            base_hi,
            base_lo,
        }
    }

    /// `β^(t+1)` from `β^t`.
    pub(crate) fn next(self) -> Self {
        let (p, e) = two_product(self.hi, self.base_hi);
        let e = e + (self.hi * self.base_lo + self.lo * self.base_hi);
        // Fast two-sum: `|e|` is far below `|p|`.
        let hi = p + e;
        let lo = e - (hi - p);
        Self { hi, lo, ..self }
    }

    /// `1 - β^t` with `powf`'s `β^t`, as [`one_minus_power`] computes it, or `None` where
    /// `hi + lo` is too close to a rounding boundary to tell.
    pub(crate) fn one_minus(self) -> Option<f32> {
        let hi = self.hi;
        // `hi` is `hi + lo` rounded: `|lo|` is at most half its ulp.
        if hi < LAST_POWER_BELOW_ONE {
            // `hi + lo < 2^-25·(1 - 2^-25)`, so `d < 2^-25` and `1 - round(d)` is 1 (as is
            // `powf`'s early 1 for `t·L ≤ -26`).
            return Some(1.0);
        }
        self.rounds_to_hi().then_some(1.0 - hi)
    }

    /// `1 - ½·β^t` with `powf`'s `β^t` (Nadam's momentum schedule), or `None` where
    /// `hi + lo` is too close to a rounding boundary to tell.
    pub(crate) fn one_minus_half(self) -> Option<f32> {
        let hi = self.hi;
        if hi < 2.0 * LAST_POWER_BELOW_ONE {
            // As in `one_minus`: `d < 2^-24`, so `½·round(d) ≤ 2^-25` (exact) and the
            // difference rounds to 1, whatever `powf` gives down there (subnormal or 0).
            return Some(1.0);
        }
        self.rounds_to_hi().then_some(1.0 - 0.5 * hi)
    }

    /// True if `powf`'s `β^t` is surely `hi`: `hi + lo` is farther than [`MARGIN`] from
    /// the points half-way to its neighbours, for a normal `hi` (`2^-25` or more).
    #[inline(always)]
    fn rounds_to_hi(self) -> bool {
        let Self { hi, lo, .. } = self;
        let bits = hi.to_bits();
        // The half-way points above and below `hi` (they differ at a power of two).
        let room = if lo >= 0.0 {
            0.5 * (f32::from_bits(bits.wrapping_add(1)) - hi) - lo
        } else {
            0.5 * (hi - f32::from_bits(bits.wrapping_sub(1))) + lo
        };
        room > hi * MARGIN
    }
}

/// `2^x` in `f64` for `x ≤ 0` (0 below `2^-1022`, and for `-∞` or NaN), within `2^-50`
/// relatively: `2^k·e^(f·ln 2)` with `k` the nearest integer and `|f| ≤ ½`, the exponential
/// by its Taylor series to degree 13 (the next term is below `2^-57`). Without libm's
/// 4 KB table, which would be half of Adam's flash on a Cortex-M4F.
const fn exp2_f64(x: f64) -> f64 {
    // NaN fails the comparison too.
    if x.is_nan() || x <= -1022.0 {
        return 0.0;
    }
    let k = if x > 0.0 {
        0.0
    } else {
        -((0.5 - x) as i64 as f64)
    };
    let y = (x - k) * core::f64::consts::LN_2;
    // `1/n` rounded (`2^-53` each): multiplications, where a software `f64` division costs
    // several times as much. Evaluated by the compiler: an index out of range would be a
    // build error.
    #[allow(clippy::indexing_slicing)]
    const RECIPROCALS: [f64; 13] = {
        let mut table = [0.0; 13];
        let mut n = 0;
        while n < 13 {
            table[n] = 1.0 / (n + 1) as f64;
            n += 1;
        }
        table
    };
    let mut sum = 1.0;
    let mut rest: &[f64] = &RECIPROCALS;
    while let [smaller @ .., reciprocal] = rest {
        sum = 1.0 + y * sum * *reciprocal;
        rest = smaller;
    }
    // `2^k` from its bits: `k` is in `[-1022, 0]`, so the biased exponent in `[1, 1023]`.
    let scale = f64::from_bits(((1023.0 + k) as u64) << 52);
    sum * scale
}

/// `x` as `hi + lo`, `hi = f32(x)`; `|x - (hi + lo)| ≤ 2^-48·|x|` for a normal `hi`.
fn split_f64(x: f64) -> (f32, f32) {
    let hi = x as f32;
    (hi, (x - hi as f64) as f32)
}

/// `(p, e)` with `p = fl(a·b)` and `p + e = a·b` exactly (Dekker's product, by Veltkamp's
/// splitting into 12-bit halves), for `a`, `b` in `[0, 1]` whose product is normal.
fn two_product(a: f32, b: f32) -> (f32, f32) {
    fn halves(a: f32) -> (f32, f32) {
        let c = 4097.0 * a;
        let high = c - (c - a);
        (high, a - high)
    }
    let p = a * b;
    let ((ah, al), (bh, bl)) = (halves(a), halves(b));
    let e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    (p, e)
}

/// `powf(x, y)` for `x ≥ 0` and `y ≥ 0`, both finite: what Keras' learning-rate schedules
/// evaluate with `ops.power` (a decay rate to a step fraction, `1 - p` to a polynomial's
/// power). NaN for a NaN or infinite argument (never passed: schedules validate theirs).
pub(crate) fn powf(x: f32, y: f32) -> f32 {
    if !(x.is_finite() && y.is_finite() && x >= 0.0 && y >= 0.0) {
        return f32::NAN;
    }
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if x == 0.0 {
        return 0.0;
    }
    let exponent = y as f64 * log2_of(x);
    // `powf`'s limits: above it the result rounds to infinity, at or below -150 to zero.
    if exponent > f64::from_bits(0x405f_ffff_ffd1_d571) {
        return f32::INFINITY;
    }
    if exponent <= -150.0 {
        return 0.0;
    }
    exp2(exponent)
}

/// `2^x` for `-150 < x < 128`, rounded to `f32`, as `powf`'s `exp2_inline`.
fn exp2(x: f64) -> f32 {
    exp2_unrounded(x) as f32
}

/// [`exp2`] before its rounding to `f32`.
fn exp2_unrounded(x: f64) -> f64 {
    let kd = x + SHIFT;
    let ki = kd.to_bits();
    let kd = kd - SHIFT;
    let r = x - kd;
    let t = EXP2_TABLE
        .get((ki & 31) as usize)
        .copied()
        .unwrap_or(0)
        .wrapping_add(ki << 47);
    let s = f64::from_bits(t);
    let [c0, c1, c2] = EXP2_POLY.map(f64::from_bits);
    let z = c0 * r + c1;
    let r2 = r * r;
    let y = c2 * r + 1.0;
    let y = z * r2 + y;
    y * s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_powers_are_exact() {
        // 0.5^t is a power of two: every rounding in the algorithm must land on it.
        let log2 = log2_of(0.5);
        assert_eq!(log2, -1.0);
        let mut power = 1.0f32;
        for t in 1..26 {
            power *= 0.5;
            assert_eq!(one_minus_power(log2, t as f32), 1.0 - power);
        }
        assert_eq!(one_minus_power(log2_of(0.0), 1.0), 1.0);
        assert_eq!(one_minus_power(log2_of(0.9), 1e9), 1.0);
    }

    /// [`exp2_f64`] within `2^-50` of libm's (itself within about `2^-53`) from 0 down to
    /// -1000, and 0 below the normal range.
    #[test]
    fn exp2_f64_is_accurate() {
        // The same range from 0 to -1000, 100 times coarser under Miri (slow).
        let (count, spacing) = if cfg!(miri) {
            (2_000u32, 0.5)
        } else {
            (200_000, 0.005)
        };
        let mut worst = 0.0f64;
        for i in 0..count {
            let x = -f64::from(i) * spacing - f64::from(i % 7) * 1.3e-7;
            let ours = exp2_f64(x);
            let theirs = libm::exp2(x);
            worst = worst.max((ours / theirs - 1.0).abs());
        }
        assert!(worst < 2f64.powi(-50), "{worst:e}");
        assert_eq!(exp2_f64(0.0), 1.0);
        assert_eq!(exp2_f64(-1.0), 0.5);
        assert_eq!(exp2_f64(-2000.0), 0.0);
        assert_eq!(exp2_f64(f64::NEG_INFINITY), 0.0);
    }

    /// [`RunningPower`] as Adam steps it (seeded at the first step and every
    /// [`RESEED_STEPS`]), against [`one_minus_power`] (and Nadam's `1 - ½·powf`) at every
    /// step to 100,000 for a dozen betas and Nadam's 0.96: the same bits whenever it answers, the exact path for at most 1 % of the
    /// steps, and `hi + lo` within the proven `2^-32.7` of `powf`'s unrounded double.
    #[test]
    #[cfg_attr(miri, ignore)] // 1.3 million powers; nothing endian-specific
    fn running_powers_are_powf_bit_for_bit() {
        let betas = [
            0.9f32, 0.999, 0.99, 0.95, 0.5, 0.8, 0.9999, 0.98, 0.995, 0.997, 0.7, 0.1, 0.0, 0.96,
        ];
        let mut declined = 0u32;
        let mut declined_halves = 0u32;
        let mut answered = 0u32;
        let mut worst = 0.0f64;
        for beta in betas {
            let log2 = log2_of(beta);
            let mut power = RunningPower::seeded(log2, 1.0);
            for t in 1..=100_000u32 {
                if t > 1 {
                    power = if t % RESEED_STEPS == 0 {
                        RunningPower::seeded(log2, t as f32)
                    } else {
                        power.next()
                    };
                }
                let exact = one_minus_power(log2, t as f32);
                let exponent = t as f64 * log2;
                if exponent > -26.0 {
                    let ours = power.hi as f64 + power.lo as f64;
                    let theirs = exp2_unrounded(exponent);
                    worst = worst.max((ours / theirs - 1.0).abs());
                    match power.one_minus() {
                        Some(c) => {
                            assert_eq!(c.to_bits(), exact.to_bits(), "{beta}^{t}");
                            answered += 1;
                        }
                        None => declined += 1,
                    }
                } else {
                    assert_eq!(power.one_minus(), Some(exact), "{beta}^{t}");
                }
                // Nadam's `1 - ½·β^t` from the general `powf`, at every step (subnormal and
                // zero powers included).
                let half = 1.0 - 0.5 * powf(beta, t as f32);
                match power.one_minus_half() {
                    Some(c) => assert_eq!(c.to_bits(), half.to_bits(), "½·{beta}^{t}"),
                    None => declined_halves += 1,
                }
            }
        }
        assert!(
            worst < 2f64.powf(-32.8),
            "largest relative distance {worst:e}"
        );
        let share = f64::from(declined) / f64::from(declined + answered);
        assert!(share < 0.01, "{declined} declined, {answered} answered");
        // The window is not empty: the exact path is exercised.
        assert!(declined > 0);
        assert!(declined_halves > 0 && declined_halves < declined + answered / 100);
    }

    /// `1 - β^t` from Keras' own powers (`tests/reference/keras_optimizers.json`: JAX's
    /// `power` for eight betas, steps 1 to 100 and up to 2^24), bit for bit.
    #[test]
    fn corrections_are_keras_bit_for_bit() {
        let reference: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/reference/keras_optimizers.json"))
                .unwrap();
        let powers = reference["powers"].as_object().unwrap();
        assert_eq!(powers.len(), 8);
        for (beta, entry) in powers {
            let log2 = log2_of(beta.parse::<f32>().unwrap());
            let steps = entry["steps"].as_array().unwrap();
            let values = entry["values"].as_array().unwrap();
            for (t, keras) in steps.iter().zip(values) {
                let t = t.as_f64().unwrap() as f32;
                let keras = keras.as_f64().unwrap() as f32;
                let ours = one_minus_power(log2, t);
                assert_eq!(ours.to_bits(), (1.0 - keras).to_bits(), "{beta}^{t}");
                // The general power too (what schedules use), flushed as XLA flushes.
                let power = powf(beta.parse().unwrap(), t);
                let power = if power < f32::MIN_POSITIVE {
                    0.0
                } else {
                    power
                };
                assert_eq!(power.to_bits(), keras.to_bits(), "powf({beta}, {t})");
            }
        }
    }
}
