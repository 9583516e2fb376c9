//! A small HTTP/1.1 server on `std::net`, for the viewer's page, assets and
//! model, safe by default:
//!
//! - GET and HEAD only (405 otherwise); exact routes only, no file system
//!   access, so `..` cannot reach anything (400) and unknown paths get 404;
//! - the request head is capped at [`MAX_HEAD`] bytes (431), a request with
//!   a body or a malformed line gets 400, a client that sends nothing for
//!   [`READ_TIMEOUT`] is dropped;
//! - each connection runs on its own thread, at most [`MAX_CONNECTIONS`] at
//!   once (503 beyond), so several browsers work at once and a slow one
//!   blocks nobody; a handler that panics costs only its connection;
//! - bound to loopback, it answers only requests whose `Host` is a loopback
//!   name (403 otherwise), which stops DNS-rebinding pages from reading it.
//!
//! `std::net` rather than a crate: the server needs a dozen lines of HTTP
//! (one request per connection, `Connection: close`), and owning them keeps
//! every limit above explicit and tested.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Largest request line plus headers.
pub const MAX_HEAD: usize = 8 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to read a response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

/// A parsed GET request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The path, without the query (`/model.ply`).
    pub path: String,
    /// The raw query string after `?` (may be empty).
    pub query: String,
    /// HEAD instead of GET: the handler's body is not sent.
    pub head: bool,
}

impl Request {
    /// The value of a query parameter, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Body,
    /// Whether the browser may cache it (assets) or not (model, stats).
    pub cacheable: bool,
}

/// A response body: owned, shared or static bytes.
#[derive(Debug, Clone)]
pub enum Body {
    /// Bytes built for this response.
    Owned(Vec<u8>),
    /// Bytes shared with other responses (the model).
    Shared(Arc<Vec<u8>>),
    /// Bytes embedded in the binary.
    Static(&'static [u8]),
}

impl Body {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Body::Owned(v) => v,
            Body::Shared(v) => v,
            Body::Static(v) => v,
        }
    }
}

impl Response {
    /// A response with a body.
    pub fn ok(content_type: &'static str, body: Body) -> Self {
        Response {
            status: 200,
            content_type,
            body,
            cacheable: false,
        }
    }

    /// A JSON response.
    pub fn json(v: &serde_json::Value) -> Self {
        Response::ok("application/json", Body::Owned(v.to_string().into_bytes()))
    }

    /// An error status with a one-line text body.
    pub fn error(status: u16, message: &str) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Body::Owned(format!("{status} {message}\n").into_bytes()),
            cacheable: false,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The route handler.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Serves `listener` forever, one thread per connection.
pub fn serve(listener: TcpListener, handler: Handler) {
    let loopback = listener
        .local_addr()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(true);
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = write_response(
                &mut stream,
                &Response::error(503, "too many connections"),
                false,
            );
            continue;
        }
        let (handler, counter) = (handler.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("view-http".into())
            .spawn(move || {
                // a panicking handler ends this thread only; the count is
                // restored by the guard either way
                struct Guard(Arc<AtomicUsize>);
                impl Drop for Guard {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                let _g = Guard(counter);
                handle(stream, &handler, loopback);
            });
        if spawned.is_err() {
            // no thread: the closure (and the stream) was dropped before
            // its guard existed, so undo the count here
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Reads one request from `stream`, answers it, closes.
fn handle(stream: TcpStream, handler: &Handler, loopback: bool) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let resp = match read_request(&stream, loopback) {
        Ok(req) => {
            let head = req.head;
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&req)))
                .unwrap_or_else(|_| Response::error(500, "internal error"));
            let _ = write_response(&mut out, &r, head);
            return;
        }
        Err(r) => r,
    };
    let _ = write_response(&mut out, &resp, false);
}

fn read_request(stream: &TcpStream, loopback: bool) -> Result<Request, Response> {
    let mut reader = BufReader::new(stream.take(MAX_HEAD as u64 + 1));
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return Err(Response::error(400, "incomplete request")),
            Ok(n) => total += n,
            Err(_) => return Err(Response::error(400, "unreadable request")),
        }
        if total > MAX_HEAD {
            return Err(Response::error(431, "request head too large"));
        }
        if !line.ends_with(b"\n") {
            return Err(Response::error(400, "incomplete request"));
        }
        let text =
            String::from_utf8(line).map_err(|_| Response::error(400, "request is not UTF-8"))?;
        let text = text.trim_end_matches(['\r', '\n']).to_string();
        if text.is_empty() {
            break;
        }
        lines.push(text);
    }
    let first = lines
        .first()
        .ok_or_else(|| Response::error(400, "empty request"))?;
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::error(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Response::error(400, "unsupported HTTP version"));
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Response::error(405, "only GET and HEAD")),
    };
    let mut host = None;
    for h in &lines[1..] {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| Response::error(400, "malformed header"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if (name == "content-length" && value != "0") || name == "transfer-encoding" {
            return Err(Response::error(
                400,
                "requests with a body are not accepted",
            ));
        }
        if name == "host" {
            host = Some(value.to_string());
        }
    }
    if loopback && !host.as_deref().is_some_and(is_loopback_host) {
        return Err(Response::error(403, "Host must be a loopback name"));
    }
    if !target.starts_with('/') {
        return Err(Response::error(400, "the target must be a path"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path.contains("..") || path.contains('\\') || path.contains('%') || path.contains("//") {
        return Err(Response::error(400, "path not allowed"));
    }
    Ok(Request {
        path: path.to_string(),
        query: query.to_string(),
        head,
    })
}

/// Whether a `Host` header names this machine (`localhost`, `127.x.x.x`,
/// `[::1]`, with or without a port).
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn write_response(out: &mut TcpStream, r: &Response, head: bool) -> std::io::Result<()> {
    let body = r.body.bytes();
    let cache = if r.cacheable {
        "public, max-age=3600"
    } else {
        "no-store"
    };
    let header = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: {cache}\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        body.len()
    );
    out.write_all(header.as_bytes())?;
    if !head {
        out.write_all(body)?;
    }
    out.flush()?;
    let _ = out.shutdown(std::net::Shutdown::Write);
    // drain what the client may still send so the close is not a reset
    let mut sink = [0u8; 512];
    let _ = out.set_read_timeout(Some(Duration::from_millis(200)));
    while let Ok(n) = out.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
    Ok(())
}

/// Binds `host:port` (port 0: any free port).
pub fn bind(host: &str, port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind((host, port))?;
    let a = l.local_addr()?;
    Ok((l, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1",
            "",
            "localhost.evil",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn query_parameters() {
        let r = Request {
            path: "/".into(),
            query: "a=1&b&c=x=y".into(),
            head: false,
        };
        assert_eq!(r.param("a"), Some("1"));
        assert_eq!(r.param("b"), Some(""));
        assert_eq!(r.param("c"), Some("x=y"));
        assert_eq!(r.param("d"), None);
    }
}
