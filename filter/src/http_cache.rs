//! A small HTTP cache for the fetches the core marks `cacheable` (Client ID Metadata
//! Documents): 200 answers kept for their `Cache-Control: max-age` (at most a day), never when
//! marked `no-store`, `no-cache` or `private`, and never without a `max-age`. Bounded: the
//! entry expiring soonest is dropped when full. Hosts keep one per VM / isolate.

use alloc::collections::BTreeMap;
use alloc::string::String;

use crate::http::HttpResponse;

/// Longest time anything is cached, whatever the origin says.
pub const MAX_AGE_CAP: u64 = 86_400;

pub struct HttpCache {
    entries: BTreeMap<String, (u64, HttpResponse)>,
    capacity: usize,
}

/// Seconds the response may be reused, from its `Cache-Control` header.
pub fn max_age(resp: &HttpResponse) -> Option<u64> {
    let cc = resp
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("cache-control"))
        .map(|(_, v)| v.to_ascii_lowercase())?;
    let mut age = None;
    for directive in cc.split(',').map(str::trim) {
        match directive.split_once('=') {
            Some(("max-age", v)) => age = v.trim_matches('"').parse::<u64>().ok(),
            _ if matches!(directive, "no-store" | "no-cache" | "private") => return None,
            _ => {}
        }
    }
    age.filter(|a| *a > 0).map(|a| a.min(MAX_AGE_CAP))
}

impl HttpCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            capacity,
        }
    }

    pub fn get(&self, url: &str, now: u64) -> Option<&HttpResponse> {
        self.entries
            .get(url)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, r)| r)
    }

    /// Keeps `resp` for `url` if it is a cacheable 200.
    pub fn store(&mut self, url: &str, resp: &HttpResponse, now: u64) {
        let Some(age) = max_age(resp).filter(|_| resp.status == 200 && self.capacity > 0) else {
            return;
        };
        self.entries.retain(|_, (expires, _)| *expires > now);
        while self.entries.len() >= self.capacity {
            let Some(soonest) = self
                .entries
                .iter()
                .min_by_key(|(_, (expires, _))| *expires)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.entries.remove(&soonest);
        }
        self.entries
            .insert(String::from(url), (now.saturating_add(age), resp.clone()));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn resp(status: u16, cc: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Cache-Control".into(), cc.into())],
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn honours_cache_control() {
        assert_eq!(max_age(&resp(200, "public, max-age=600")), Some(600));
        assert_eq!(max_age(&resp(200, "max-age=999999")), Some(MAX_AGE_CAP));
        assert_eq!(max_age(&resp(200, "max-age=600, no-store")), None);
        assert_eq!(max_age(&resp(200, "no-cache")), None);
        assert_eq!(max_age(&resp(200, "private, max-age=60")), None);
        assert_eq!(max_age(&resp(200, "public")), None);
        assert_eq!(max_age(&HttpResponse::default()), None);
    }

    #[test]
    fn stores_only_cacheable_200s_until_expiry_and_stays_bounded() {
        let mut c = HttpCache::new(2);
        c.store("a", &resp(404, "max-age=60"), 0);
        assert!(c.get("a", 0).is_none());
        c.store("a", &resp(200, "max-age=60"), 0);
        assert!(c.get("a", 59).is_some());
        assert!(c.get("a", 60).is_none());
        c.store("b", &resp(200, "max-age=10"), 0);
        c.store("c", &resp(200, "max-age=30"), 0);
        assert_eq!(c.len(), 2);
        assert!(c.get("b", 0).is_none(), "soonest-expiring entry evicted");
    }
}
