//! Dropout's statistics and its contract: Keras' `Dropout(rate)` drops each unit with
//! probability `rate` while training and scales kept units by `1 / (1 - rate)`; it is the
//! identity at inference; its mask is a function of the seed it draws.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::*;

/// Statistical bounds are this many standard deviations: a correct layer fails one of the
/// checks below with probability < 1e-5 for a fresh seed (and these seeds are fixed).
const SIGMAS: f64 = 5.0;

const UNITS: usize = 1024;
const ROWS: usize = 16;

fn rng(seed: u64) -> Xoshiro128PlusPlus {
    Xoshiro128PlusPlus::seed_from_u64(seed)
}

/// What a dropout layer keeps between forward and backward: the seed of its mask.
type Seed<const N: usize> = <Dropout<N> as Layer>::Cache;

/// One training forward pass of `layer` over `input`; returns the output and the seed the
/// layer kept for backward.
fn forward<const N: usize>(
    layer: &Dropout<N>,
    input: &[[f32; N]],
    rng: &mut Xoshiro128PlusPlus,
) -> (Vec<[f32; N]>, Seed<N>) {
    let mut output = vec![[f32::NAN; N]; input.len()];
    let mut seed = Seed::<N>::ZERO;
    layer.forward(input, &mut output, &mut seed, rng);
    (output, seed)
}

fn ones(rows: usize) -> Vec<[f32; UNITS]> {
    vec![[1.0; UNITS]; rows]
}

#[test]
fn dropped_fraction_matches_rate_within_five_sigma() {
    for rate in [0.1f32, 0.3, 0.5, 0.8, 0.25, 0.75, 0.0625] {
        let layer = Dropout::<UNITS>::new(rate).unwrap();
        let (output, _) = forward(&layer, &ones(ROWS), &mut rng(1));
        let n = (UNITS * ROWS) as f64;
        let dropped = output.as_flattened().iter().filter(|&&y| y == 0.0).count() as f64;
        // The number dropped is Binomial(n, rate).
        let p = f64::from(rate);
        let (mean, sd) = (n * p, (n * p * (1.0 - p)).sqrt());
        assert!(
            (dropped - mean).abs() <= SIGMAS * sd,
            "rate {rate}: dropped {dropped} of {n} units, expected {mean} ± {}",
            SIGMAS * sd
        );
    }
}

#[test]
fn kept_units_are_scaled_by_the_inverse_keep_probability() {
    let rate = 0.3f32;
    let layer = Dropout::<UNITS>::new(rate).unwrap();
    let mut r = rng(2);
    let input: Vec<[f32; UNITS]> = (0..ROWS)
        .map(|_| core::array::from_fn(|_| 0.5 + (r.next_u32() >> 8) as f32 / 16_777_216.0))
        .collect();
    let (output, _) = forward(&layer, &input, &mut rng(3));
    let scale = 1.0 / (1.0 - rate);
    for (k, (&x, &y)) in input
        .as_flattened()
        .iter()
        .zip(output.as_flattened())
        .enumerate()
    {
        // One rounding in the product, one in the scale: two ulps of the result.
        let tolerance = 2.0 * f32::EPSILON * (x * scale);
        assert!(
            y == 0.0 || (y - x * scale).abs() <= tolerance,
            "unit {k}: input {x}, output {y}, expected 0 or {}",
            x * scale
        );
    }
}

#[test]
fn mean_output_equals_mean_input_within_five_sigma() {
    for rate in [0.2f32, 0.5, 0.9] {
        let layer = Dropout::<UNITS>::new(rate).unwrap();
        let mut r = rng(4);
        let input: Vec<[f32; UNITS]> = (0..ROWS)
            .map(|_| core::array::from_fn(|_| 2.0 * (r.next_u32() >> 8) as f32 / 16_777_216.0))
            .collect();
        let (output, _) = forward(&layer, &input, &mut rng(5));
        // y_i = x_i·m_i/(1-p) with m_i ~ Bernoulli(1-p): E[y_i] = x_i and
        // Var[y_i] = x_i²·p/(1-p), so Σ(y - x) has mean 0 and sd sqrt(Σx²·p/(1-p)).
        let p = f64::from(rate);
        let (mut sum_y, mut sum_x, mut sum_x2) = (0.0f64, 0.0f64, 0.0f64);
        for (&x, &y) in input.as_flattened().iter().zip(output.as_flattened()) {
            sum_y += f64::from(y);
            sum_x += f64::from(x);
            sum_x2 += f64::from(x) * f64::from(x);
        }
        let sd = (sum_x2 * p / (1.0 - p)).sqrt();
        assert!(
            (sum_y - sum_x).abs() <= SIGMAS * sd,
            "rate {rate}: sum of outputs {sum_y}, sum of inputs {sum_x}, allowed ± {}",
            SIGMAS * sd
        );
    }
}

#[test]
fn dropout_is_the_identity_at_inference() {
    let layer = Dropout::<UNITS>::new(0.5).unwrap();
    let x: [f32; UNITS] = core::array::from_fn(|i| i as f32 - 500.5);
    let y = layer.infer(&x);
    assert!(
        x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()),
        "Layer::infer changed its input"
    );

    // A network with dropout infers exactly as the same network without it.
    let mut with: (Dense<3, 8, Tanh>, Dropout<8>, Dense<8, 2, Sigmoid>) = (
        Dense::new(Tanh),
        Dropout::new(0.5).unwrap(),
        Dense::new(Sigmoid),
    );
    with.initialize(&mut rng(6));
    let without = (with.0, with.2);
    for sample in [[0.1f32, -0.7, 0.4], [1.0, 1.0, -1.0], [0.0, 0.0, 0.0]] {
        let (a, b) = (with.infer(&sample), without.infer(&sample));
        assert!(
            a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
            "input {sample:?}: with dropout {a:?}, without {b:?}"
        );
    }
}

#[test]
fn same_seed_gives_the_same_mask() {
    let layer = Dropout::<UNITS>::new(0.5).unwrap();
    let (a, seed_a) = forward(&layer, &ones(ROWS), &mut rng(7));
    let (b, seed_b) = forward(&layer, &ones(ROWS), &mut rng(7));
    assert_eq!(
        seed_a, seed_b,
        "the same generator state gave different seeds"
    );
    let differing = a
        .as_flattened()
        .iter()
        .zip(b.as_flattened())
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count();
    assert_eq!(
        differing, 0,
        "{differing} units differ between identical runs"
    );
}

#[test]
fn different_seeds_give_different_masks() {
    let rate = 0.5f32;
    let layer = Dropout::<UNITS>::new(rate).unwrap();
    let (a, _) = forward(&layer, &ones(ROWS), &mut rng(8));
    let (b, _) = forward(&layer, &ones(ROWS), &mut rng(9));
    // Two independent masks disagree on a unit with probability q = 2p(1-p).
    let n = (UNITS * ROWS) as f64;
    let p = f64::from(rate);
    let q = 2.0 * p * (1.0 - p);
    let lower = n * q - SIGMAS * (n * q * (1.0 - q)).sqrt();
    let differing = a
        .as_flattened()
        .iter()
        .zip(b.as_flattened())
        .filter(|(x, y)| x != y)
        .count() as f64;
    assert!(
        differing >= lower,
        "masks from seeds 8 and 9 differ on {differing} of {n} units, expected at least {lower}"
    );

    // Consecutive passes with one generator draw fresh masks too.
    let mut r = rng(10);
    let (first, seed_1) = forward(&layer, &ones(ROWS), &mut r);
    let (second, seed_2) = forward(&layer, &ones(ROWS), &mut r);
    assert_ne!(seed_1, seed_2, "two passes drew the same seed");
    let differing = first
        .as_flattened()
        .iter()
        .zip(second.as_flattened())
        .filter(|(x, y)| x != y)
        .count() as f64;
    assert!(
        differing >= lower,
        "consecutive masks differ on {differing} of {n} units, expected at least {lower}"
    );
}

#[test]
fn backward_replays_the_forward_mask() {
    let rate = 0.4f32;
    let layer = Dropout::<UNITS>::new(rate).unwrap();
    let (output, seed) = forward(&layer, &ones(ROWS), &mut rng(11));
    let scale = 1.0 / (1.0 - rate);

    let mut derivative = vec![[f32::NAN; UNITS]; ROWS];
    layer.derivative_of_output(&mut derivative, &seed);
    for (k, (&y, &d)) in output
        .as_flattened()
        .iter()
        .zip(derivative.as_flattened())
        .enumerate()
    {
        assert!(
            y == d && (d == 0.0 || d == scale),
            "unit {k}: forward gave {y} for input 1, backward derivative {d}, \
             expected both equal to 0 or {scale}"
        );
    }
    // The replay is not vacuous: both kinds of unit occur.
    let dropped = derivative
        .as_flattened()
        .iter()
        .filter(|&&d| d == 0.0)
        .count();
    assert!(
        dropped > 0 && dropped < UNITS * ROWS,
        "{dropped} of {} units dropped",
        UNITS * ROWS
    );
}

#[test]
fn rate_zero_passes_input_through() {
    let layer = Dropout::<UNITS>::new(0.0).unwrap();
    let x: Vec<[f32; UNITS]> = (0..ROWS)
        .map(|r| core::array::from_fn(|i| (r * UNITS + i) as f32 * 0.37 - 100.0))
        .collect();
    let (y, seed) = forward(&layer, &x, &mut rng(12));
    for (k, (a, b)) in x.as_flattened().iter().zip(y.as_flattened()).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "unit {k}: input {a}, output {b}");
    }
    let mut derivative = vec![[f32::NAN; UNITS]; ROWS];
    layer.derivative_of_output(&mut derivative, &seed);
    assert!(
        derivative.as_flattened().iter().all(|&d| d == 1.0),
        "rate 0 must back-propagate unchanged"
    );
}

#[test]
fn invalid_rates_are_refused_with_the_rate() {
    for rate in [
        1.0f32,
        1.5,
        -0.1,
        -f32::MIN_POSITIVE,
        f32::NAN,
        f32::INFINITY,
    ] {
        match Dropout::<4>::new(rate) {
            Err(Error::DropoutRate { rate: got }) => assert_eq!(
                got.to_bits(),
                rate.to_bits(),
                "rate {rate} refused as {got}"
            ),
            other => panic!("rate {rate}: expected Err(DropoutRate), got {other:?}"),
        }
    }
    for rate in [0.0f32, 0.5, 0.999_999] {
        assert!(
            Dropout::<4>::new(rate).is_ok_and(|d| d.rate() == rate),
            "rate {rate} refused"
        );
    }
}

/// The mask a seed gives, computed here from the documented rule rather than by the layer:
/// blocks of 32 units; each `u32` draw serves `32 / bits` units from its top bits down; a
/// unit is dropped when its bits are below `threshold >> (32 - bits)`.
fn expected_drops(seed: u64, units: usize, threshold: u32, bits: u32) -> Vec<bool> {
    let mut generator = Xoshiro128PlusPlus::seed_from_u64(seed);
    let per_draw = (32 / bits) as usize;
    let limit = u64::from(threshold) >> (32 - bits);
    let mut drops = Vec::with_capacity(units);
    for block_start in (0..units).step_by(32) {
        let block = (units - block_start).min(32);
        for draw_start in (0..block).step_by(per_draw) {
            let word = generator.next_u32();
            for k in 0..per_draw.min(block - draw_start) {
                let field = (u64::from(word) << (32 + bits as usize * k)) >> (64 - bits);
                drops.push(field < limit);
            }
        }
    }
    drops
}

#[test]
fn each_draw_serves_as_many_units_as_the_rate_allows() {
    // (rate, bits per unit): 0.5 = 1/2 needs 1 bit, 0.25 and 0.75 need 2, 0.0625 = 1/16
    // needs 4, 129/256 needs 8, 32767/65536 needs 16, 0.2 is not a short binary fraction
    // and takes a whole u32 per unit.
    const N: usize = 50; // rows of 50 units: the flattened batch ends in a partial block
    let rates = [
        (0.5f32, 1),
        (0.25, 2),
        (0.75, 2),
        (0.0625, 4),
        (129.0 / 256.0, 8),
        (32767.0 / 65536.0, 16),
        (0.2, 32),
    ];
    for (rate, bits) in rates {
        let layer = Dropout::<N>::new(rate).unwrap();
        let input = vec![[1.0f32; N]; 3];
        let (output, seed) = forward(&layer, &input, &mut rng(21));
        let threshold = (f64::from(rate) * 4_294_967_296.0) as u32;
        let expected = expected_drops(seed.get(), 3 * N, threshold, bits);
        let dropped: Vec<bool> = output.as_flattened().iter().map(|&y| y == 0.0).collect();
        assert_eq!(dropped, expected, "rate {rate}");
    }
}
