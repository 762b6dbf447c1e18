//! What every host needs besides the routes, written once: the host keys all hosts share
//! ([`keys`]), the schedule that keeps the IdP's key set fresh ([`jwks`]), and one request's
//! environment with the verified-token cache tied to that key set ([`env`]). A host keeps
//! only its I/O: Envoy's shared data and `dispatch_http_call`, the Worker's Cache API and
//! `fetch`.

#[cfg(feature = "os-random")]
pub mod env;
pub mod jwks;
pub mod keys;
