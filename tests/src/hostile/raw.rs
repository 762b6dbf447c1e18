//! A raw HTTP/1.1 client: the exact bytes of a request (no normalisation, no redirects
//! followed), its answer read whole, chunked bodies undone.

use super::*;

/// One HTTP/1.1 request, sent byte for byte as given (plus `Host`, `Content-Length` unless
/// `chunked` or given, and `Connection: close`).
#[derive(Clone, Debug, Default)]
pub struct Req {
    pub method: String,
    /// Request target, sent unchanged (no dot-segment removal, no re-encoding).
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Send the body with `Transfer-Encoding: chunked` (64 KiB chunks).
    pub chunked: bool,
}

impl Req {
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            ..Self::default()
        }
    }
    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }
    /// A form POST (`application/x-www-form-urlencoded`).
    pub fn form(target: &str, pairs: &[(&str, &str)]) -> Self {
        Self::new("POST", target)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(pairs))
    }
    /// A JSON POST.
    pub fn json(target: &str, body: &Value) -> Self {
        Self::new("POST", target)
            .header("content-type", "application/json")
            .body(body.to_string())
    }
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
    pub fn cookie(self, cookies: &[(&str, &str)]) -> Self {
        let v: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.header("cookie", v.join("; "))
    }
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self, authority: &str) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        if !self.has("host") {
            out.extend_from_slice(format!("host: {authority}\r\n").as_bytes());
        }
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        if self.chunked {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        } else if !self.has("content-length") && (!self.body.is_empty() || self.method == "POST") {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"connection: close\r\n\r\n");
        if self.chunked {
            for chunk in self.body.chunks(64 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

impl fmt::Display for Req {
    /// The request as readable text: long values and bodies shortened, bytes that are not
    /// printable ASCII escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}",
            self.method,
            shorten(self.target.as_bytes(), 300)
        )?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {}", shorten(v, 300))?;
        }
        if self.chunked {
            writeln!(f, "transfer-encoding: chunked")?;
        }
        if !self.body.is_empty() {
            write!(f, "\n{}", shorten(&self.body, 400))?;
        }
        Ok(())
    }
}

pub(crate) fn shorten(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(max) {
        if (0x20..0x7f).contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > max {
        s.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    s
}

/// `application/x-www-form-urlencoded`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A response as read off the wire.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// The body as JSON; for an SSE answer (the Python origin's), its JSON-RPC answer.
    pub fn json(&self) -> Option<Value> {
        let ct = self.header("content-type").unwrap_or("");
        if ct.starts_with("text/event-stream") {
            Some(crate::scenarios::jsonrpc_answer(ct, &self.text())).filter(|v| !v.is_null())
        } else {
            serde_json::from_slice(&self.body).ok()
        }
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {}", shorten(v.as_bytes(), 300))?;
        }
        if !self.body.is_empty() {
            write!(f, "\n{}", shorten(&self.body, 400))?;
        }
        Ok(())
    }
}

/// Sends `req` to `authority` (`127.0.0.1:port`) over a new connection and reads the whole
/// answer (the request asks for `Connection: close`). Writing and reading run together, so a
/// server that answers before reading everything (431, 413) is read all the same.
pub async fn send(authority: &str, req: &Req) -> anyhow::Result<Answer> {
    let bytes = req.to_bytes(authority);
    let io = async {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        let (rd, mut wr) = stream.into_split();
        let write = async move {
            // The server may close early (it answered already): the read side decides.
            let _ = wr.write_all(&bytes).await;
            let _ = wr.flush().await;
            wr
        };
        let read = read_answer(rd);
        let (_wr, buf) = tokio::join!(write, read);
        anyhow::Ok(buf?)
    };
    let buf = tokio::time::timeout(CASE_TIMEOUT, io)
        .await
        .map_err(|_| anyhow::anyhow!("no complete answer within {CASE_TIMEOUT:?} (hang)"))??;
    parse_answer(&buf)
}

/// Reads one HTTP/1.1 answer: until it is complete ([`complete`]) or the connection ends.
/// Envoy waits for the client to close first (its delayed close), so this stops as soon as
/// the answer is whole; a reset after the answer arrived still leaves the answer.
pub async fn read_answer(mut rd: tokio::net::tcp::OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match rd.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if complete(&buf) {
                    break;
                }
            }
            Err(e) if buf.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(buf)
}

/// Whether `buf` holds a whole response (head, and a body of known length or a last chunk).
pub fn complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let body = &buf[end + 4..];
    let value = |name: &str| {
        head.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return body.ends_with(b"0\r\n\r\n");
    }
    match value("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(n) => body.len() >= n,
        None => {
            let status = head.split(' ').nth(1).unwrap_or("");
            status == "204" || status == "304"
        }
    }
}

pub fn parse_answer(buf: &[u8]) -> anyhow::Result<Answer> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("no complete response head in {:?}", shorten(buf, 200)))?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw = &buf[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(raw)
    } else if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        raw[..n.min(raw.len())].to_vec()
    } else {
        raw.to_vec()
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

pub(crate) fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
    out
}
