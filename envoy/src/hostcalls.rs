//! Every call the filter makes into Envoy, behind one small trait ([`Host`]), so the filter's
//! logic (request handling, the JWKS lease, the body watchdog, metrics) has unit tests that run
//! without Envoy: [`Envoy`] is the real host (proxy-wasm hostcalls), the tests use a fake.
//!
//! Calls about "the request" act on the current (effective) HTTP context, as proxy-wasm's do.

use std::time::Duration;

use mcpgate_filter::{Reply, StoreOp};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};

use crate::header_map::HeaderMap;

/// Why a shared-data write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedError {
    /// The value changed since it was read (compare-and-swap lost).
    CasMismatch,
    /// Any other failure.
    Failed,
}

/// A metric's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// The host calls of the filter.
pub trait Host {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    // ---- the current request and its response ----
    /// The request headers, names lower-cased (the whole map in one call); a value that is
    /// not UTF-8 reads with replacement characters (the map itself is left as it is).
    fn request_headers(&self) -> HeaderMap;
    /// One request header.
    fn request_header(&self, name: &str) -> Option<String>;
    /// The buffered request body, at most `max` bytes.
    fn request_body(&self, max: usize) -> Vec<u8>;
    fn remove_request_header(&self, name: &str);
    fn set_request_header(&self, name: &str, value: &str);
    fn set_response_header(&self, name: &str, value: &str);
    /// The response headers, names lower-cased (`:status` included).
    fn response_headers(&self) -> HeaderMap;
    fn remove_response_header(&self, name: &str);
    /// The response body buffered for this callback, at most `max` bytes.
    fn response_body(&self, max: usize) -> Vec<u8>;
    /// Replaces the first `size` bytes of the buffered response body with `body`.
    fn set_response_body(&self, size: usize, body: &[u8]);
    /// Answers the request locally.
    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]);
    /// Lets a request paused earlier go on.
    fn resume_request(&self);
    /// A property of the current context or the host (`source.address`, `xds.node…`).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// Makes another context the current one (the watchdog acts on held requests).
    fn set_effective_context(&self, context_id: u32) -> bool;

    // ---- calls to other services ----
    /// Sends a request through `cluster`; returns the call token.
    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, String>;
    /// The headers of the answer to the call being completed (pseudo-headers included).
    fn call_response_headers(&self) -> HeaderMap;
    /// The body of the answer to the call being completed.
    fn call_response_body(&self, size: usize) -> Vec<u8>;

    // ---- state shared by every VM of the process ----
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError>;
    /// Creates the store's records (configure time, before traffic).
    fn init_store(&self);
    /// Carries out a one-time-use / revocation / rate-limit operation of the store:
    /// [`Reply::Store`], or [`Reply::StoreFailed`] when it could not answer.
    fn store(&self, op: &StoreOp, now: u64) -> Reply;
    /// Records a revocation replicated from the fleet store (entry id, expiry) where the
    /// revocation check reads: `Some(true)` when it is new here, `None` when it could not.
    fn store_revoked(&self, id: &str, expires_at: u64, now: u64) -> Option<bool>;

    // ---- the VM ----
    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32>;
    fn increment_metric(&self, id: u32, delta: i64) -> bool;
    fn plugin_configuration(&self) -> Result<Vec<u8>, String>;
    fn set_tick_period(&self, period: Duration) -> bool;
    /// A variable of the VM's environment (`vm_config.environment_variables`).
    fn env_var(&self, name: &str) -> Option<String>;
    /// Envoy's `verify_signature` foreign function: `Err(true)` when the host lacks it.
    fn verify_signature(&self, args: &[u8]) -> Result<Option<Vec<u8>>, bool>;
}

/// The real host: proxy-wasm's hostcalls into Envoy.
#[derive(Clone, Copy, Debug, Default)]
pub struct Envoy;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
}

/// A header map of the current request or response, or of a call's answer, read in place
/// ([`HeaderMap::parse`]); empty when Envoy has none.
fn header_map(map: MapType) -> HeaderMap {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a size into the two locals. A non-null pointer is
    // a buffer of `size` bytes it allocated through the SDK's `proxy_on_memory_allocate` (a
    // `Vec<u8>` of that capacity, forgotten): taking it back as that `Vec` frees it once,
    // as the SDK's own `get_map_bytes` does.
    let buf = unsafe {
        match proxy_get_header_map_pairs(map, &mut data, &mut size) {
            Status::Ok if !data.is_null() => Vec::from_raw_parts(data, size, size),
            _ => Vec::new(),
        }
    };
    if buf.is_empty() {
        return HeaderMap::default();
    }
    HeaderMap::parse(buf).unwrap_or_else(|| {
        log::warn!("mcpgate: Envoy handed over a header map that does not parse");
        HeaderMap::default()
    })
}

impl Host for Envoy {
    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn request_headers(&self) -> HeaderMap {
        header_map(MapType::HttpRequestHeaders)
    }

    fn request_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
    }

    fn request_body(&self, max: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::HttpRequestBody, 0, max)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn remove_request_header(&self, name: &str) {
        let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
    }

    fn set_request_header(&self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
    }

    fn set_response_header(&self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value));
    }

    fn response_headers(&self) -> HeaderMap {
        header_map(MapType::HttpResponseHeaders)
    }

    fn remove_response_header(&self, name: &str) {
        let _ = hostcalls::remove_map_value(MapType::HttpResponseHeaders, name);
    }

    fn response_body(&self, max: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::HttpResponseBody, 0, max)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn set_response_body(&self, size: usize, body: &[u8]) {
        if let Err(e) = hostcalls::set_buffer(BufferType::HttpResponseBody, 0, size, body) {
            log::warn!("mcpgate: replacing the response body failed: {e:?}");
        }
    }

    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        if let Err(e) =
            hostcalls::send_http_response(u32::from(status), headers.to_vec(), Some(body))
        {
            log::warn!("mcpgate: sending a local response failed: {e:?}");
        }
    }

    fn resume_request(&self) {
        let _ = hostcalls::resume_http_request();
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn set_effective_context(&self, context_id: u32) -> bool {
        hostcalls::set_effective_context(context_id).is_ok()
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, String> {
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), body, Vec::new(), timeout)
            .map_err(|status| format!("dispatch to cluster {cluster} failed: {status:?}"))
    }

    fn call_response_headers(&self) -> HeaderMap {
        header_map(MapType::HttpCallResponseHeaders)
    }

    fn call_response_body(&self, size: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError> {
        hostcalls::set_shared_data(key, Some(value), cas).map_err(|s| match s {
            Status::CasMismatch => SharedError::CasMismatch,
            _ => SharedError::Failed,
        })
    }

    fn init_store(&self) {
        crate::store::init();
        crate::store::init_buckets();
    }

    fn store(&self, op: &StoreOp, now: u64) -> Reply {
        crate::store::perform(op, now)
    }

    fn store_revoked(&self, id: &str, expires_at: u64, now: u64) -> Option<bool> {
        crate::store::revoke_id(id, expires_at, now)
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
        };
        hostcalls::define_metric(kind, name).ok()
    }

    fn increment_metric(&self, id: u32, delta: i64) -> bool {
        hostcalls::increment_metric(id, delta).is_ok()
    }

    fn plugin_configuration(&self) -> Result<Vec<u8>, String> {
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .map(Option::unwrap_or_default)
            .map_err(|e| format!("cannot read the plugin configuration: {e:?}"))
    }

    fn set_tick_period(&self, period: Duration) -> bool {
        hostcalls::set_tick_period(period).is_ok()
    }

    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn verify_signature(&self, args: &[u8]) -> Result<Option<Vec<u8>>, bool> {
        match hostcalls::call_foreign_function("verify_signature", Some(args)) {
            Ok(reply) => Ok(reply),
            Err(Status::NotFound) => Err(true),
            Err(_) => Err(false),
        }
    }
}
