//! What notifications are sent to, on loopback inside the test: an HTTP receiver (chat
//! incoming webhooks, signed webhooks, watcher events) and an SMTP sink (email channels). Both record what
//! arrives; nothing needs installing.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Its `X-Cronstack-Event` header ("" without one).
    pub event: String,
    /// The body as JSON (`null` if it is not JSON).
    pub body: Value,
    /// The body as sent (what a signature covers).
    pub raw: String,
    /// Every request header, names lowercase.
    pub headers: HashMap<String, String>,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    /// The body as JSON, panicking if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.raw).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.raw))
    }

    /// The body's `event` field.
    pub fn body_event(&self) -> String {
        self.json()["event"].as_str().unwrap().to_string()
    }
}

/// How a [`Receiver`] answers.
#[derive(Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Answer from the plan (default 200).
    Answer,
    /// Never answer (a receiver that hangs).
    Hang,
    /// Answer by path, as a pipeline's HTTP step needs: `/fail` 500, `/moved` a redirect to
    /// `/elsewhere`, anything else 200 with `{"ok": true, "n": <requests so far>}`.
    ByPath,
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    /// Statuses to answer next, in order; 200 once empty.
    plan: VecDeque<u16>,
    /// Requests being held open (Behaviour::Hang).
    hanging: usize,
}

/// How long a receiver's waits last before they fail.
const RECEIVER_WAIT: Duration = Duration::from_secs(30);

/// An HTTP receiver that records every request and answers 200 (or what it is told to, or
/// nothing at all); dropping it stops it.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::start_on(0, Behaviour::Answer).await
    }

    /// A receiver on `port` (0: any free one) that answers as `behaviour` says.
    pub async fn start_on(port: u16, behaviour: Behaviour) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let state = shared.clone();
            async move {
                let method = req.method().to_string();
                let path = req.uri().path().to_string();
                let headers: HashMap<String, String> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let event = headers.get("x-cronstack-event").cloned().unwrap_or_default();
                let bytes = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let raw = String::from_utf8_lossy(&bytes).into_owned();
                if behaviour == Behaviour::Hang {
                    state.lock().unwrap().hanging += 1;
                    tokio::time::sleep(Duration::from_secs(120)).await;
                }
                let by_path = match (behaviour, path.as_str()) {
                    (Behaviour::ByPath, "/fail") => Some(500),
                    (Behaviour::ByPath, "/moved") => Some(307),
                    (Behaviour::ByPath, _) => Some(200),
                    _ => None,
                };
                let (status, n) = {
                    let mut s = state.lock().unwrap();
                    let status = by_path.unwrap_or_else(|| s.plan.pop_front().unwrap_or(200));
                    s.got.push(Received { method, path: path.clone(), event, body, raw, headers, status });
                    (status, s.got.len())
                };
                use axum::response::IntoResponse;
                match (behaviour, path.as_str()) {
                    (Behaviour::ByPath, "/fail") => {
                        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "broken").into_response()
                    }
                    (Behaviour::ByPath, "/moved") => {
                        axum::response::Redirect::temporary("/elsewhere").into_response()
                    }
                    (Behaviour::ByPath, _) => {
                        axum::Json(serde_json::json!({"ok": true, "n": n})).into_response()
                    }
                    _ => axum::http::StatusCode::from_u16(status).unwrap().into_response(),
                }
            }
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Receiver { addr, state, stop: Some(tx) }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with `statuses`, in order.
    pub fn answer_next(&self, statuses: &[u16]) {
        self.state.lock().unwrap().plan.extend(statuses);
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// What came to `path`.
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.path == path).collect()
    }

    /// The bodies of the events of `kind` (the body's `event`) received.
    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.all().into_iter().filter(|r| r.body["event"] == kind).map(|r| r.body).collect()
    }

    /// The first event of `kind` once it has arrived (within `timeout`).
    pub async fn wait_event(&self, kind: &str, timeout: Duration) -> Value {
        super::eventually(timeout, || async { self.events(kind).into_iter().next() })
            .await
            .unwrap_or_else(|| panic!("no {kind} received; got {:#?}", self.all()))
    }

    /// The requests answered 2xx (the deliveries that succeeded).
    pub fn delivered(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| (200..300).contains(&r.status)).collect()
    }

    /// How many requests are being held open.
    pub fn hanging(&self) -> usize {
        self.state.lock().unwrap().hanging
    }

    /// Waits until `n` deliveries succeeded; returns them.
    pub async fn wait_delivered(&self, n: usize) -> Vec<Received> {
        super::eventually(RECEIVER_WAIT, || async {
            let got = self.delivered();
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|| panic!("expected {n} deliveries, got {:#?}", self.all()))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// One mail an [`SmtpSink`] accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and encoded body), dot-stuffing undone.
    pub data: String,
}

impl Mail {
    /// A header's value, unfolded, encoded words (RFC 2047) decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let line = unfolded.lines().find(|l| l.to_ascii_lowercase().starts_with(&prefix))?;
        Some(decode_words(line[prefix.len()..].trim()))
    }

    /// The text body, its transfer encoding (quoted-printable, base64 or none) undone.
    pub fn body(&self) -> String {
        let raw = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        match self.header("content-transfer-encoding").map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("base64") => {
                use base64::Engine;
                let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(compact).unwrap()).unwrap()
            }
            Some("quoted-printable") => decode_qp(raw),
            _ => raw.to_string(),
        }
        .replace("\r\n", "\n")
    }
}

/// `=?utf-8?b?…?=` and `=?utf-8?q?…?=` words in a header value, decoded.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut previous_was_word = false;
    for token in value.split(' ') {
        let parts: Vec<&str> = token.split('?').collect();
        let word = parts.len() == 5 && parts[0] == "=" && parts[4] == "=";
        if word {
            let decoded = match parts[2].to_ascii_lowercase().as_str() {
                "b" => {
                    use base64::Engine;
                    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(parts[3]).unwrap())
                        .unwrap()
                }
                _ => decode_qp(&parts[3].replace('_', " ")),
            };
            // Whitespace between two encoded words is not part of the text.
            if !previous_was_word && !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&decoded);
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(token);
        }
        previous_was_word = word;
    }
    out
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Some(b) =
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A minimal SMTP server (greeting 220, EHLO/HELO 250, MAIL/RCPT 250, DATA 354 … "." 250,
/// QUIT 221) that keeps every mail. It can refuse the first mails with a temporary error
/// (451), as a busy server does.
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    refused: Arc<Mutex<usize>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::refusing(0).await
    }

    /// A sink that answers the first `refuse` mails' `MAIL FROM` with 451.
    pub async fn refusing(refuse: usize) -> SmtpSink {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0usize));
        let (shared, counted) = (mails.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (mails, refused) = (shared.clone(), refused.clone());
                tokio::spawn(async move {
                    let _ = session(socket, mails, refused, refuse).await;
                });
            }
        });
        SmtpSink { port, mails, refused: counted }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// How many mails were refused with 451.
    pub fn refused(&self) -> usize {
        *self.refused.lock().unwrap()
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// The mails once there are at least `n` (within `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} mails of {n} arrived: {mails:#?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<Mail>>>,
    refused: Arc<Mutex<usize>>,
    refuse: usize,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase();
        let address =
            || command.split_once(':').map_or("", |(_, a)| a).trim().trim_matches(['<', '>']).to_string();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink\r\n",
            "MAIL" => {
                let mut n = refused.lock().unwrap();
                if *n < refuse {
                    *n += 1;
                    b"451 4.3.0 try again later\r\n"
                } else {
                    from = address();
                    to.clear();
                    b"250 2.1.0 ok\r\n"
                }
            }
            "RCPT" => {
                to.push(address());
                b"250 2.1.5 ok\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                mails.lock().unwrap().push(Mail { from: from.clone(), to: to.clone(), data });
                b"250 2.0.0 queued\r\n"
            }
            "RSET" | "NOOP" => b"250 ok\r\n",
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}
