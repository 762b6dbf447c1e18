//! `tool_rules`, `tool_rules_default`, `filter_tools_list`, `max_mcp_body_bytes`: parsed,
//! defaulted, and every bad value refused naming the key.

use super::{err, minimal, parse};
use crate::config::{from_vars, ToolDefault, ToolRule};
use alloc::string::{String, ToString};
use alloc::vec;
use serde_json::json;

fn with(extra: serde_json::Value) -> serde_json::Value {
    let mut c = minimal();
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

#[test]
fn defaults_are_off() {
    let c = parse(minimal()).unwrap();
    assert!(c.tool_rules.is_empty());
    assert_eq!(c.tool_rules_default, ToolDefault::Allow);
    assert!(!c.filter_tools_list);
    assert_eq!(c.max_mcp_body_bytes, 1024 * 1024);
    assert!(!c.tool_rules_active());
    // A deny default alone puts the rules in force.
    let c = parse(with(json!({"tool_rules_default": "deny"}))).unwrap();
    assert!(c.tool_rules_active());
}

#[test]
fn rules_parse_with_their_defaults() {
    let c = parse(with(json!({
        "tool_rules": [
            {"name": "admin_*", "groups": ["admins"], "scopes": ["mcp/admin"]},
            {"method": "resources/read", "name": "file:///secret/*",
             "claims": {"custom:tenant": "acme", "custom:tier": ["gold", "platinum"]}},
            {"method": "prompts/*"},
        ],
        "tool_rules_default": "deny",
        "filter_tools_list": true,
        "max_mcp_body_bytes": 4096,
    })))
    .unwrap();
    assert_eq!(
        c.tool_rules[0],
        ToolRule {
            method: "tools/call".into(),
            name: Some("admin_*".into()),
            scopes: vec!["mcp/admin".into()],
            groups: vec!["admins".into()],
            claims: vec![],
        }
    );
    assert_eq!(c.tool_rules[1].method, "resources/read");
    assert_eq!(
        c.tool_rules[1].claims,
        vec![
            ("custom:tenant".to_string(), vec!["acme".to_string()]),
            (
                "custom:tier".to_string(),
                vec!["gold".to_string(), "platinum".to_string()]
            ),
        ]
    );
    assert!(!c.tool_rules[2].requires_anything());
    assert_eq!(c.tool_rules_default, ToolDefault::Deny);
    assert!(c.filter_tools_list);
    assert_eq!(c.max_mcp_body_bytes, 4096);
}

#[test]
fn bad_rules_are_refused_naming_the_key() {
    let cases = [
        (json!({"tool_rules": {"name": "x"}}), "tool_rules"),
        (json!({"tool_rules": ["x"]}), "tool_rules[0]"),
        (
            json!({"tool_rules": [{"name": "x", "group": ["a"]}]}),
            "tool_rules[0].group",
        ),
        (
            json!({"tool_rules": [{}, {"name": ""}]}),
            "tool_rules[1].name",
        ),
        (json!({"tool_rules": [{"name": 5}]}), "tool_rules[0].name"),
        (
            json!({"tool_rules": [{"method": ""}]}),
            "tool_rules[0].method",
        ),
        (
            json!({"tool_rules": [{"method": "x".repeat(300)}]}),
            "tool_rules[0].method",
        ),
        (
            json!({"tool_rules": [{"method": "tools/list", "name": "x"}]}),
            "tool_rules[0].name",
        ),
        (
            json!({"tool_rules": [{"name": "x", "scopes": "a b"}]}),
            "tool_rules[0].scopes",
        ),
        (
            json!({"tool_rules": [{"name": "x", "scopes": ["a b"]}]}),
            "tool_rules[0].scopes",
        ),
        (
            json!({"tool_rules": [{"name": "x", "scopes": ["a\"b"]}]}),
            "tool_rules[0].scopes",
        ),
        (
            json!({"tool_rules": [{"name": "x", "groups": [""]}]}),
            "tool_rules[0].groups",
        ),
        (
            json!({"tool_rules": [{"name": "x", "claims": ["a"]}]}),
            "tool_rules[0].claims",
        ),
        (
            json!({"tool_rules": [{"name": "x", "claims": {"t": 5}}]}),
            "tool_rules[0].claims.t",
        ),
        (
            json!({"tool_rules": [{"name": "x", "claims": {"t": []}}]}),
            "tool_rules[0].claims.t",
        ),
        (
            json!({"tool_rules": [{"name": "x", "claims": {"t": ["a", 1]}}]}),
            "tool_rules[0].claims.t",
        ),
        (json!({"tool_rules_default": "block"}), "tool_rules_default"),
        (json!({"filter_tools_list": "yes"}), "filter_tools_list"),
        (json!({"max_mcp_body_bytes": 10}), "max_mcp_body_bytes"),
    ];
    for (extra, key) in cases {
        let e = err(with(extra.clone()));
        assert_eq!(e.key, key, "{extra}: {e}");
    }
    let many: alloc::vec::Vec<serde_json::Value> =
        (0..300).map(|i| json!({"name": i.to_string()})).collect();
    assert_eq!(err(with(json!({"tool_rules": many}))).key, "tool_rules");
}

#[test]
fn rules_come_from_a_variable_as_json() {
    let vars = [
        ("MCPGATE_USER_POOL_ID", "eu-central-1_AbC123"),
        ("MCPGATE_CLIENT_ID", "app"),
        ("MCPGATE_CLIENT_SECRET", "app-secret"),
        ("MCPGATE_BASE_URL", "https://mcp.example.com"),
        ("MCPGATE_COGNITO_DOMAIN", "myapp"),
        (
            "MCPGATE_JWT_SIGNING_KEY",
            "0123456789abcdef0123456789abcdef",
        ),
        (
            "MCPGATE_TOOL_RULES",
            r#"[{"name": "echo", "scopes": ["profile"]}]"#,
        ),
        ("MCPGATE_TOOL_RULES_DEFAULT", "deny"),
        ("MCPGATE_FILTER_TOOLS_LIST", "true"),
    ];
    let get = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| String::from(*v))
    };
    let c = from_vars(&get, &[]).unwrap().config;
    assert_eq!(c.tool_rules[0].scopes, ["profile"]);
    assert_eq!(c.tool_rules_default, ToolDefault::Deny);
    assert!(c.filter_tools_list);
    let bad = |name: &str| {
        if name == "MCPGATE_TOOL_RULES" {
            Some(String::from(r#"[{"name": "echo", "scopes": "profile"}]"#))
        } else {
            get(name)
        }
    };
    let e = from_vars(&bad, &[]).unwrap_err();
    assert_eq!(e.key, "MCPGATE_TOOL_RULES (tool_rules[0].scopes)", "{e}");
}
