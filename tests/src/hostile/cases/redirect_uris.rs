//! Redirect URIs at `/register` and `/authorize`.

use super::super::*;

pub(crate) fn redirect_uri_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::RedirectUris as R;
    let mut v = Vec::new();
    let reg = |name: &str, uri: &str, desc: &'static str| {
        Case::new(
            R,
            format!("register {name}: {uri}"),
            Req::json(
                "/register",
                &json!({"redirect_uris": [uri], "client_name": "hostile"}),
            ),
            oauth_d(400, "invalid_redirect_uri", desc),
        )
    };
    let scheme = "redirect_uri must be https, http to a loopback address, or a private-use scheme";
    let web_form = "https and http redirect URIs must have the form scheme://host/path";
    let upper = "redirect_uri scheme http/https must be written in lower case";
    let dangerous = "redirect_uri scheme is handled by the browser or the operating system";
    let insecure = "http redirect_uri allowed only for localhost";
    let userinfo = "redirect_uri must not contain userinfo";
    let fragment = "redirect_uri must not contain a fragment";
    let dots = "redirect_uri must not contain dot segments";
    let bad_char = "redirect_uri contains characters not allowed in a URI";
    let bad_host = "redirect_uri has an invalid host";
    let bad_port = "redirect_uri has an invalid port";
    for (name, uri, desc) in [
        // Open redirects and relative forms.
        ("scheme-relative", "//evil.example/cb", scheme),
        ("relative path", "/cb", scheme),
        ("https: without slashes", "https:evil.example/cb", web_form),
        ("https:/ one slash", "https:/evil.example/cb", web_form),
        ("upper-case scheme", "HTTPS://evil.example/cb", upper),
        (
            "backslash authority",
            "https://good.example\\@evil.example/cb",
            "backslashes",
        ),
        ("leading space", " https://good.example/cb", bad_char),
        // userinfo
        ("userinfo", "https://good.example@evil.example/cb", userinfo),
        (
            "user:password",
            "https://user:pass@good.example/cb",
            userinfo,
        ),
        (
            "loopback userinfo",
            "http://localhost@evil.example/cb",
            userinfo,
        ),
        (
            "loopback userinfo with port",
            "http://127.0.0.1:80@evil.example/cb",
            userinfo,
        ),
        (
            "encoded @ in host",
            "https://good.example%40evil.example/cb",
            bad_host,
        ),
        // Encoded slashes and dots
        ("dot-dot", "https://app.example/a/../cb", dots),
        ("dot", "https://app.example/./cb", dots),
        ("encoded dot-dot", "https://app.example/%2e%2e/cb", dots),
        (
            "mixed-case encoded dots",
            "https://app.example/%2E./cb",
            dots,
        ),
        ("encoded slash", "https://app.example/a%2Fb", dots),
        ("encoded backslash", "https://app.example/a%5cb", dots),
        (
            "loopback encoded traversal",
            "http://127.0.0.1/..%2f..%2fcb",
            dots,
        ),
        // IDN look-alikes and other non-ASCII
        ("Cyrillic a", "https://\u{430}pp.example/cb", bad_char),
        ("fullwidth host", "https://\u{ff45}xample.com/cb", bad_char),
        (
            "roman numeral l in localhost",
            "http://\u{217c}ocalhost/cb",
            bad_char,
        ),
        (
            "ideographic full stop",
            "http://localhost\u{3002}evil.example/cb",
            bad_char,
        ),
        // Fragments
        ("fragment", "https://app.example/cb#x", fragment),
        ("empty fragment", "https://app.example/cb#", fragment),
        ("loopback fragment", "http://localhost/cb#/evil", fragment),
        // localhost look-alikes and non-loopback http
        (
            "localhost subdomain",
            "http://localhost.evil.com/cb",
            insecure,
        ),
        ("nip.io", "http://127.0.0.1.nip.io/cb", insecure),
        (
            "localhost with trailing dot",
            "http://localhost./cb",
            bad_host,
        ),
        ("decimal IP", "http://2130706433/cb", insecure),
        ("hex IP", "http://0x7f000001/cb", insecure),
        ("short IP", "http://127.1/cb", insecure),
        ("0.0.0.0", "http://0.0.0.0/cb", insecure),
        ("IPv4-mapped IPv6", "http://[::ffff:127.0.0.1]/cb", bad_host),
        ("plain http", "http://evil.example/cb", insecure),
        ("private network http", "http://192.168.1.1/cb", insecure),
        // Port games
        ("port 0", "https://app.example:0/cb", bad_port),
        ("port 99999", "https://app.example:99999/cb", bad_port),
        ("port 80a", "https://app.example:80a/cb", bad_port),
        ("port 65536", "http://127.0.0.1:65536/cb", bad_port),
        ("empty port", "https://app.example:/cb", bad_port),
        ("negative port", "http://localhost:-1/cb", bad_port),
        ("port +80", "https://app.example:+80/cb", bad_port),
        // Schemes the browser or the operating system handles itself (private-use schemes of
        // apps are accepted: RFC 8252 §7.1, below).
        ("javascript", "javascript:alert(1)", dangerous),
        ("javascript with //", "javascript://%0aalert(1)", dangerous),
        ("mixed-case javascript", "JaVaScRiPt:alert(1)", dangerous),
        (
            "data",
            "data:text/html,<script>alert(1)</script>",
            dangerous,
        ),
        ("file", "file:///etc/passwd", dangerous),
        ("vbscript", "vbscript:msgbox(1)", dangerous),
        ("blob", "blob:https://evil.example/x", dangerous),
        ("about", "about:blank", dangerous),
        ("ftp", "ftp://x.example/cb", dangerous),
        ("ws", "ws://x.example/cb", dangerous),
        ("mailto", "mailto:a@evil.example", dangerous),
        ("Windows handler", "ms-msdt:/id%20PCWDiagnostic", dangerous),
        ("search-ms", "search-ms:query=x", dangerous),
        (
            "Android intent",
            "intent://x#Intent;scheme=https;end",
            dangerous,
        ),
        ("a drive letter", "c:/windows/cb", scheme),
        (
            "private-use with a fragment",
            "myapp://cb#x",
            "private-use redirect_uri",
        ),
        // Control characters
        (
            "CRLF",
            "https://app.example/cb\r\nSet-Cookie: x=1",
            bad_char,
        ),
        ("NUL", "https://app.example/cb\u{0}", bad_char),
    ] {
        v.push(reg(name, uri, desc));
    }
    v.push(Case::new(
        R,
        "register a private-use scheme (RFC 8252 §7.1): accepted, matched exactly",
        Req::json(
            "/register",
            &json!({"redirect_uris": ["myapp://callback"], "client_name": "hostile"}),
        ),
        Expect::Status(201),
    ));
    v.push(Case::new(
        R,
        "register application_type web with a loopback redirect URI",
        Req::json(
            "/register",
            &json!({"redirect_uris": [REDIRECT_URI], "application_type": "web"}),
        ),
        oauth_d(
            400,
            "invalid_redirect_uri",
            "application_type web allows only https",
        ),
    ));
    v.push(reg(
        "3 KiB long",
        &format!("https://app.example/{}", "a".repeat(3000)),
        "redirect_uri too long",
    ));
    let many: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
    v.push(Case::new(
        R,
        "register 11 redirect URIs",
        Req::json("/register", &json!({ "redirect_uris": many })),
        oauth_d(400, "invalid_redirect_uri", "at most 10 redirect_uris"),
    ));
    v.push(Case::new(
        R,
        "register one good and one bad redirect URI",
        Req::json(
            "/register",
            &json!({"redirect_uris": [REDIRECT_URI, "javascript:alert(1)"]}),
        ),
        oauth_d(400, "invalid_redirect_uri", dangerous),
    ));
    v.push(Case::new(
        R,
        "register redirect_uris as a string",
        Req::json(
            "/register",
            &json!({"redirect_uris": "https://a.example/cb"}),
        ),
        oauth(400, "invalid_client_metadata"),
    ));

    // At /authorize: a redirect URI not registered is a 400 page, never a redirect.
    let not_registered = "redirect_uri is not registered for this client";
    for (name, uri) in [
        ("another host", "https://evil.example/cb".to_owned()),
        ("trailing slash", format!("{REDIRECT_URI}/")),
        (
            "extra query",
            format!("{REDIRECT_URI}?next=https://evil.example"),
        ),
        ("other path case", REDIRECT_URI.replace("/cb", "/CB")),
        (
            "localhost for 127.0.0.1",
            REDIRECT_URI.replace("127.0.0.1", "localhost"),
        ),
        ("dot segment", format!("{REDIRECT_URI}/../evil")),
        ("fragment", format!("{REDIRECT_URI}#x")),
        (
            "userinfo",
            "http://127.0.0.1:33333@evil.example/cb".to_owned(),
        ),
        ("javascript", "javascript:alert(1)".to_owned()),
        (
            "https for http",
            REDIRECT_URI.replace("http://", "https://"),
        ),
    ] {
        v.push(Case::new(
            R,
            format!("authorize with a redirect_uri not registered: {name}"),
            Req::get(&ctx.authorize_target(&ctx.client_id, &[("redirect_uri", &uri)])),
            page_d(400, "invalid_request", not_registered),
        ));
    }
    v
}
