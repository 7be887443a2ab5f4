//! Test helpers: scrape a metrics endpoint over plain HTTP/1.1 and read one sample. Enabled by
//! the `dev` feature; the services do not use them.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `GET /metrics` to `address` and returns the response body.
///
/// # Panics
///
/// Panics when the connection fails or the response status is not 200.
pub async fn scrape(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address)
        .await
        .expect("connect to the metrics endpoint");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP head and body");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "metrics endpoint returned {head}"
    );
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "chunked body: {head}"
    );
    body.to_owned()
}

/// Returns the value of the sample whose name and labels are exactly `series`, such as
/// `stella_decisions_total{decision="allow"}`, or `None` when the text has no such sample.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}
