//! `tools/list` answers cut down to the tools the caller may call (`filter_tools_list`).
//!
//! The guard hands a forwarded `tools/list` request a [`ListFilter`]
//! ([`crate::Forward::list_filter`]): the request's `id` and, per rule that can match a
//! `tools/call`, whether this caller passes it. Hosts only move bytes through it:
//!
//! * [`ListFilter::body_kind`] says, from the answer's status and headers, what to do with
//!   the body; the hosts drop `Content-Length` (and what [`ListFilter::replaced_headers`]
//!   says) when it is not [`BodyKind::Untouched`];
//! * a JSON answer is buffered (at most [`MAX_ANSWER_BYTES`]) and rewritten whole by
//!   [`ListFilter::json`];
//! * an SSE answer goes through an [`SseFilter`] chunk by chunk: events pass as soon as they
//!   are complete, only the event carrying the answer is rewritten, and once it has passed
//!   the rest of the stream is not looked at — MCP streams may stay open for long.
//!
//! The rule for one message is [`ListFilter::message`]: a JSON-RPC response with the
//! request's `id` and a `result.tools` list keeps the tools whose `name` the caller may call
//! (`tools/call` of that name passes the rules); tools without a string name are dropped.
//! Anything else passes unchanged. What cannot be read (an answer over the limit, a
//! compressed or malformed body) is replaced by a JSON-RPC error: fail closed.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::glob::Pattern;

/// Largest `tools/list` answer (a JSON body, or one SSE event) the proxy rewrites. Envoy's
/// default buffer limit per stream is 1 MiB; this stays below it.
pub const MAX_ANSWER_BYTES: usize = 512 * 1024;

/// What the guard knows of a forwarded `tools/list` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListFilter {
    /// The request's `id`: only the answer to it is rewritten.
    pub(crate) id: Value,
    /// The rules that can match `tools/call` (their `name` pattern, `None`: any name), in
    /// order, each with whether this caller passes it.
    pub(crate) rules: Vec<(Option<Pattern>, bool)>,
    /// Whether a tool no rule matches may be called.
    pub(crate) default_allow: bool,
}

/// What a host does with the body of the answer to a filtered request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// Pass it as it comes (not a successful JSON or SSE answer).
    Untouched,
    /// Buffer it (at most [`MAX_ANSWER_BYTES`]), then send [`ListFilter::json`] of it.
    Json,
    /// Pass it through an [`SseFilter`], chunk by chunk.
    Sse,
    /// Drop it and send [`ListFilter::unreadable`] instead, with the headers of
    /// [`ListFilter::replaced_headers`] (a compressed answer the proxy cannot read).
    Replace,
}

fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn error_answer(id: &Value, code: i64, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    }))
    .unwrap_or_default()
}

impl ListFilter {
    /// Whether the caller may call the tool `name` (the rules' verdict for `tools/call`).
    pub fn allows(&self, name: &str) -> bool {
        self.rules
            .iter()
            .find(|(pattern, _)| pattern.as_ref().is_none_or(|p| p.matches(name)))
            .map_or(self.default_allow, |(_, pass)| *pass)
    }

    /// What to do with the answer's body, from its status and headers (names lower case).
    pub fn body_kind(&self, status: u16, headers: &[(&str, &str)]) -> BodyKind {
        if status != 200 {
            return BodyKind::Untouched;
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        let kind = match essence(get("content-type").unwrap_or("")).as_str() {
            "application/json" => BodyKind::Json,
            "text/event-stream" => BodyKind::Sse,
            _ => return BodyKind::Untouched,
        };
        let encoded = get("content-encoding")
            .is_some_and(|e| !e.trim().is_empty() && !e.trim().eq_ignore_ascii_case("identity"));
        if encoded {
            BodyKind::Replace
        } else {
            kind
        }
    }

    /// For [`BodyKind::Replace`]: the answer's headers to set; `Content-Encoding` and
    /// `Content-Length` go.
    pub fn replaced_headers(&self) -> [(&'static str, &'static str); 1] {
        [("content-type", "application/json")]
    }

    /// The answer sent in place of one the proxy could not read (JSON-RPC internal error).
    pub fn unreadable(&self) -> Vec<u8> {
        error_answer(
            &self.id,
            -32603,
            "Internal error: the gateway could not read the tools/list answer to filter it",
        )
    }

    /// The answer sent in place of one over [`MAX_ANSWER_BYTES`].
    pub fn too_large(&self) -> Vec<u8> {
        error_answer(
            &self.id,
            -32603,
            "Internal error: the tools/list answer is too large for the gateway to filter",
        )
    }

    /// A whole JSON answer, rewritten: the filtered message, or the message as it was when it
    /// is not the answer to this request; an unreadable body is replaced (fail closed).
    pub fn json(&self, body: &[u8]) -> Vec<u8> {
        if body.len() > MAX_ANSWER_BYTES {
            return self.too_large();
        }
        match self.message(body) {
            Rewrite::Changed(b) => b,
            Rewrite::Unchanged => body.to_vec(),
            Rewrite::NotJson | Rewrite::Unreadable => self.unreadable(),
        }
    }

    /// The rule for one JSON-RPC message (an SSE event's data, or a JSON body). No tree of the
    /// message is built: the tools are found as spans of the text, and the answer is the same
    /// text without the spans of the tools the caller may not call.
    pub fn message(&self, msg: &[u8]) -> Rewrite {
        if !crate::encoding::json_depth_within(msg, 128) {
            return Rewrite::NotJson;
        }
        // Duplicate members fail the parse (a client might read the other copy), and so does
        // JSON that is not one object: both fail closed. Only what is not JSON at all passes.
        if msg.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            // A batch (serde would read an array into the struct by position).
            return Rewrite::Unreadable;
        }
        let envelope = match serde_json::from_slice::<Envelope>(msg) {
            Ok(e) => e,
            Err(e) if e.is_data() => return Rewrite::Unreadable,
            Err(_) => return Rewrite::NotJson,
        };
        // The same id, also when a number is written another way (`1.0` for `1`).
        let ours = envelope
            .id
            .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
            .is_some_and(|id| {
                id == self.id
                    || matches!((id.as_f64(), self.id.as_f64()), (Some(a), Some(b)) if a == b)
            });
        let tools = match envelope.result.filter(|_| ours) {
            None | Some(Tools::Absent) => return Rewrite::Unchanged,
            Some(Tools::Unreadable) => return Rewrite::Unreadable,
            Some(Tools::List(tools)) if tools.is_empty() => return Rewrite::Unchanged,
            Some(Tools::List(tools)) => tools,
        };
        let keep = |raw: &RawValue| {
            serde_json::from_str::<ToolName>(raw.get())
                .ok()
                .and_then(|t| t.name)
                .is_some_and(|n| self.allows(&n))
        };
        let kept: Vec<&RawValue> = tools.iter().copied().filter(|t| keep(t)).collect();
        if kept.len() == tools.len() {
            return Rewrite::Unchanged;
        }
        // Where each tool is in `msg` (the raw values borrow from it).
        let base = msg.as_ptr() as usize;
        let span = |raw: &RawValue| {
            let start = (raw.get().as_ptr() as usize).wrapping_sub(base);
            (start, start + raw.get().len())
        };
        let (Some(first), Some(last)) = (tools.first(), tools.last()) else {
            return Rewrite::Unchanged;
        };
        let (start, _) = span(first);
        let (_, end) = span(last);
        let (Some(head), Some(tail)) = (msg.get(..start), msg.get(end..)) else {
            return Rewrite::Unreadable;
        };
        let mut out = Vec::with_capacity(msg.len());
        out.extend_from_slice(head);
        for (i, t) in kept.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(t.get().as_bytes());
        }
        out.extend_from_slice(tail);
        Rewrite::Changed(out)
    }

    /// A rewriter for an SSE answer.
    pub fn sse(&self) -> SseFilter {
        SseFilter {
            filter: self.clone(),
            pending: Vec::new(),
            scanned: 0,
            line_start: true,
            state: SseState::Looking,
        }
    }
}

/// The outcome of [`ListFilter::message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rewrite {
    Changed(Vec<u8>),
    /// Not the answer to the filtered request, or nothing in it to hide.
    Unchanged,
    /// Not JSON (or nested beyond reason).
    NotJson,
    /// JSON the filter cannot read safely (duplicate members, not one object), or the answer
    /// to the filtered request with tools it cannot read: it must not pass.
    Unreadable,
}

/// A JSON-RPC message, as far as the filter reads it: one pass over the text, the tools
/// taken as they are written (their spans), whatever the message turns out to be.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<Tools<'a>>,
}

/// The `tools` of a message's `result`. Reading it never fails the message: what it says
/// matters only for the answer to the filtered request, known once `id` is read too.
enum Tools<'a> {
    /// Each tool as its text.
    List(Vec<&'a RawValue>),
    /// A result without `tools`.
    Absent,
    /// A result that is not an object, `tools` that is not an array or is given twice.
    Unreadable,
}

impl<'de: 'a, 'a> Deserialize<'de> for Tools<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::mcp_request::Key;
        use core::marker::PhantomData;
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};

        /// `result.tools`: an array of tools, or anything else (unreadable).
        struct List<'a>(Option<Vec<&'a RawValue>>);
        impl<'de: 'a, 'a> Deserialize<'de> for List<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                    type Value = List<'a>;
                    fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                        f.write_str("the tools")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<List<'a>, A::Error> {
                        let mut tools = Vec::new();
                        while let Some(t) = a.next_element::<&'a RawValue>()? {
                            tools.push(t);
                        }
                        Ok(List(Some(tools)))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<List<'a>, A::Error> {
                        while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                        Ok(List(None))
                    }
                    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<List<'a>, E> {
                        Ok(List(None))
                    }
                    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<List<'a>, E> {
                        Ok(List(None))
                    }
                    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<List<'a>, E> {
                        Ok(List(None))
                    }
                    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<List<'a>, E> {
                        Ok(List(None))
                    }
                    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<List<'a>, E> {
                        Ok(List(None))
                    }
                    /// `null`: no tools (as an empty list).
                    fn visit_unit<E: serde::de::Error>(self) -> Result<List<'a>, E> {
                        Ok(List(Some(Vec::new())))
                    }
                }
                d.deserialize_any(V(PhantomData))
            }
        }

        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Tools<'a>;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("a result")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Tools<'a>, A::Error> {
                let mut tools: Option<Option<Vec<&'a RawValue>>> = None;
                let mut twice = false;
                while let Some(Key(key)) = a.next_key::<Key>()? {
                    if key != "tools" {
                        a.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    let list = a.next_value::<List>()?.0;
                    twice |= tools.is_some();
                    tools = Some(list);
                }
                Ok(match tools {
                    _ if twice => Tools::Unreadable,
                    None => Tools::Absent,
                    Some(None) => Tools::Unreadable,
                    Some(Some(list)) => Tools::List(list),
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Tools<'a>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Tools::Unreadable)
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Tools<'a>, E> {
                Ok(Tools::Unreadable)
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Tools<'a>, E> {
                Ok(Tools::Unreadable)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Tools<'a>, E> {
                Ok(Tools::Unreadable)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Tools<'a>, E> {
                Ok(Tools::Unreadable)
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Tools<'a>, E> {
                Ok(Tools::Unreadable)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// One tool, as far as the filter reads it.
#[derive(Deserialize)]
struct ToolName<'a> {
    #[serde(borrow, default)]
    name: Option<alloc::borrow::Cow<'a, str>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SseState {
    /// Events are checked until the answer has passed.
    Looking,
    /// An event grew beyond the limit: its bytes are dropped until it ends.
    Discarding,
    /// The answer has passed: the rest streams through untouched.
    Done,
}

/// Rewrites an SSE stream as it arrives (see the module documentation).
#[derive(Clone, Debug)]
pub struct SseFilter {
    filter: ListFilter,
    /// Bytes of the event being received (complete lines and a partial one).
    pending: Vec<u8>,
    /// How far `pending` was searched for the end of the event, and whether that position
    /// starts a line (so a long line arriving in small chunks is scanned once).
    scanned: usize,
    line_start: bool,
    state: SseState,
}

/// The lines of one complete event (terminators removed).
fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = event;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
            .unwrap_or(rest.len());
        let line = rest.get(..end).unwrap_or_default();
        let skip = match (rest.get(end), rest.get(end + 1)) {
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        rest = rest.get(end + skip..).unwrap_or_default();
        Some(line)
    })
}

impl SseFilter {
    /// Where the first empty line (the end of an event) ends in `pending`, if it has come.
    /// Lines end in `\r\n`, `\n` or `\r`; a `\r` that ends `pending` may still become `\r\n`.
    fn event_end(&mut self) -> Option<usize> {
        let mut i = self.scanned;
        let mut line_start = self.line_start;
        let found = loop {
            let Some(&b) = self.pending.get(i) else {
                break None;
            };
            let eol = match b {
                b'\n' => Some(i + 1),
                b'\r' => match self.pending.get(i + 1) {
                    Some(b'\n') => Some(i + 2),
                    Some(_) => Some(i + 1),
                    None => break None,
                },
                _ => None,
            };
            match eol {
                Some(next) if line_start => break Some(next),
                Some(next) => {
                    line_start = true;
                    i = next;
                }
                None => {
                    line_start = false;
                    i += 1;
                }
            }
        };
        match found {
            Some(_) => {
                self.scanned = 0;
                self.line_start = true;
            }
            None => {
                self.scanned = i;
                self.line_start = line_start;
            }
        }
        found
    }

    /// Takes the next chunk of the stream; appends to `out` what may be sent now.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.state == SseState::Done {
            out.extend_from_slice(chunk);
            return;
        }
        self.pending.extend_from_slice(chunk);
        while self.state != SseState::Done {
            let Some(end) = self.event_end() else {
                break;
            };
            let event: Vec<u8> = self.pending.drain(..end).collect();
            if self.state == SseState::Discarding {
                // The oversized event ends here; its replacement was sent already.
                self.state = SseState::Done;
            } else {
                self.event(&event, out);
            }
        }
        if self.state == SseState::Done {
            out.append(&mut self.pending);
        } else if self.pending.len() > MAX_ANSWER_BYTES {
            // Drop what was searched; a trailing `\r` (not searched yet) and the line state stay.
            self.pending.drain(..self.scanned);
            self.scanned = 0;
            if self.state == SseState::Looking {
                self.state = SseState::Discarding;
                out.extend_from_slice(b"event: message\ndata: ");
                out.extend_from_slice(&self.filter.too_large());
                out.extend_from_slice(b"\n\n");
            }
        }
    }

    /// The stream ended: appends what is left (an unfinished last event is checked like a
    /// complete one, since some clients dispatch it).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let rest = core::mem::take(&mut self.pending);
        match self.state {
            SseState::Looking if !rest.is_empty() => self.event(&rest, out),
            SseState::Looking | SseState::Done => out.extend_from_slice(&rest),
            SseState::Discarding => {}
        }
        self.state = SseState::Done;
    }

    /// One complete event: rewritten when its data is the answer, else passed as it came.
    fn event(&mut self, event: &[u8], out: &mut Vec<u8>) {
        let mut data: Vec<u8> = Vec::new();
        let mut has_data = false;
        for line in lines(event) {
            if let Some(value) = line.strip_prefix(b"data") {
                let value = match value {
                    [] => &[][..],
                    [b':', b' ', rest @ ..] | [b':', rest @ ..] => rest,
                    // `database: …` is another field.
                    _ => continue,
                };
                if has_data {
                    data.push(b'\n');
                }
                data.extend_from_slice(value);
                has_data = true;
            }
        }
        if !has_data {
            out.extend_from_slice(event);
            return;
        }
        let new = match self.filter.message(&data) {
            // Data that is not JSON cannot be an answer MCP clients read; pass it.
            Rewrite::Unchanged | Rewrite::NotJson => {
                out.extend_from_slice(event);
                return;
            }
            Rewrite::Changed(b) => b,
            Rewrite::Unreadable => self.filter.unreadable(),
        };
        // The other fields as they were, then the new data (its line breaks, where the data
        // lines were joined, as data lines again).
        for line in lines(event) {
            if line.is_empty() || line.starts_with(b"data:") || line == b"data" {
                continue;
            }
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        for line in new.split(|b| *b == b'\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.push(b'\n');
        self.state = SseState::Done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;
    use serde_json::json;

    /// `admin_*` refused, `echo` refused by default, anything else allowed (`*` rule).
    fn filter() -> ListFilter {
        ListFilter {
            id: json!(2),
            rules: vec![
                (Some("admin_*".into()), false),
                (Some("whoami".into()), true),
                (Some("count".into()), true),
            ],
            default_allow: false,
        }
    }

    fn answer(id: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [
            {"name": "whoami", "inputSchema": {"type": "object"}},
            {"name": "admin_delete", "description": "data: nope"},
            {"name": "echo"},
            {"name": "count"},
            {"description": "no name"},
        ], "nextCursor": "c"}})
    }

    fn names(v: &Value) -> Vec<&str> {
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_json_answer_keeps_only_callable_tools() {
        let f = filter();
        let out: Value =
            serde_json::from_slice(&f.json(answer(json!(2)).to_string().as_bytes())).unwrap();
        assert_eq!(names(&out), ["whoami", "count"]);
        assert_eq!(out["result"]["nextCursor"], "c");
        // The id written as a float is the same request.
        let float = answer(json!(2.0)).to_string();
        let out: Value = serde_json::from_slice(&f.json(float.as_bytes())).unwrap();
        assert_eq!(names(&out), ["whoami", "count"]);
        // Another id, an error answer: unchanged.
        let other = answer(json!("2")).to_string();
        assert_eq!(f.json(other.as_bytes()), other.as_bytes());
        let err =
            json!({"jsonrpc": "2.0", "id": 2, "error": {"code": -1, "message": "x"}}).to_string();
        assert_eq!(f.json(err.as_bytes()), err.as_bytes());
        // Unreadable or too large: replaced by an error for the request.
        for bad in [
            b"\x1f\x8b\x08gzip".to_vec(),
            vec![b' '; MAX_ANSWER_BYTES + 1],
        ] {
            let out: Value = serde_json::from_slice(&f.json(&bad)).unwrap();
            assert_eq!(out["id"], 2);
            assert_eq!(out["error"]["code"], -32603);
        }
    }

    #[test]
    fn answers_that_cannot_be_read_safely_do_not_pass() {
        let f = filter();
        for bad in [
            r#"{"jsonrpc":"2.0","id":2,"result":{"tools":5}}"#,
            r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[],"tools":[{"name":"admin_x"}]}}"#,
            r#"{"jsonrpc":"2.0","id":3,"id":2,"result":{"tools":[{"name":"admin_x"}]}}"#,
            r#"[{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"admin_x"}]}}]"#,
        ] {
            let out = String::from_utf8(f.json(bad.as_bytes())).unwrap();
            assert!(!out.contains("admin_x"), "{bad}: {out}");
            assert!(out.contains("-32603"), "{bad}: {out}");
            let sse = through(&format!("data: {bad}\n\ndata: after\n\n"), 7);
            assert!(!sse.contains("admin_x"), "{bad}: {sse}");
            assert!(sse.contains("-32603"), "{bad}: {sse}");
        }
        // Tools without a string name, or given a name twice, are dropped.
        let odd = r#"{"id":2,"result":{"tools":[{"name":"whoami"},{"name":"count","name":"admin_x"},7,{"name":null}]}}"#;
        let v: Value = serde_json::from_slice(&f.json(odd.as_bytes())).unwrap();
        assert_eq!(names(&v), ["whoami"]);
        // Formatting outside the removed tools is kept byte for byte.
        let spaced = "{ \"id\" : 2, \"result\": { \"tools\" : [ {\"name\":\"admin_y\"} , {\"name\": \"count\"} ] , \"x\":1 } }";
        let out = String::from_utf8(f.json(spaced.as_bytes())).unwrap();
        assert_eq!(
            out,
            "{ \"id\" : 2, \"result\": { \"tools\" : [ {\"name\": \"count\"} ] , \"x\":1 } }"
        );
        // No tools to hide: the answer passes as it is.
        for none in [
            r#"{"id":2,"result":{"tools":null}}"#,
            r#"{"id":2,"result":{"tools":[]}}"#,
            r#"{"id":2,"result":{"nextCursor":"c"}}"#,
        ] {
            assert_eq!(f.json(none.as_bytes()), none.as_bytes(), "{none}");
        }
        // Another request's answer passes as it is, whatever its result holds.
        for other in [
            r#"{"id":3,"result":{"tools":5}}"#,
            r#"{"id":3,"result":{"tools":[],"tools":[{"name":"admin_x"}]}}"#,
            r#"{"id":3,"result":"text"}"#,
            r#"{"id":3,"result":[1,{"tools":[{"name":"admin_x"}]}]}"#,
        ] {
            assert_eq!(f.json(other.as_bytes()), other.as_bytes(), "{other}");
        }
        // Data that is not JSON at all passes (no client reads it as an answer).
        assert_eq!(through("data: hello\n\n", 3), "data: hello\n\n");
    }

    #[test]
    fn body_kinds() {
        let f = filter();
        assert_eq!(
            f.body_kind(200, &[("content-type", "application/json")]),
            BodyKind::Json
        );
        assert_eq!(
            f.body_kind(200, &[("Content-Type", "text/event-stream; charset=utf-8")]),
            BodyKind::Sse
        );
        assert_eq!(
            f.body_kind(
                200,
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip")
                ]
            ),
            BodyKind::Replace
        );
        assert_eq!(
            f.body_kind(202, &[("content-type", "application/json")]),
            BodyKind::Untouched
        );
        assert_eq!(
            f.body_kind(200, &[("content-type", "text/plain")]),
            BodyKind::Untouched
        );
    }

    /// Runs `stream` through an SSE filter cut into chunks of `size` bytes.
    fn through(stream: &str, size: usize) -> String {
        let mut f = filter().sse();
        let mut out = Vec::new();
        for chunk in stream.as_bytes().chunks(size) {
            f.push(chunk, &mut out);
        }
        f.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_sse_answer_is_rewritten_in_any_chunking() {
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}});
        let ans = answer(json!(2)).to_string();
        // The answer split over two data lines, CRLF endings, an id field, a comment.
        // Split where a line break is JSON whitespace (data lines join with `\n`).
        let (a, b) = ans.split_at(ans.find("\"result\"").unwrap());
        let stream = format!(
            ": hello\r\n\r\nevent: message\r\ndata: {progress}\r\n\r\nid: 9\r\nevent: message\r\ndata: {a}\r\ndata:{b}\r\n\r\nevent: message\r\ndata: {{\"after\":true}}\r\n\r\n"
        );
        for size in [1, 2, 3, 7, 64, stream.len()] {
            let out = through(&stream, size);
            assert!(
                out.starts_with(&format!(
                    ": hello\r\n\r\nevent: message\r\ndata: {progress}\r\n\r\n"
                )),
                "{size}: {out:?}"
            );
            assert!(
                out.contains("id: 9\nevent: message\ndata: {"),
                "{size}: {out:?}"
            );
            // The answer's data lines, joined again as a client joins them.
            let event = out.split("id: 9\nevent: message\n").nth(1).unwrap();
            let event = event.split("\n\n").next().unwrap();
            let data: Vec<&str> = event
                .lines()
                .map(|l| l.strip_prefix("data: ").unwrap())
                .collect();
            let v: Value = serde_json::from_str(&data.join("\n")).unwrap();
            assert_eq!(names(&v), ["whoami", "count"], "{size}");
            assert!(
                out.ends_with("\n\nevent: message\r\ndata: {\"after\":true}\r\n\r\n"),
                "{size}: {out}"
            );
            assert!(!out.contains("admin_delete"));
        }
    }

    #[test]
    fn the_last_event_without_its_blank_line_is_still_filtered() {
        let out = through(&format!("data: {}", answer(json!(2))), 5);
        assert!(!out.contains("admin_delete"), "{out}");
        assert!(out.contains("whoami"));
    }

    #[test]
    fn after_the_answer_the_stream_passes_through_unbuffered() {
        let mut f = filter().sse();
        let mut out = Vec::new();
        f.push(
            format!("data: {}\n\n", answer(json!(2))).as_bytes(),
            &mut out,
        );
        out.clear();
        f.push(b"data: {\"partial", &mut out);
        assert_eq!(out, b"data: {\"partial", "not held back");
    }

    #[test]
    fn an_oversized_event_is_replaced_by_an_error() {
        let mut f = filter().sse();
        let mut out = Vec::new();
        f.push(b"data: {\"id\":2,\"result\":{\"tools\":[", &mut out);
        let filler = vec![b' '; 64 * 1024];
        for _ in 0..9 {
            f.push(&filler, &mut out);
        }
        f.push(
            b"{\"name\":\"admin_x\"}]}}\n\ndata: {\"next\":1}\n\n",
            &mut out,
        );
        f.finish(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("admin_x"));
        assert!(text.contains("-32603"), "{text}");
        assert!(
            text.ends_with("data: {\"next\":1}\n\n"),
            "{}",
            &text[text.len() - 40..]
        );
        assert!(text.len() < 1024);
    }

    #[test]
    fn allows_follows_the_first_matching_rule_then_the_default() {
        let f = filter();
        assert!(!f.allows("admin_x"));
        assert!(f.allows("whoami"));
        assert!(!f.allows("echo"));
        let open = ListFilter {
            id: json!(1),
            rules: vec![(None, true)],
            default_allow: false,
        };
        assert!(open.allows("anything"));
        let _ = "x".to_string();
    }
}
