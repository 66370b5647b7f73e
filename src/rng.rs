//! Random numbers: uniform floats for initialisers and an O(1)-memory shuffle.
//!
//! Every random draw in the crate comes from a generator the caller passes in (any
//! [`rand_core::Rng`]); [`Xoshiro128PlusPlus`](rand_xoshiro::Xoshiro128PlusPlus) is the
//! default because its 16-byte, 32-bit state suits microcontrollers.

use rand_core::Rng;

/// A uniform `f32` in `[0, 1)` with 24 random bits (every value is exactly representable).
#[inline]
pub fn unit_f32<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    const SCALE: f32 = 1.0 / 16_777_216.0; // 2^-24
    (rng.next_u32() >> 8) as f32 * SCALE
}

/// A uniform integer in `[0, n)` for `n >= 1` (Lemire's multiply-shift; its bias is below
/// `n / 2^64`, far under anything a training run can observe).
#[inline]
pub fn below<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    // A u64 times a usize (at most 64 bits) fits in 128 bits: the product cannot overflow.
    let wide = u128::from(rng.next_u64()).wrapping_mul(n as u128);
    (wide >> 64) as usize
}

/// A pseudo-random permutation of `0..len` that needs no memory per element.
///
/// Built from a 4-round Feistel network on the smallest even-bit power-of-two domain that
/// holds `len`, with cycle walking to stay inside `0..len`: `get(i)` is a bijection, each
/// call costs a few multiplications, and a new key (one draw of 128 bits) gives a new
/// order. This is how [`crate::Trainer::fit`] shuffles every epoch without an index buffer,
/// and how [`crate::KFold`] assigns folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permutation {
    len: u64,
    half_bits: u32,
    keys: [u32; 4],
}

impl Permutation {
    /// A permutation of `0..len` keyed from `rng`.
    pub fn new<R: Rng + ?Sized>(len: usize, rng: &mut R) -> Self {
        let len = len as u64;
        let bits = u64::BITS
            .saturating_sub(len.saturating_sub(1).leading_zeros())
            .max(2);
        let bits = bits.saturating_add(bits & 1);
        let keys = [
            rng.next_u32(),
            rng.next_u32(),
            rng.next_u32(),
            rng.next_u32(),
        ];
        Self {
            len,
            half_bits: bits / 2,
            keys,
        }
    }

    /// The identity permutation (no shuffling).
    pub const fn identity(len: usize) -> Self {
        Self {
            len: len as u64,
            half_bits: 0,
            keys: [0; 4],
        }
    }

    /// Number of elements.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True for the permutation of nothing.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The element at position `index` (`index` itself if out of range).
    pub fn get(&self, index: usize) -> usize {
        let index = index as u64;
        if self.half_bits == 0 || index >= self.len {
            return index as usize;
        }
        let mut x = index;
        // The Feistel map is a bijection on 0..2^bits, so the walk returns below `len`
        // within the cycle through `index`; 2^bits < 4·len bounds the expected walk by 4.
        loop {
            x = self.feistel(x);
            if x < self.len {
                return x as usize;
            }
        }
    }

    fn feistel(&self, x: u64) -> u64 {
        // half_bits is at most 32, so the shift and the subtraction stay in range.
        let mask = (1u64 << self.half_bits).wrapping_sub(1);
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for key in self.keys {
            let mixed = mix(right as u32 ^ key) as u64 & mask;
            (left, right) = (right, left ^ mixed);
        }
        (left << self.half_bits) | right
    }
}

/// A 32-bit integer hash (lowbias32 by C. Wellons): good avalanche for a Feistel round.
#[inline]
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro128PlusPlus;

    #[test]
    fn permutation_is_a_bijection_for_many_lengths() {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
        for len in [1usize, 2, 3, 5, 16, 17, 100, 455, 1000, 4097] {
            let p = Permutation::new(len, &mut rng);
            let mut seen = std::vec![false; len];
            for i in 0..len {
                let j = p.get(i);
                assert!(j < len, "len {len}: {i} -> {j}");
                assert!(!seen[j], "len {len}: {j} hit twice");
                seen[j] = true;
            }
        }
    }

    #[test]
    fn different_keys_give_different_orders() {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
        let a = Permutation::new(100, &mut rng);
        let b = Permutation::new(100, &mut rng);
        let differing = (0..100).filter(|&i| a.get(i) != b.get(i)).count();
        assert!(differing > 90, "only {differing} of 100 positions differ");
        let moved = (0..100).filter(|&i| a.get(i) != i).count();
        assert!(moved > 90, "only {moved} of 100 positions moved");
    }

    #[test]
    fn unit_f32_stays_in_range_and_below_is_uniform() {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            let u = unit_f32(&mut rng);
            assert!((0.0..1.0).contains(&u));
            counts[below(&mut rng, 5)] += 1;
        }
        // Each count ~ Binomial(50000, 0.2): mean 10000, sd ~ 89; 6 sd = 537.
        for c in counts {
            assert!((c as i64 - 10_000).abs() < 537, "counts {counts:?}");
        }
    }
}
