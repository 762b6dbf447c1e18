//! The DynamoDB requests that carry out the core's store operations, and how their answers
//! become the core's [`Reply`]. Pure functions: no I/O, unit-tested on their own.
//!
//! Table: partition key `pk` (string), sort key `sk` (string), TTL attribute `exp` (seconds
//! since the epoch). Keys are never stored: an item's `pk` is the key's entry id (128 bits
//! of SHA-256, hex: [`crate::store::entry_id`]).
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | code / family / revoked token | entry id | `e` | `k` (`u` used, `g` generation, `r` revoked), `g` (generation), `exp` |
//! | rate-limit counters | entry id of the bucket key | `b` | `w<window>` (count per window, the last two kept), `exp` |
//! | revocation feed | `revocations` | `<ms, 16 digits>#<entry id>` | `exp` |
//!
//! Every operation is one round trip: a conditional write (`PutIfAbsent`, `Advance`), an
//! atomic counter (`Take`, see [`Window`]), a two-item transaction (`Revoke`: the entry and
//! its feed item). `IsRevoked` never comes here: it reads the local replica of the feed.

use mcpgate_filter::store::Window;
use mcpgate_filter::{Reply, StoreOp};
use serde_json::{json, Value};

use crate::store::entry_id;

/// The feed's partition key.
pub const FEED_PK: &str = "revocations";

/// One DynamoDB call: its `X-Amz-Target` operation, JSON body, and how to read the answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub operation: &'static str,
    pub body: Vec<u8>,
    pub expect: Expect,
}

/// How an answer becomes a reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// A conditional write: success → `true`, a failed condition → `false`.
    Conditional,
    /// A counter update: the window rule decides; a refused request's count is taken back
    /// with `refund` (sent without waiting for it).
    Window {
        previous: String,
        current: String,
        capacity: u32,
        period: u64,
        now: u64,
        refund: Box<Call>,
    },
    /// Nothing to read (a refund).
    Ignore,
}

/// What an answer decided: the reply to resume with, and a call to send without waiting.
#[derive(Debug, PartialEq)]
pub struct Decision {
    pub reply: Reply,
    pub follow_up: Option<Call>,
}

fn call(operation: &'static str, body: &Value, expect: Expect) -> Call {
    Call {
        operation,
        body: body.to_string().into_bytes(),
        expect,
    }
}

fn n(v: u64) -> Value {
    json!({ "N": v.to_string() })
}

fn s(v: &str) -> Value {
    json!({ "S": v })
}

/// The call for `op` at `now` (seconds; `now_ms` orders the feed). `None` for `IsRevoked`,
/// which the replica answers.
pub fn for_op(table: &str, op: &StoreOp, now: u64, now_ms: u64) -> Option<Call> {
    let id = entry_id(op.key());
    let key = json!({"pk": s(&id), "sk": s("e")});
    match op {
        StoreOp::IsRevoked { .. } => None,
        StoreOp::PutIfAbsent { ttl, .. } => Some(call(
            "PutItem",
            &json!({
                "TableName": table,
                "Item": {"pk": s(&id), "sk": s("e"), "k": s("u"), "exp": n(now.saturating_add(*ttl))},
                "ConditionExpression": "attribute_not_exists(pk) OR #e <= :now",
                "ExpressionAttributeNames": {"#e": "exp"},
                "ExpressionAttributeValues": {":now": n(now)},
            }),
            Expect::Conditional,
        )),
        StoreOp::Advance { from, ttl, .. } => Some(call(
            "UpdateItem",
            &json!({
                "TableName": table,
                "Key": key,
                "UpdateExpression": "SET #k = :g, #g = :next, #e = :exp",
                // No live record (never rotated, lost, expired) or the generation presented.
                "ConditionExpression":
                    "attribute_not_exists(pk) OR #e <= :now OR (#k = :g AND #g = :from)",
                "ExpressionAttributeNames": {"#k": "k", "#g": "g", "#e": "exp"},
                "ExpressionAttributeValues": {
                    ":g": s("g"), ":from": n(*from), ":next": n(from.saturating_add(1)),
                    ":now": n(now), ":exp": n(now.saturating_add(*ttl)),
                },
            }),
            Expect::Conditional,
        )),
        StoreOp::Revoke { ttl, .. } => {
            // The core revokes families for the refresh-token lifetime, which is also what
            // their generation records live: the revocation's expiry is the later one.
            let exp = now.saturating_add(*ttl);
            Some(call(
                "TransactWriteItems",
                &json!({
                    "TransactItems": [
                        {"Update": {
                            "TableName": table,
                            "Key": key,
                            "UpdateExpression": "SET #k = :r, #e = :exp REMOVE #g",
                            "ExpressionAttributeNames": {"#k": "k", "#g": "g", "#e": "exp"},
                            "ExpressionAttributeValues": {":r": s("r"), ":exp": n(exp)},
                        }},
                        {"Put": {
                            "TableName": table,
                            "Item": {"pk": s(FEED_PK), "sk": s(&feed_sort_key(now_ms, &id)), "exp": n(exp)},
                        }},
                    ],
                }),
                Expect::Conditional,
            ))
        }
        StoreOp::Take {
            capacity, period, ..
        } => {
            let period = (*period).max(1);
            let window = Window::index(now, period);
            let current = format!("w{window}");
            let previous = format!("w{}", window.saturating_sub(1));
            let bucket = json!({"pk": s(&id), "sk": s("b")});
            let (names, update) = if window >= 2 {
                (
                    json!({"#c": current, "#e": "exp", "#o": format!("w{}", window - 2)}),
                    "ADD #c :one SET #e = :exp REMOVE #o",
                )
            } else {
                (
                    json!({"#c": current, "#e": "exp"}),
                    "ADD #c :one SET #e = :exp",
                )
            };
            let refund = call(
                "UpdateItem",
                &json!({
                    "TableName": table,
                    "Key": bucket,
                    "UpdateExpression": "ADD #c :minus",
                    "ExpressionAttributeNames": {"#c": current},
                    "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                }),
                Expect::Ignore,
            );
            Some(call(
                "UpdateItem",
                &json!({
                    "TableName": table,
                    "Key": bucket,
                    "UpdateExpression": update,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {
                        ":one": n(1),
                        ":exp": n(window.saturating_add(2).saturating_mul(period)),
                    },
                    "ReturnValues": "ALL_NEW",
                }),
                Expect::Window {
                    previous,
                    current,
                    capacity: *capacity,
                    period,
                    now,
                    refund: Box::new(refund),
                },
            ))
        }
    }
}

/// The feed item's sort key: the revoking process's clock in milliseconds, then the id.
pub fn feed_sort_key(now_ms: u64, id: &str) -> String {
    format!("{now_ms:016}#{id}")
}

/// The AWS error name of an answer (`ConditionalCheckFailedException`), from `__type`.
pub fn error_type(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let t = v.get("__type")?.as_str()?;
    Some(t.rsplit('#').next().unwrap_or(t).to_string())
}

/// A transaction cancelled only because a condition failed.
fn condition_cancelled(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let reasons = v
        .get("CancellationReasons")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    reasons
        .iter()
        .any(|r| r.get("Code").and_then(Value::as_str) == Some("ConditionalCheckFailed"))
        && reasons.iter().all(|r| {
            matches!(
                r.get("Code").and_then(Value::as_str),
                None | Some("None" | "ConditionalCheckFailed")
            )
        })
}

fn count(attributes: &Value, name: &str) -> u64 {
    attributes
        .get(name)
        .and_then(|v| v.get("N"))
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(0, |v| u64::try_from(v).unwrap_or(0))
}

/// Reads DynamoDB's answer (`status` 0: none came) to `expect`.
pub fn decide(expect: &Expect, status: u16, body: &[u8]) -> Decision {
    let failed = Decision {
        reply: Reply::StoreFailed,
        follow_up: None,
    };
    match (expect, status) {
        (Expect::Ignore, _) => failed,
        (Expect::Conditional, 200) => Decision {
            reply: Reply::Store(true),
            follow_up: None,
        },
        (Expect::Conditional, 400) => {
            let t = error_type(body);
            let refused = t.as_deref() == Some("ConditionalCheckFailedException")
                || (t.as_deref() == Some("TransactionCanceledException")
                    && condition_cancelled(body));
            if refused {
                Decision {
                    reply: Reply::Store(false),
                    follow_up: None,
                }
            } else {
                failed
            }
        }
        (
            Expect::Window {
                previous,
                current,
                capacity,
                period,
                now,
                refund,
            },
            200,
        ) => {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return failed;
            };
            let attributes = v.get("Attributes").cloned().unwrap_or(Value::Null);
            let cur = count(&attributes, current);
            if cur == 0 {
                return failed;
            }
            let allowed =
                Window::allows(count(&attributes, previous), cur, *capacity, *period, *now);
            Decision {
                reply: Reply::Store(allowed),
                follow_up: (!allowed).then(|| (**refund).clone()),
            }
        }
        _ => failed,
    }
}

/// The query for revocations recorded after `from_ms` (one page, from `start` when given:
/// the last page's `LastEvaluatedKey` sort key).
pub fn feed_query(table: &str, from_ms: u64, start: Option<&str>) -> Vec<u8> {
    let mut q = serde_json::Map::new();
    q.insert("TableName".into(), json!(table));
    q.insert(
        "KeyConditionExpression".into(),
        json!("pk = :p AND sk > :from"),
    );
    q.insert(
        "ExpressionAttributeValues".into(),
        json!({":p": s(FEED_PK), ":from": s(&format!("{from_ms:016}"))}),
    );
    q.insert("ConsistentRead".into(), json!(true));
    if let Some(sk) = start {
        q.insert(
            "ExclusiveStartKey".into(),
            json!({"pk": s(FEED_PK), "sk": s(sk)}),
        );
    }
    Value::Object(q).to_string().into_bytes()
}

/// One page of the feed: (entry id, expiry) of each revocation, and where the next page
/// starts (`None`: this was the last).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FeedPage {
    pub revoked: Vec<(String, u64)>,
    pub next: Option<String>,
}

/// Reads a feed page; `None` when the answer is not one.
pub fn feed_page(body: &[u8]) -> Option<FeedPage> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let items = v.get("Items")?.as_array()?;
    let revoked = items
        .iter()
        .filter_map(|item| {
            let sk = item.get("sk")?.get("S")?.as_str()?;
            let (_, id) = sk.split_once('#')?;
            let exp = item.get("exp")?.get("N")?.as_str()?.parse().ok()?;
            Some((id.to_string(), exp))
        })
        .collect();
    let next = v
        .get("LastEvaluatedKey")
        .and_then(|k| k.get("sk"))
        .and_then(|k| k.get("S"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(FeedPage { revoked, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(c: &Call) -> Value {
        serde_json::from_slice(&c.body).unwrap()
    }

    #[test]
    fn each_operation_is_one_call_keyed_by_the_entry_id() {
        let id = entry_id("mcpgate:code:j1");
        let put = for_op(
            "t",
            &StoreOp::PutIfAbsent {
                key: "mcpgate:code:j1".into(),
                ttl: 300,
            },
            1000,
            1_000_000,
        )
        .unwrap();
        assert_eq!(put.operation, "PutItem");
        let b = body(&put);
        assert_eq!(b["Item"]["pk"]["S"], id.as_str());
        assert_eq!(b["Item"]["exp"]["N"], "1300");
        assert!(
            !String::from_utf8_lossy(&put.body).contains("mcpgate:code"),
            "keys are hashed"
        );

        let adv = for_op(
            "t",
            &StoreOp::Advance {
                key: "f".into(),
                from: 4,
                ttl: 10,
            },
            1000,
            0,
        )
        .unwrap();
        let b = body(&adv);
        assert_eq!(b["ExpressionAttributeValues"][":from"]["N"], "4");
        assert_eq!(b["ExpressionAttributeValues"][":next"]["N"], "5");

        let rev = for_op(
            "t",
            &StoreOp::Revoke {
                key: "f".into(),
                ttl: 50,
            },
            1000,
            1_000_123,
        )
        .unwrap();
        assert_eq!(rev.operation, "TransactWriteItems");
        let b = body(&rev);
        assert_eq!(
            b["TransactItems"][1]["Put"]["Item"]["sk"]["S"],
            format!("0000000001000123#{}", entry_id("f")).as_str()
        );
        assert!(for_op("t", &StoreOp::IsRevoked { key: "f".into() }, 0, 0).is_none());
    }

    #[test]
    fn answers_become_replies() {
        let failed = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#;
        assert_eq!(
            decide(&Expect::Conditional, 200, b"{}").reply,
            Reply::Store(true)
        );
        assert_eq!(
            decide(&Expect::Conditional, 400, failed).reply,
            Reply::Store(false)
        );
        let cancelled = br#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","CancellationReasons":[{"Code":"ConditionalCheckFailed"},{"Code":"None"}]}"#;
        assert_eq!(
            decide(&Expect::Conditional, 400, cancelled).reply,
            Reply::Store(false)
        );
        let conflict = br#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","CancellationReasons":[{"Code":"TransactionConflict"}]}"#;
        assert_eq!(
            decide(&Expect::Conditional, 400, conflict).reply,
            Reply::StoreFailed
        );
        let throttled = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}"#;
        assert_eq!(
            decide(&Expect::Conditional, 400, throttled).reply,
            Reply::StoreFailed
        );
        assert_eq!(
            decide(&Expect::Conditional, 0, b"").reply,
            Reply::StoreFailed
        );
        assert_eq!(
            decide(&Expect::Conditional, 500, b"").reply,
            Reply::StoreFailed
        );
    }

    #[test]
    fn counters_decide_by_the_window_rule_and_refund_refusals() {
        let take = StoreOp::Take {
            key: "rl:1.2.3.4".into(),
            capacity: 2,
            period: 60,
        };
        let c = for_op("t", &take, 150, 0).unwrap();
        let b = body(&c);
        assert_eq!(b["UpdateExpression"], "ADD #c :one SET #e = :exp REMOVE #o");
        assert_eq!(b["ExpressionAttributeNames"]["#c"], "w2");
        assert_eq!(b["ExpressionAttributeNames"]["#o"], "w0");
        assert_eq!(b["ExpressionAttributeValues"][":exp"]["N"], "240");
        let answer = |prev: u64, cur: u64| {
            format!(r#"{{"Attributes":{{"w1":{{"N":"{prev}"}},"w2":{{"N":"{cur}"}}}}}}"#)
        };
        let d = decide(&c.expect, 200, answer(0, 2).as_bytes());
        assert_eq!(
            d,
            Decision {
                reply: Reply::Store(true),
                follow_up: None
            }
        );
        let d = decide(&c.expect, 200, answer(2, 1).as_bytes());
        assert_eq!(
            d.reply,
            Reply::Store(true),
            "30 s in: the previous two weigh 1"
        );
        let d = decide(&c.expect, 200, answer(2, 2).as_bytes());
        assert_eq!(d.reply, Reply::Store(false), "1 + 2 > 2");
        let refund = d.follow_up.unwrap();
        assert_eq!(
            body(&refund)["ExpressionAttributeValues"][":minus"]["N"],
            "-1"
        );
        assert_eq!(decide(&c.expect, 200, b"{}").reply, Reply::StoreFailed);
        assert_eq!(decide(&c.expect, 0, b"").reply, Reply::StoreFailed);
    }

    #[test]
    fn feed_pages_are_read() {
        let q: Value = serde_json::from_slice(&feed_query("t", 42, Some("x"))).unwrap();
        assert_eq!(
            q["ExpressionAttributeValues"][":from"]["S"],
            "0000000000000042"
        );
        assert_eq!(q["ExclusiveStartKey"]["sk"]["S"], "x");
        let page = feed_page(
            br#"{"Items":[{"pk":{"S":"revocations"},"sk":{"S":"0000000000000050#abc"},"exp":{"N":"99"}},{"sk":{"S":"bad"}}],"LastEvaluatedKey":{"pk":{"S":"revocations"},"sk":{"S":"0000000000000050#abc"}}}"#,
        )
        .unwrap();
        assert_eq!(page.revoked, vec![("abc".to_string(), 99)]);
        assert_eq!(page.next.as_deref(), Some("0000000000000050#abc"));
        assert_eq!(feed_page(b"{}"), None);
    }
}
