//! A lean HTTP/1.1 load client: one keep-alive connection per slot, the request written as
//! pre-built bytes and the response read by its `Content-Length`, as `wrk` does. A general
//! client (connection pool, a task per connection, header maps) costs tens of microseconds per
//! request on the cores the server shares; with this one what a benchmark measures is the
//! server's own cost.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request serialised once: request line, headers and body.
pub(super) fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One keep-alive connection.
pub(super) struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    /// Connects to `addr` with Nagle's algorithm off.
    pub(super) async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends `request` and reads the whole response; its status code.
    pub(super) async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        self.stream.write_all(request).await?;
        self.buffer.clear();
        let (head_end, status, length) = loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let (status, length) = parse_head(&self.buffer[..end])?;
                break (end + 4, status, length);
            }
            self.fill().await?;
        };
        while self.buffer.len() < head_end + length {
            self.fill().await?;
        }
        if self.buffer.len() > head_end + length {
            bail!("response longer than its Content-Length");
        }
        Ok(status)
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.stream.read_buf(&mut self.buffer).await? == 0 {
            bail!("connection closed mid-response");
        }
        Ok(())
    }
}

/// The status code and `Content-Length` of a response head (status line and headers).
fn parse_head(head: &[u8]) -> anyhow::Result<(u16, usize)> {
    let head = std::str::from_utf8(head).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .context("malformed status line")?;
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.trim().parse())
        .context("response without Content-Length")??;
    Ok((status, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_gives_status_and_length() {
        let head =
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nContent-Length: 17";
        assert_eq!(parse_head(head).unwrap(), (404, 17));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nx: y").is_err());
        assert!(parse_head(b"garbage").is_err());
    }

    #[tokio::test]
    async fn exchanges_with_the_real_server() {
        let app = test_support::spawn_app().await;
        let addr: SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
        let mut connection = Connection::open(addr).await.unwrap();
        let health = request("GET", addr, "/health", &[], b"");
        for _ in 0..3 {
            assert_eq!(connection.exchange(&health).await.unwrap(), 200);
            assert!(connection.buffer.ends_with(b"}"), "whole JSON body read");
        }
        let profile = request("GET", addr, "/api/v1/user/profile", &[], b"");
        assert_eq!(connection.exchange(&profile).await.unwrap(), 401);
        assert_eq!(connection.exchange(&health).await.unwrap(), 200);
    }
}
