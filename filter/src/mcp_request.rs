//! What an MCP POST asks for: the JSON-RPC method, the name of its target (tool, prompt,
//! resource URI, task) and its `id`, read from the body with a bounded parse — the size is
//! limited by the caller (`max_mcp_body_bytes`), the whole body checked to be UTF-8 (skipped
//! members included) and the nesting lexically (at most [`MAX_DEPTH`] levels: the origin
//! parses what the proxy skips), then `serde_json` reads a small struct that skips every other
//! member without building a tree of it — and checked against the 2026-07-28 revision's
//! `Mcp-Method` / `Mcp-Name` headers when the client sends them.
//!
//! Where the proxy and the MCP server could read one body differently, the request is refused
//! instead: duplicate members (`method`, `params`, `id`, or the name member of `params`: JSON
//! parsers disagree on which copy wins), batches (arrays of messages, removed from MCP in
//! 2025-06-18), anything that is not one JSON-RPC object in UTF-8.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::config::tools::NAMED_METHODS;

/// Deepest nesting of objects and arrays accepted in an MCP body.
pub const MAX_DEPTH: usize = 64;

/// The prefix and suffix of an `Mcp-Name` value carried in base64 (SEP-2243).
const BASE64_PREFIX: &str = "=?base64?";
const BASE64_SUFFIX: &str = "?=";

/// One JSON-RPC message of an MCP POST, as far as authorization needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpMessage {
    /// `None` for a response (the client answering a server request).
    pub method: Option<String>,
    /// The target's name for the methods that name one (`params.name`, `params.uri` or
    /// `params.taskId`, see [`NAMED_METHODS`]).
    pub name: Option<String>,
    /// The request's `id` (a string or a number; `Null` for notifications and responses).
    pub id: Value,
}

/// Why a body cannot be authorized. Each maps to one JSON-RPC error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McpError {
    /// Not JSON, not UTF-8, nested too deeply, or not one object.
    Parse,
    /// A JSON array of messages.
    Batch,
    /// A member of the wrong type, or given twice.
    Invalid(&'static str),
    /// An `Mcp-Method` / `Mcp-Name` header that disagrees with the body (or is given twice,
    /// or cannot be decoded).
    HeaderMismatch(&'static str),
}

impl McpError {
    /// The JSON-RPC error code: -32700 parse error, -32600 invalid request, -32020 header
    /// mismatch (2026-07-28).
    pub fn code(self) -> i64 {
        match self {
            Self::Parse => -32700,
            Self::Batch | Self::Invalid(_) => -32600,
            Self::HeaderMismatch(_) => -32020,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Parse => "Parse error: the body must be one JSON-RPC message in UTF-8 JSON",
            Self::Batch => "Invalid Request: JSON-RPC batches are not accepted",
            Self::Invalid(m) | Self::HeaderMismatch(m) => m,
        }
    }
}

/// A name-like member of `params`: a string, or anything else (kept only as "not a string").
enum Member {
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Member, E> {
                Ok(Member::Text(s.into()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Member, E> {
                Ok(Member::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Member, E> {
                Ok(Member::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Member, E> {
                Ok(Member::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Member, E> {
                Ok(Member::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Member, E> {
                Ok(Member::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Member, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Member::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Member, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Member::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The members of `params` that name a target; every other member is skipped.
#[derive(Default)]
struct Params {
    name: Option<Member>,
    uri: Option<Member>,
    task_id: Option<Member>,
}

/// An object key, borrowed when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) alloc::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(alloc::borrow::Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(alloc::borrow::Cow::Owned(s.into())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("params as an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Params, A::Error> {
                let mut p = Params::default();
                while let Some(Key(k)) = a.next_key::<Key>()? {
                    let slot = match &*k {
                        "name" => &mut p.name,
                        "uri" => &mut p.uri,
                        "taskId" => &mut p.task_id,
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom("duplicate member in params"));
                    }
                    *slot = Some(a.next_value::<Member>()?);
                }
                Ok(p)
            }
        }
        // Only an object: a positional `params` array names nothing the rules could match.
        d.deserialize_map(V)
    }
}

/// A JSON-RPC id: a string or a number (`null` reads as none).
struct Id(Value);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Id, E> {
                Ok(Id(Value::String(s.into())))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Id, E> {
                Ok(Id(Value::from(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Id, E> {
                Ok(Id(Value::from(n)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Id, E> {
                Ok(Id(Value::from(n)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Id, E> {
                Ok(Id(Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

/// The top level: duplicates of these members fail the parse (serde's derive refuses them).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    method: Option<alloc::borrow::Cow<'a, str>>,
    #[serde(default)]
    id: Option<Id>,
    #[serde(default)]
    params: Option<Params>,
}

/// Where the target's name is in `params` for `method`, if it names one.
pub fn name_member(method: &str) -> Option<&'static str> {
    NAMED_METHODS
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, member)| *member)
}

/// Reads the message of an MCP POST body (the caller has checked its size).
pub fn parse(body: &[u8]) -> Result<McpMessage, McpError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'[') => return Err(McpError::Batch),
        Some(b'{') => {}
        _ => return Err(McpError::Parse),
    }
    // All of it: an origin that reads bad bytes leniently could find a member name here that
    // the parse below skipped as something else.
    let text = core::str::from_utf8(body).map_err(|_| McpError::Parse)?;
    if !crate::encoding::json_depth_within(body, MAX_DEPTH) {
        return Err(McpError::Parse);
    }
    let env: Envelope = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            McpError::Invalid("Invalid Request: a member has the wrong type or is given twice")
        } else {
            McpError::Parse
        }
    })?;
    let method = env.method.map(alloc::borrow::Cow::into_owned);
    let params = env.params.unwrap_or_default();
    let name = match method.as_deref().and_then(name_member) {
        None => None,
        Some(member) => {
            let m = match member {
                "uri" => params.uri,
                "taskId" => params.task_id,
                _ => params.name,
            };
            match m {
                None => None,
                Some(Member::Text(s)) => Some(s),
                Some(Member::Other) => {
                    return Err(McpError::Invalid(
                        "Invalid params: the name of the tool, prompt, resource or task must be a string",
                    ))
                }
            }
        }
    };
    Ok(McpMessage {
        method,
        name,
        id: env.id.map_or(Value::Null, |i| i.0),
    })
}

/// Decodes an `Mcp-Name` value: as is, or the base64 form `=?base64?…?=`.
fn decode_name(raw: &str) -> Option<alloc::borrow::Cow<'_, str>> {
    match raw
        .strip_prefix(BASE64_PREFIX)
        .and_then(|r| r.strip_suffix(BASE64_SUFFIX))
    {
        Some(b64) => {
            use base64ct::{Base64, Encoding};
            let bytes: Vec<u8> = Base64::decode_vec(b64).ok()?;
            String::from_utf8(bytes).ok().map(alloc::borrow::Cow::Owned)
        }
        None => Some(alloc::borrow::Cow::Borrowed(raw)),
    }
}

/// Checks the `Mcp-Method` and `Mcp-Name` headers (each at most once) against the body's
/// message. Absent headers are not an error here (clients before 2026-07-28 send none).
pub fn check_headers(headers: &[(&str, &str)], msg: &McpMessage) -> Result<(), McpError> {
    let one = |name: &str| -> Result<Option<&str>, McpError> {
        let mut found = None;
        for (k, v) in headers {
            if k.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(McpError::HeaderMismatch(
                        "Header mismatch: Mcp-Method or Mcp-Name given more than once",
                    ));
                }
                found = Some(*v);
            }
        }
        Ok(found)
    };
    if let Some(m) = one("mcp-method")? {
        if msg.method.as_deref() != Some(m.trim()) {
            return Err(McpError::HeaderMismatch(
                "Header mismatch: the Mcp-Method header does not match the body's method",
            ));
        }
    }
    if let Some(raw) = one("mcp-name")? {
        let decoded = decode_name(raw.trim()).ok_or(McpError::HeaderMismatch(
            "Header mismatch: the Mcp-Name header is not valid base64",
        ))?;
        if msg.name.as_deref() != Some(&*decoded) {
            return Err(McpError::HeaderMismatch(
                "Header mismatch: the Mcp-Name header does not match the body's name",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use serde_json::json;

    fn msg(body: &str) -> Result<McpMessage, McpError> {
        parse(body.as_bytes())
    }

    #[test]
    fn reads_method_name_and_id() {
        let m = msg(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{"x":[1,{"name":"not this"}]},"name":"echo"}}"#).unwrap();
        assert_eq!(m.method.as_deref(), Some("tools/call"));
        assert_eq!(m.name.as_deref(), Some("echo"));
        assert_eq!(m.id, json!(7));
        let m = msg(r#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x","name":"ignored"}}"#).unwrap();
        assert_eq!(m.name.as_deref(), Some("file:///x"));
        assert_eq!(m.id, json!("a"));
        let m = msg(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(
            (m.method.as_deref(), m.name, m.id),
            (Some("notifications/initialized"), None, Value::Null)
        );
        // Escapes are read as the MCP server reads them.
        let m = msg(r#"{"m\u0065thod":"tools/call","params":{"n\u0061me":"adm\u0069n"},"id":1}"#)
            .unwrap();
        assert_eq!(m.name.as_deref(), Some("admin"));
        // A response of the client (no method).
        let m = msg(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap();
        assert_eq!(m.method, None);
        // tools/list names nothing, even with a `name` in its params.
        let m = msg(r#"{"id":1,"method":"tools/list","params":{"name":5}}"#).unwrap();
        assert_eq!(m.name, None);
    }

    #[test]
    fn refuses_what_a_server_could_read_differently() {
        assert_eq!(msg("[{\"method\":\"ping\"}]"), Err(McpError::Batch));
        assert_eq!(msg(" \n[]"), Err(McpError::Batch));
        assert_eq!(msg(""), Err(McpError::Parse));
        assert_eq!(msg("\"tools/call\""), Err(McpError::Parse));
        assert_eq!(msg("{\"method\":"), Err(McpError::Parse));
        assert_eq!(msg("\u{feff}{}"), Err(McpError::Parse));
        assert!(matches!(
            msg(r#"{"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#),
            Err(McpError::Invalid(_))
        ));
        assert!(matches!(
            msg(r#"{"method":"tools/call","params":{"name":"ok","name":"admin"}}"#),
            Err(McpError::Invalid(_))
        ));
        assert!(matches!(
            msg(r#"{"method":"tools/call","params":{"name":"ok","n\u0061me":"admin"}}"#),
            Err(McpError::Invalid(_))
        ));
        assert!(matches!(
            msg(r#"{"method":"tools/call","params":["admin"]}"#),
            Err(McpError::Invalid(_))
        ));
        assert!(matches!(
            msg(r#"{"method":"tools/call","params":{"name":["admin"]}}"#),
            Err(McpError::Invalid(_))
        ));
        assert!(matches!(msg(r#"{"method":7}"#), Err(McpError::Invalid(_))));
        assert!(matches!(
            msg(r#"{"method":"ping","id":{}}"#),
            Err(McpError::Invalid(_))
        ));
        // `levels` of nesting in all: the message, `params`, then arrays in `member`.
        let nested = |member: &str, levels: usize| {
            let arrays = levels - 2;
            format!(
                "{{\"method\":\"tools/call\",\"params\":{{\"{member}\":{}{}}}}}",
                "[".repeat(arrays),
                "]".repeat(arrays)
            )
        };
        assert!(msg(&nested("arguments", MAX_DEPTH)).is_ok());
        assert_eq!(
            msg(&nested("arguments", MAX_DEPTH + 1)),
            Err(McpError::Parse)
        );
        assert_eq!(
            msg(&nested("name", MAX_DEPTH)),
            Err(McpError::Invalid(
                "Invalid params: the name of the tool, prompt, resource or task must be a string"
            ))
        );
        assert_eq!(msg(&nested("name", MAX_DEPTH + 1)), Err(McpError::Parse));
        let deep_sibling = format!(
            "{{\"method\":\"ping\",\"x\":{}{}}}",
            "{\"a\":".repeat(MAX_DEPTH),
            "}".repeat(MAX_DEPTH)
        );
        assert_eq!(msg(&deep_sibling), Err(McpError::Parse));
        let bad_utf8 = b"{\"method\":\"tools/call\",\"params\":{\"name\":\"\xff\"}}";
        assert_eq!(parse(bad_utf8), Err(McpError::Parse));
        // Also where the parse only skips: a lenient decoder could take `\xc0"` for one
        // character, and read the rest of the message differently.
        let skipped =
            b"{\"method\":\"tools/call\",\"params\":{\"name\":\"whoami\"},\"x\":\"\xc0\"}";
        assert_eq!(parse(skipped), Err(McpError::Parse));
    }

    #[test]
    fn headers_must_agree_with_the_body() {
        let m = msg(r#"{"id":1,"method":"tools/call","params":{"name":"café"}}"#).unwrap();
        assert_eq!(check_headers(&[], &m), Ok(()));
        assert_eq!(
            check_headers(
                &[
                    ("mcp-method", "tools/call"),
                    ("Mcp-Name", "=?base64?Y2Fmw6k=?=")
                ],
                &m
            ),
            Ok(())
        );
        assert_eq!(check_headers(&[("mcp-method", "tools/call")], &m), Ok(()));
        for headers in [
            &[("mcp-method", "tools/list")][..],
            &[("mcp-name", "whoami")][..],
            &[("mcp-name", "=?base64?not base64?=")][..],
            &[("mcp-method", "tools/call"), ("mcp-method", "tools/call")][..],
        ] {
            let e = check_headers(headers, &m).unwrap_err();
            assert_eq!(e.code(), -32020, "{headers:?}");
        }
        // A header naming a target the body does not have.
        let ping = msg(r#"{"id":1,"method":"ping"}"#).unwrap();
        assert!(check_headers(&[("mcp-name", "x")], &ping).is_err());
        let response = msg(r#"{"id":1,"result":{}}"#).unwrap();
        assert!(check_headers(&[("mcp-method", "ping")], &response).is_err());
    }
}
