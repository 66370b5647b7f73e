//! `rng::Permutation` on lengths and keys from the fuzzer. Asserts: `get` maps `0..len`
//! onto `0..len`, every index exactly once, and leaves indices past the end unchanged; the
//! identity permutation is the identity.
//!
//! Layout: u16 length (low half), u8 length (high byte: lengths up to 2^24 - 1, capped at
//! 1 << 17 to keep a run fast), then 16 bytes of generator seed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microtrain::rng::Permutation;
use microtrain::{SeedableRng, Xoshiro128PlusPlus};
use microtrain_fuzz::Reader;

fuzz_target!(|bytes: &[u8]| {
    let mut r = Reader(bytes);
    let len = (usize::from(r.u16()) | usize::from(r.u8()) << 16).min(1 << 17);
    let mut seed = [0u8; 16];
    for byte in &mut seed {
        *byte = r.u8();
    }
    let mut rng = Xoshiro128PlusPlus::from_seed(seed);
    let permutation = Permutation::new(len, &mut rng);
    assert_eq!(permutation.len(), len);
    let mut seen = vec![false; len];
    for i in 0..len {
        let j = permutation.get(i);
        assert!(j < len, "len {len}: {i} -> {j}");
        assert!(!seen[j], "len {len}: {j} hit twice");
        seen[j] = true;
    }
    for past in [len, len + 1, usize::MAX] {
        assert_eq!(permutation.get(past), past);
    }
    let identity = Permutation::identity(len);
    assert!((0..len.min(1000)).all(|i| identity.get(i) == i));
});
