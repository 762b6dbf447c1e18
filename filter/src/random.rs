//! The hosts' source of randomness: the platform's (WASI `random_get` under Envoy,
//! `crypto.getRandomValues` in a Worker) through `getrandom`. Feature `os-random`.

use crate::http::Random;

/// Random bytes from the platform. A failure is remembered (and the bytes zeroed): the host
/// checks [`OsRandom::failed`] and refuses the request rather than use predictable values.
#[derive(Debug, Default)]
pub struct OsRandom {
    failed: bool,
}

impl OsRandom {
    pub fn failed(&self) -> bool {
        self.failed
    }
}

impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        if getrandom::fill(buf).is_err() {
            self.failed = true;
            buf.fill(0);
        }
    }
}
