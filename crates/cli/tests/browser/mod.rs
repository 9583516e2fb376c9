//! Driving headless Chromium for the viewer's tests: finding the browser,
//! starting it with software WebGL (SwiftShader), and a minimal DevTools
//! protocol client (a WebSocket over `std::net`, JSON messages).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The Chromium binary: $CHROMIUM, else `chromium`, `chromium-browser` or
/// `google-chrome` on PATH.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Chromium for a test, or None after printing why the test is skipped.
/// Under CI (`CI=true`) a missing browser is a failure, never a skip.
pub fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "{test}: no chromium found and CI=true; .ci/run installs Debian's `chromium` package"
        );
        eprintln!(
            "SKIPPED {test}: no chromium on PATH (install Debian's `chromium`, or set CHROMIUM=/path); \
             this skip is an error under CI=true"
        );
    }
    found
}

/// A headless Chromium process with its DevTools connection.
pub struct Browser {
    child: Child,
    ws: WebSocket,
    next_id: u64,
    _profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

impl Browser {
    /// Starts Chromium headless with WebGL through SwiftShader (a second
    /// try if the first start fails; its stderr goes into the panic).
    pub fn start(chromium: &Path, profile: PathBuf) -> Browser {
        match Self::try_start(chromium, &profile) {
            Ok(b) => b,
            Err(first) => {
                eprintln!("chromium did not start ({first}); trying once more");
                Self::try_start(chromium, &profile)
                    .unwrap_or_else(|e| panic!("chromium did not start twice: {first}\n---\n{e}"))
            }
        }
    }

    fn try_start(chromium: &Path, profile: &Path) -> Result<Browser, String> {
        let _ = std::fs::remove_dir_all(profile);
        std::fs::create_dir_all(profile).unwrap();
        let mut child = Command::new(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu-sandbox",
                "--disable-dev-shm-usage",
                "--use-gl=angle",
                "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
                "--ignore-gpu-blocklist",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-port=0",
                "--window-size=1024,768",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", chromium.display()))?;
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut l = log2.lock().unwrap();
                if l.len() < 200 {
                    l.push(line);
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no DevTools address within 60 s; chromium said:\n{}",
                    log.lock().unwrap().join("\n")
                ));
            }
        };
        let ws = WebSocket::connect(&url);
        Ok(Browser {
            child,
            ws,
            next_id: 1,
            _profile: profile.to_path_buf(),
        })
    }

    /// Sends a command (on a page session when `session` is given) and
    /// waits for its result.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(&msg.to_string());
        loop {
            let v: Value = serde_json::from_str(&self.ws.recv()).expect("DevTools JSON");
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("DevTools {method}: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// Opens a page of `width`×`height` CSS pixels (device scale 1) at
    /// `url`; returns its session.
    pub fn open(&mut self, url: &str, width: u32, height: u32) -> String {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let tid = target["targetId"].as_str().unwrap().to_string();
        let s = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": tid, "flatten": true}),
        );
        let session = s["sessionId"].as_str().unwrap().to_string();
        self.call(
            Some(&session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        self.call(Some(&session), "Page.navigate", json!({"url": url}));
        session
    }

    /// Evaluates `expr` in the page; returns its value.
    pub fn eval(&mut self, session: &str, expr: &str) -> Value {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("page threw evaluating {expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until the viewer says it is ready (or reports an error).
    pub fn wait_ready(&mut self, session: &str, timeout: Duration) {
        let t0 = Instant::now();
        loop {
            let v = self.eval(
                session,
                "window.__viewer ? {ready: window.__viewer.ready, error: window.__viewer.error} : null",
            );
            if let Some(e) = v["error"].as_str() {
                panic!("the page failed: {e}");
            }
            if v["ready"] == json!(true) {
                return;
            }
            assert!(
                t0.elapsed() < timeout,
                "the page was not ready within {timeout:?}: {v}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The canvas' pixels now: (width, height, RGB bytes, top row first).
    pub fn capture(&mut self, session: &str) -> (u32, u32, Vec<u8>) {
        let v = self.eval(session, "window.__capture()");
        let (w, h) = (
            v["width"].as_u64().unwrap() as u32,
            v["height"].as_u64().unwrap() as u32,
        );
        let hex = v["rgb"].as_str().unwrap().as_bytes();
        let nib = |c: u8| (c as char).to_digit(16).unwrap() as u8;
        let rgb = hex
            .chunks_exact(2)
            .map(|p| nib(p[0]) << 4 | nib(p[1]))
            .collect();
        (w, h, rgb)
    }
}

/// A screenshot of the whole page (overlays included) as PNG bytes.
pub fn screenshot_png(b: &mut Browser, session: &str) -> Vec<u8> {
    let r = b.call(
        Some(session),
        "Page.captureScreenshot",
        json!({"format": "png"}),
    );
    base64_decode(r["data"].as_str().unwrap())
}

/// Standard base64 (with padding) to bytes.
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | (val(c) as u32) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// A client WebSocket (RFC 6455) with just what DevTools needs: text
/// messages, masked frames out, fragmented frames in.
pub struct WebSocket {
    stream: TcpStream,
}

impl WebSocket {
    /// Connects to a `ws://host:port/path` address.
    pub fn connect(url: &str) -> WebSocket {
        let rest = url.strip_prefix("ws://").expect("ws:// address");
        let (hostport, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = TcpStream::connect(hostport).expect("connect to DevTools");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut b).expect("WebSocket handshake");
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "handshake refused: {head}"
        );
        stream
            .set_read_timeout(Some(Duration::from_secs(600)))
            .unwrap();
        WebSocket { stream }
    }

    /// Sends one text message.
    pub fn send(&mut self, text: &str) {
        let p = text.as_bytes();
        let mut f = vec![0x81u8];
        match p.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        f.extend_from_slice(&mask);
        f.extend(p.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&f).unwrap();
    }

    /// Receives one text message (joining fragments; pings answered).
    pub fn recv(&mut self) -> String {
        let mut msg = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.stream.read_exact(&mut h).expect("DevTools closed");
            let (fin, op) = (h[0] & 0x80 != 0, h[0] & 0x0f);
            let mut len = (h[1] & 0x7f) as u64;
            if len == 126 {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).unwrap();
                len = u16::from_be_bytes(b) as u64;
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).unwrap();
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload).unwrap();
            match op {
                0x9 => {
                    // ping: answer with a masked pong of the same payload
                    let mut f = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                    f.extend_from_slice(&payload);
                    self.stream.write_all(&f).unwrap();
                    continue;
                }
                0x8 => panic!("DevTools closed the connection"),
                _ => msg.extend_from_slice(&payload),
            }
            if fin {
                return String::from_utf8(msg).expect("UTF-8 message");
            }
        }
    }
}

/// PSNR (dB) of two RGB images of the same size.
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64
        / (255.0 * 255.0);
    -10.0 * mse.max(1e-12).log10()
}
