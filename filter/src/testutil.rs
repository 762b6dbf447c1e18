//! Deterministic stand-ins for the host's randomness, for tests.

use crate::http::Random;

/// A seeded xorshift generator: reproducible "random" bytes for tests.
pub struct SeqRandom(pub u64);

impl Random for SeqRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0 >> 24) as u8;
        }
    }
}
