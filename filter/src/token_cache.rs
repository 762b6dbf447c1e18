//! A bounded cache of verified bearer tokens, so a token seen again costs a lookup instead of
//! a signature check (RSA especially). Keyed by a hash of the token's signature segment; a
//! hit also compares the whole token (in time that does not depend on where it differs), so
//! a hash collision can never lend one token another's identity. Entries die at the token's
//! `exp`; the oldest entry is evicted when full.
//!
//! Hosts keep one per VM / isolate and lend it to the core through `Env::cache`. Each entry
//! also keeps what the guard derived for the origin from its token ([`Attached`]: the
//! identity headers, the identity assertion, the IdP's token), so a token seen again reuses
//! them: a hit shares the identity and the prebuilt header list (no copy).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::Rc;
use alloc::string::String;

use crate::encoding::words;
use crate::jwt::Identity;

struct Entry {
    token: Box<str>,
    identity: Rc<Identity>,
    /// Issued by the proxy (revocable through the store) rather than by the IdP.
    own: bool,
    attached: Attached,
}

/// What the guard derived from a cached token for the origin (see `routes::origin_headers`).
#[derive(Default)]
pub(crate) struct Attached {
    /// The identity headers for the origin, built once (`routes::guard`).
    pub identity_headers: Option<Rc<[(String, String)]>>,
    /// The identity assertion and its `exp`.
    pub assertion: Option<(String, u64)>,
    /// Whether the token's carried IdP token was read (into `upstream`).
    pub upstream_read: bool,
    /// The IdP's token of the user as last known: the one the access token carries, or the
    /// guard's renewal of it.
    pub upstream: Option<crate::upstream_token::Carried>,
    /// When this VM / isolate started renewing `upstream` (one renewal at a time).
    pub renewing_since: Option<u64>,
}

pub struct TokenCache {
    entries: BTreeMap<u64, Entry>,
    order: VecDeque<u64>,
    capacity: usize,
}

/// A hash of the last 64 bytes (the signature, which differs between any two tokens), eight
/// bytes at a time, and of the length.
fn key(token: &str) -> u64 {
    let bytes = token.as_bytes();
    let tail = bytes.get(bytes.len().saturating_sub(64)..).unwrap_or(bytes);
    let (words, rest) = words(tail);
    words
        .chain(rest.iter().map(|b| u64::from(*b)))
        .fold(0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64, |h, w| {
            (h.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        })
}

/// Whether a presented token is the cached one: every byte compared, eight at a time, and the
/// time taken does not depend on where they first differ (a token is a credential).
fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let ((wa, ra), (wb, rb)) = (words(a), words(b));
    let words_differ = wa.zip(wb).fold(0, |d, (x, y)| d | (x ^ y));
    let rest_differs = ra.iter().zip(rb).fold(0, |d, (x, y)| d | u64::from(x ^ y));
    words_differ | rest_differs == 0
}

impl TokenCache {
    /// A cache of at most `capacity` tokens; 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            order: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A cached, still valid token (`exp` + `leeway` after `now`): its identity, whether it is
    /// the proxy's own, and what was derived from it.
    pub(crate) fn hit(
        &mut self,
        token: &str,
        now: u64,
        leeway: u64,
    ) -> Option<(&Rc<Identity>, bool, &mut Attached)> {
        let e = self.entries.get_mut(&key(token))?;
        (same_token(&e.token, token) && e.identity.exp.saturating_add(leeway) > now).then_some((
            &e.identity,
            e.own,
            &mut e.attached,
        ))
    }

    /// The identity of a cached, still valid token.
    #[cfg(test)]
    fn get(&mut self, token: &str, now: u64, leeway: u64) -> Option<(&Rc<Identity>, bool)> {
        self.hit(token, now, leeway).map(|(id, own, _)| (id, own))
    }

    /// What was derived from a cached `token` for the origin (`None` when it is not cached).
    pub(crate) fn attached(&mut self, token: &str) -> Option<&mut Attached> {
        self.entries
            .get_mut(&key(token))
            .filter(|e| same_token(&e.token, token))
            .map(|e| &mut e.attached)
    }

    pub(crate) fn insert(&mut self, token: &str, identity: Rc<Identity>, own: bool) {
        if self.capacity == 0 {
            return;
        }
        let k = key(token);
        if self.entries.contains_key(&k) {
            self.order.retain(|o| *o != k);
        }
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        self.entries.insert(
            k,
            Entry {
                token: token.into(),
                identity,
                own,
                attached: Attached::default(),
            },
        );
        self.order.push_back(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn id(exp: u64) -> Identity {
        Identity {
            sub: "s".into(),
            username: None,
            groups: Vec::new(),
            scope: String::new(),
            email: None,
            client_id: None,
            exp,
            jti: None,
            sid: None,
            extra: Vec::new(),
        }
    }

    #[test]
    fn hits_until_expiry_and_compares_whole_token() {
        let mut c = TokenCache::new(4);
        c.insert("aaa.bbb.sig", id(100).into(), true);
        assert!(c.get("aaa.bbb.sig", 99, 0).is_some());
        assert!(c.get("aaa.bbb.sig", 100, 0).is_none(), "expired");
        assert!(c.get("aaa.bbb.sig", 120, 30).is_some(), "leeway");
        // The same last 64 bytes and length (the same key), another token: no hit.
        let sig = "s".repeat(64);
        c.insert(&format!("aaa.bbb.{sig}"), id(100).into(), true);
        assert_eq!(
            key(&format!("aaa.bbb.{sig}")),
            key(&format!("xxx.bbb.{sig}"))
        );
        assert!(c.get(&format!("aaa.bbb.{sig}"), 0, 0).is_some());
        assert!(c.get(&format!("xxx.bbb.{sig}"), 0, 0).is_none());
        assert!(c.attached(&format!("xxx.bbb.{sig}")).is_none());
    }

    #[test]
    fn tokens_are_the_same_exactly_when_every_byte_is() {
        for len in 0..40 {
            let a: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            assert!(same_token(&a, &a.clone()));
            assert!(!same_token(&a, &format!("{a}x")), "longer");
            for at in 0..len {
                let mut b = a.clone().into_bytes();
                b[at] ^= 1;
                let b = String::from_utf8(b).unwrap();
                assert!(!same_token(&a, &b), "{len} bytes, differing at {at}");
            }
        }
    }

    #[test]
    fn bounded_with_oldest_evicted() {
        let mut c = TokenCache::new(3);
        for i in 0..50 {
            c.insert(&format!("token-{i}"), id(1000).into(), false);
            assert!(c.len() <= 3);
        }
        assert!(c.get("token-49", 0, 0).is_some());
        assert!(c.get("token-0", 0, 0).is_none());
        let mut off = TokenCache::new(0);
        off.insert("t", id(1000).into(), false);
        assert!(off.is_empty());
    }
}
