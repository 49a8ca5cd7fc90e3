//! A small deterministic random number generator whose whole state is one `u64`,
//! so it can be stored in a checkpoint and restored exactly.

use serde::{Deserialize, Serialize};

/// SplitMix64: fast, statistically good enough for shuffling and augmentation, trivially serialisable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator derived from a seed and a stream index (e.g. epoch and sample index), independent
    /// of the order in which streams are consumed.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let mut base = Self::new(seed ^ stream.wrapping_mul(0xD134_2543_DE82_EF95));
        let mixed = base.next_u64();
        Self::new(mixed)
    }

    /// The internal state (to store in a checkpoint).
    pub fn state(&self) -> u64 {
        self.state
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[low, high)`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_streams_are_reproducible() {
        let mut a = Rng::new(7);
        a.next_u64();
        let mut b = Rng::new(a.state());
        assert_eq!(a.next_u64(), b.next_u64());
        assert_eq!(Rng::derive(1, 2).next_u64(), Rng::derive(1, 2).next_u64());
        assert_ne!(Rng::derive(1, 2).next_u64(), Rng::derive(1, 3).next_u64());
        let mut v: Vec<usize> = (0..100).collect();
        Rng::new(3).shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(v, sorted);
        let x = Rng::new(9).uniform(2.0, 3.0);
        assert!((2.0..3.0).contains(&x));
    }
}
