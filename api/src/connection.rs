//! Connections: the accept loop, HTTP/1 limits, and a JSON body on the
//! errors hyper answers by itself.
//!
//! hyper answers a request it cannot parse (a header block over the limit,
//! too many headers, an impossible `Content-Length`, a URI too long) before
//! any of our code sees it, with a status and an empty body. So that every
//! error the service sends is a GraphQL JSON error with a code, each
//! connection's writes pass through [`JsonErrors`], which recognises exactly
//! such an automatic answer (a 4xx head with `content-length: 0` and nothing
//! after it: every answer of ours carries a body) and sends it with a body.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::error::codes;

/// Most request headers accepted; more get 431 with a JSON body.
pub const HEADERS_MAX: usize = 100;

/// Largest request head (request line and headers) hyper buffers; a larger
/// one gets 431 with a JSON body.
pub const HEAD_MAX_BYTES: usize = 64 * 1024;

/// What the accept loop holds each connection to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request's headers
    /// (`server.header_timeout`).
    pub header_timeout: Duration,
    /// Open connections from one client address
    /// (`server.connections_per_address`).
    pub per_address: usize,
}

/// Answers 429 on a connection over its address's limit, and closes it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = error_body(
        codes::RATE_LIMITED,
        "too many open connections from your address",
    );
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer.as_bytes())).await;
    let _ = stream.shutdown().await;
}

/// The GraphQL-shaped body for an HTTP-level error.
pub fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": code } }] })
        .to_string()
}

/// Rewrites hyper's own, bodiless error answers into JSON errors.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let status = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    if !status.starts_with(b"4") || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    // Exactly one bare head: a buffer holding more than one answer (a client
    // pipelining) is left alone.
    if text.find("\r\n\r\n") != Some(text.len() - 4) {
        return None;
    }
    let (code, message) = match &status[..3] {
        b"400" => (codes::BAD_REQUEST, "the request is not valid HTTP/1.1"),
        b"414" => (codes::BAD_REQUEST, "the request URI is too long"),
        b"431" => (
            codes::BAD_REQUEST,
            "the request headers are too large or too many",
        ),
        _ => return None,
    };
    // Only an answer without a body: ours always have one.
    let mut lines: Vec<&str> = text.trim_end_matches("\r\n").split("\r\n").collect();
    let at = lines
        .iter()
        .position(|l| l.eq_ignore_ascii_case("content-length: 0"))?;
    let body = error_body(code, message);
    let length = format!("content-length: {}", body.len());
    lines[at] = &length;
    lines.push("content-type: application/json");
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

/// A connection whose automatic error answers carry a JSON body.
pub struct JsonErrors<S> {
    inner: S,
    /// A rewritten answer being written: (bytes, how many written, the
    /// length of the write it replaces).
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<S> JsonErrors<S> {
    pub fn new(inner: S) -> Self {
        JsonErrors {
            inner,
            replacing: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            match rewrite(buf) {
                Some(bytes) => this.replacing = Some((bytes, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        loop {
            let Some((bytes, written, replaces)) = &mut this.replacing else {
                return Poll::Ready(Ok(0));
            };
            if *written == bytes.len() {
                let replaces = *replaces;
                this.replacing = None;
                return Poll::Ready(Ok(replaces));
            }
            match Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then hands each answer over as one buffer, head
    // and body together, which is what `rewrite` looks at.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// Accepts connections until `shutdown` resolves, then waits for the
/// requests in flight (up to 30 s) and returns.
pub async fn accept(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let open: std::sync::Arc<crate::rate::Holds<std::net::IpAddr>> = Default::default();
    // Every connection holds a receiver: when all are gone, all are done.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(HEADERS_MAX)
        .max_header_size(HEAD_MAX_BYTES)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Some(held) = open.hold(peer.ip(), limits.per_address) else {
            // Answered and closed at once, without reading the request.
            tokio::spawn(refuse(stream));
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request)
            },
        );
        let connection = builder
            .serve_connection(TokioIo::new(JsonErrors::new(stream)), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stopping.changed() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(held);
            drop(stopping);
        });
    }
    drop(listener);
    drop(stopping);
    let _ = stop.send(true);
    if tokio::time::timeout(Duration::from_secs(30), stop.closed())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after 30 s; stopping anyway");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_answers_get_a_json_body_and_ours_are_left_alone() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sat, 28 Nov 2026 19:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(hyper_431).expect("rewritten")).expect("utf8");
        let (head, body) = out.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("content-type: application/json"));
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["errors"][0]["extensions"]["code"], codes::BAD_REQUEST);

        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(hyper_400).is_some());
        // An answer with a body, a success, or a body chunk: untouched.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 20\r\n\r\n{\"errors\":[]}      ";
        assert!(rewrite(ours).is_none());
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"{\"data\":null}").is_none());
        // Two answers in one buffer: not one of hyper's bare error heads.
        let two = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(two).is_none());
    }
}
