//! GaussianNoise, GaussianDropout and AlphaDropout, tested statistically: the noise's
//! mean, variance and (for the Gaussian draws) mass within one deviation, each within 5
//! standard errors of its expected value (a false alarm has a probability below 10⁻⁶ per
//! bound), plus identity at inference, same seed ⇒ same noise, and backward's replay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::layers::MaskSeed;
use microtrain::*;

const UNITS: usize = 128;
const ROWS: usize = 64;
/// Values per statistical test.
const COUNT: f64 = (UNITS * ROWS) as f64;
/// Bounds are this many standard errors wide.
const SIGMAS: f64 = 5.0;

type Batch = [[f32; UNITS]; ROWS];

fn rng(seed: u64) -> Xoshiro128PlusPlus {
    Xoshiro128PlusPlus::seed_from_u64(seed)
}

/// A training forward pass of `layer` on `input`, with the generator seeded by `seed`.
fn forward<L: Layer<Input = [f32; UNITS], Output = [f32; UNITS], Cache = MaskSeed>>(
    layer: &L,
    input: &Batch,
    seed: u64,
) -> (Box<Batch>, MaskSeed) {
    let mut output = Box::new([[0.0f32; UNITS]; ROWS]);
    let mut cache = MaskSeed::default();
    layer.forward(&input[..], &mut output[..], &mut cache, &mut rng(seed));
    (output, cache)
}

struct Moments {
    mean: f64,
    variance: f64,
    fourth: f64,
}

fn moments(values: &[f32]) -> Moments {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let central = |p: i32| {
        values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(p))
            .sum::<f64>()
            / n
    };
    Moments {
        mean,
        variance: central(2),
        fourth: central(4),
    }
}

/// Asserts the sample mean and variance of `values` against `mean` and `variance`, each
/// within `SIGMAS` standard errors (the variance's from the sample's fourth moment).
fn assert_moments(case: &str, values: &[f32], mean: f64, variance: f64) {
    let m = moments(values);
    let n = values.len() as f64;
    let mean_bound = SIGMAS * (variance / n).sqrt();
    assert!(
        (m.mean - mean).abs() <= mean_bound,
        "{case}: mean {} is more than {mean_bound} from {mean}",
        m.mean
    );
    let variance_bound = SIGMAS * ((m.fourth - m.variance * m.variance) / n).sqrt();
    assert!(
        (m.variance - variance).abs() <= variance_bound,
        "{case}: variance {} is more than {variance_bound} from {variance}",
        m.variance
    );
}

/// The fraction of standard normal draws within one deviation must be `erf(1/√2)`.
fn assert_normal_mass(case: &str, normals: impl Iterator<Item = f64>) {
    const WITHIN_ONE: f64 = 0.682_689_492_137_085_9;
    let inside = normals.filter(|n| n.abs() < 1.0).count() as f64 / COUNT;
    let bound = SIGMAS * (WITHIN_ONE * (1.0 - WITHIN_ONE) / COUNT).sqrt();
    assert!(
        (inside - WITHIN_ONE).abs() <= bound,
        "{case}: {inside} of the draws within 1σ, expected {WITHIN_ONE} ± {bound}"
    );
}

fn same_bits(a: &Batch, b: &Batch) -> bool {
    a.as_flattened()
        .iter()
        .zip(b.as_flattened())
        .all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn gaussian_noise_adds_normal_noise_of_the_stated_deviation() {
    let stddev = 0.5;
    let layer = GaussianNoise::<UNITS>::new(stddev).unwrap();
    let input = [[3.0f32; UNITS]; ROWS];
    let (output, cache) = forward(&layer, &input, 1);
    let noise: Vec<f32> = output.as_flattened().iter().map(|y| y - 3.0).collect();
    assert_moments("GaussianNoise", &noise, 0.0, f64::from(stddev * stddev));
    assert_normal_mass(
        "GaussianNoise",
        noise.iter().map(|&n| f64::from(n) / f64::from(stddev)),
    );
    // Same seed, same noise; another seed, other noise.
    assert!(same_bits(&output, &forward(&layer, &input, 1).0));
    assert!(!same_bits(&output, &forward(&layer, &input, 2).0));
    // Identity at inference, and `∂y/∂x = 1` in backward.
    assert_eq!(layer.infer(&input[0]), input[0]);
    let mut derivative = output.clone();
    layer.derivative_of_output(&mut derivative[..], &cache);
    assert!(derivative.as_flattened().iter().all(|&d| d == 1.0));
}

#[test]
fn gaussian_dropout_multiplies_by_noise_of_mean_one_and_keras_deviation() {
    let rate = 0.2;
    let layer = GaussianDropout::<UNITS>::new(rate).unwrap();
    let stddev = f64::from(rate / (1.0 - rate)).sqrt();
    let ones = [[1.0f32; UNITS]; ROWS];
    let (factors, cache) = forward(&layer, &ones, 5);
    assert_moments(
        "GaussianDropout",
        factors.as_flattened(),
        1.0,
        stddev * stddev,
    );
    assert_normal_mass(
        "GaussianDropout",
        factors
            .as_flattened()
            .iter()
            .map(|&m| (f64::from(m) - 1.0) / stddev),
    );
    assert!(same_bits(&factors, &forward(&layer, &ones, 5).0));
    assert!(!same_bits(&factors, &forward(&layer, &ones, 6).0));
    assert_eq!(layer.infer(&ones[0]), ones[0]);
    // Backward replays the very factors forward applied (on ones they are the outputs).
    let mut derivative = Box::new([[0.0f32; UNITS]; ROWS]);
    layer.derivative_of_output(&mut derivative[..], &cache);
    assert!(same_bits(&derivative, &factors));
}

#[test]
fn alpha_dropout_keeps_zero_mean_and_unit_variance() {
    let rate = 0.3;
    let layer = AlphaDropout::<UNITS>::new(rate).unwrap();
    // Standard normal inputs (themselves the noise of a GaussianNoise layer on zeros).
    let normal = GaussianNoise::<UNITS>::new(1.0).unwrap();
    let (input, _) = forward(&normal, &[[0.0; UNITS]; ROWS], 9);
    let (output, _) = forward(&layer, &input, 10);
    assert_moments("AlphaDropout", output.as_flattened(), 0.0, 1.0);
    assert!(same_bits(&output, &forward(&layer, &input, 10).0));
    assert!(!same_bits(&output, &forward(&layer, &input, 11).0));
    assert_eq!(layer.infer(&input[0]), input[0]);
}

#[test]
fn alpha_dropout_drops_at_its_rate_with_dropouts_mask_and_replays_it() {
    let rate = 0.3;
    let layer = AlphaDropout::<UNITS>::new(rate).unwrap();
    let (a, b) = layer.affine();
    // Inputs of 10 and more: kept outputs `a·x + b` are far from the dropped value.
    let input: Batch = core::array::from_fn(|r| core::array::from_fn(|u| 10.0 + (r + u) as f32));
    let (output, cache) = forward(&layer, &input, 20);
    let kept: Vec<bool> = output
        .as_flattened()
        .iter()
        .zip(input.as_flattened())
        .map(|(&y, &x)| y == a * x + b)
        .collect();
    let dropped_values: Vec<f32> = output
        .as_flattened()
        .iter()
        .zip(&kept)
        .filter(|(_, k)| !**k)
        .map(|(&y, _)| y)
        .collect();
    assert!(
        dropped_values.windows(2).all(|w| w[0] == w[1]),
        "one dropped value"
    );
    let fraction = dropped_values.len() as f64 / COUNT;
    let q = f64::from(rate);
    let bound = SIGMAS * (q * (1.0 - q) / COUNT).sqrt();
    assert!(
        (fraction - q).abs() <= bound,
        "dropped {fraction}, rate {rate} ± {bound}"
    );
    // The mask is Dropout's for the same seed and rate.
    let dropout = Dropout::<UNITS>::new(rate).unwrap();
    let (masked, _) = forward(&dropout, &input, 20);
    for (&m, &k) in masked.as_flattened().iter().zip(&kept) {
        assert_eq!(m != 0.0, k);
    }
    // Backward: `a` where kept, 0 where dropped, replayed from the seed.
    let mut derivative = Box::new([[0.0f32; UNITS]; ROWS]);
    layer.derivative_of_output(&mut derivative[..], &cache);
    for (&d, &k) in derivative.as_flattened().iter().zip(&kept) {
        assert_eq!(d, if k { a } else { 0.0 });
    }
}

#[test]
fn zero_noise_is_the_identity_and_draws_nothing() {
    let input: Batch = core::array::from_fn(|r| core::array::from_fn(|u| (r * u) as f32 - 7.5));
    let untouched = rng(30).next_u64();
    let check = |output: &Batch, case: &str| assert!(same_bits(output, &input), "{case}");
    let mut generator = rng(30);
    let mut output = Box::new([[0.0f32; UNITS]; ROWS]);
    let mut cache = MaskSeed::default();
    GaussianNoise::<UNITS>::new(0.0).unwrap().forward(
        &input[..],
        &mut output[..],
        &mut cache,
        &mut generator,
    );
    check(&output, "GaussianNoise(0)");
    GaussianDropout::<UNITS>::new(0.0).unwrap().forward(
        &input[..],
        &mut output[..],
        &mut cache,
        &mut generator,
    );
    check(&output, "GaussianDropout(0)");
    AlphaDropout::<UNITS>::new(0.0).unwrap().forward(
        &input[..],
        &mut output[..],
        &mut cache,
        &mut generator,
    );
    check(&output, "AlphaDropout(0)");
    assert_eq!(
        generator.next_u64(),
        untouched,
        "a zero rate drew from the generator"
    );
}

#[test]
fn constructors_refuse_bad_rates_and_deviations() {
    for bad in [-0.1, 1.0, 1.5, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            GaussianDropout::<4>::new(bad),
            Err(Error::DropoutRate { .. })
        ));
        assert!(matches!(
            AlphaDropout::<4>::new(bad),
            Err(Error::DropoutRate { .. })
        ));
    }
    for bad in [-1e-3, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            GaussianNoise::<4>::new(bad),
            Err(Error::NoiseStddev { .. })
        ));
    }
}

#[test]
fn the_layers_keep_no_noise() {
    use core::mem::size_of;
    assert_eq!(size_of::<GaussianNoise<256>>(), 4);
    assert_eq!(size_of::<GaussianDropout<256>>(), 4);
    assert_eq!(size_of::<AlphaDropout<256>>(), size_of::<Dropout<256>>());
    assert_eq!(size_of::<MaskSeed>(), 8);
}
