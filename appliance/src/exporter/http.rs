//! The exporter's HTTP/1.1 messages: GET (and HEAD) only, one request per connection
//! (`Connection: close`). The sockets are driven by [`super::server`] on the exporter thread.
//!
//! Why not a library: the exporter must stay one `SCHED_IDLE` thread on a housekeeping core,
//! and the servers on crates.io bring their own worker threads or an async runtime. Scrapers
//! (Prometheus, load balancers' health checks) send one short GET and read the answer, which
//! is all this handles.

/// Largest request head accepted (answered 431 beyond).
pub const MAX_HEAD: usize = 8 << 10;

/// A request line reduced to what the exporter routes on.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `HEAD` (anything else is answered 405 before routing).
    pub head_only: bool,
    /// The path without its query string.
    pub path: String,
}

/// An answer.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON answer.
    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.into_bytes(),
        }
    }

    /// A plain-text answer carrying only the status's reason phrase.
    pub fn status(status: u16) -> Self {
        Self::text(status, format!("{}\n", reason(status)))
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Parses a request head (the bytes up to the blank line).
pub fn parse(head: &[u8]) -> Result<Request, u16> {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| 400u16)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(400);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(405),
    };
    let path = target.split('?').next().unwrap_or("").to_string();
    Ok(Request { head_only, path })
}

/// The bytes on the wire for `resp` (the head only for a HEAD request).
pub fn encode(resp: &Response, head_only: bool) -> Vec<u8> {
    // RFC 9110 15.5.6: a 405 names the methods the resource supports.
    let allow = if resp.status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n{allow}Content-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_parsed_or_refused_with_the_right_status() {
        assert_eq!(
            parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Ok(Request {
                head_only: false,
                path: "/metrics".into()
            })
        );
        assert!(
            parse(b"HEAD /health/live HTTP/1.0\r\n\r\n")
                .unwrap()
                .head_only
        );
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Err(405));
        assert_eq!(parse(b"GET /metrics\r\n\r\n"), Err(400));
        assert_eq!(parse(b"GET /metrics SPDY/3\r\n\r\n"), Err(400));
        assert_eq!(parse(b"\xff\xfe / HTTP/1.1\r\n\r\n"), Err(400));
    }

    #[test]
    fn answers_carry_their_length_and_head_requests_no_body() {
        let r = Response::json(200, "{}".into());
        let full = String::from_utf8(encode(&r, false)).unwrap();
        assert!(full.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(full.contains("Content-Length: 2\r\n") && full.ends_with("\r\n\r\n{}"));
        let head = String::from_utf8(encode(&r, true)).unwrap();
        assert!(head.ends_with("Connection: close\r\n\r\n"), "{head}");
        let refused = String::from_utf8(encode(&Response::status(431), false)).unwrap();
        assert!(refused.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(!refused.contains("Allow:"));
        let wrong_method = String::from_utf8(encode(&Response::status(405), false)).unwrap();
        assert!(
            wrong_method.starts_with("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"),
            "{wrong_method}"
        );
    }
}
