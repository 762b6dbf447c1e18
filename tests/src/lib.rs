//! End-to-end test support for mcpgate.
//!
//! * [`browser`] — headless Chromium over WebDriver: console checks, screenshots;
//! * [`browser_scenarios`] — a person signing in in the browser (consent, the emulator's
//!   sign-in page, the client's loopback redirect URI), scenarios shared by both hosts;
//! * [`loopback_client`] — the client side of those: registration, authorization request,
//!   the app at its loopback redirect URI;
//! * [`client_scenarios`] — real MCP clients (Claude Code, claude.ai, Cursor, VS Code,
//!   ChatGPT, the MCP Inspector, Goose, machine clients) replayed from their fixtures, scenarios
//!   shared by both hosts; [`cimd_server`] serves their metadata documents;
//! * [`cognito`] — an AWS Cognito user-pool emulator (hosted-UI OAuth endpoints, JWKS,
//!   Cognito-shaped tokens, fault injection);
//! * [`demo_mcp`] — a small MCP server (rmcp, streamable HTTP) used as the upstream;
//!   [`demo_identity`] — its tools that use the IdP token and the identity assertion the
//!   proxy forwards;
//! * [`origin`] — the origin behind the proxy: the demo server or the official Python SDK's
//!   server, with the requests each received;
//! * [`faults`] — IdP faults at the token endpoint (code exchange, refresh, revocation),
//!   scenarios shared by both hosts;
//! * [`envoy_setup`] — real Envoy running the mcpgate filter in front of the demo server;
//! * [`aws_local`] — moto (DynamoDB, STS, IAM) checking signatures and policies, and a
//!   relay that makes it unreachable at will; [`fleet`] — two Envoy processes sharing the
//!   fleet store on it;
//! * [`harness`] — process, port and polling helpers for tests that run real Envoy.
//! * [`jwt`] — decoding helpers for asserting on token contents.
//! * [`hostile`] — the hostile-input suite, host-agnostic (cases, context, raw HTTP client).
//! * [`identity_scenarios`] — what the origin learns besides the identity headers (the IdP's
//!   token of the user, the identity assertion), shared by both hosts and both origins.
//! * [`slow_body`] — OAuth POSTs whose body comes after the headers (HTTP/1.1 and h2c).
//! * [`soak`] — complete OAuth flows one after the other, every request timed.
//! * [`tool_scenarios`] — per-tool authorization (`tool_rules`): step-up, group rules,
//!   `tools/list` filtering, `Mcp-Method` / `Mcp-Name` against the body; shared by both hosts.

pub mod aws_local;
pub mod browser;
pub mod browser_scenarios;
pub mod cimd_server;
pub mod client_scenarios;
pub mod cognito;
pub mod demo_identity;
pub mod demo_mcp;
pub mod envoy_setup;
pub mod faults;
pub mod fleet;
pub mod harness;
pub mod hostile;
pub mod identity_scenarios;
pub mod journey;
pub mod jwt;
pub mod loopback_client;
pub mod origin;
pub mod scenarios;
pub mod slow_body;
pub mod soak;
pub mod tool_scenarios;
pub mod worker_setup;
