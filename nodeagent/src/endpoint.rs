//! The local status endpoint: `GET /status` (JSON) and `GET /metrics` (Prometheus text)
//! over plain HTTP/1.1 on a local address, one short connection at a time (a scraper every
//! few seconds is the load it serves). Std only: two routes do not need a web framework.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the endpoint serves, updated by the agent after every sample.
#[derive(Debug, Default, Clone)]
pub struct Published {
    /// `/status` body.
    pub status: String,
    /// `/metrics` body.
    pub metrics: String,
}

/// A running endpoint.
pub struct Endpoint {
    /// The address it listens on (the port is known after binding `:0`).
    pub address: std::net::SocketAddr,
    published: Arc<Mutex<Published>>,
}

impl Endpoint {
    /// Binds `address` (e.g. `127.0.0.1:9477`) and serves from a thread.
    pub fn start(address: &str) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind(address)?;
        let published = Arc::new(Mutex::new(Published::default()));
        let shared = Arc::clone(&published);
        let address = listener.local_addr()?;
        std::thread::Builder::new().name("endpoint".into()).spawn(move || {
            for stream in listener.incoming().flatten() {
                // A slow or silent client must not hold the endpoint.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = serve(stream, &shared);
            }
        })?;
        Ok(Endpoint { address, published })
    }

    /// Replaces what is served.
    pub fn publish(&self, status: String, metrics: String) {
        let mut published = self.published.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *published = Published { status, metrics };
    }
}

fn serve(stream: TcpStream, published: &Mutex<Published>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let body = {
        let published = published.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match path {
            "/status" => Some(("application/json", published.status.clone())),
            "/metrics" => Some(("text/plain; version=0.0.4", published.metrics.clone())),
            _ => None,
        }
    };
    let mut stream = stream;
    match body {
        Some((kind, body)) => write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        None => {
            let body = "not found: try /status or /metrics\n";
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(address).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_status_and_metrics_and_404_otherwise() {
        let endpoint = Endpoint::start("127.0.0.1:0").unwrap();
        endpoint.publish("{\"temp_c\":61.0}".into(), "sweeprun_agent_duty_ratio 1\n".into());
        let status = get(endpoint.address, "/status");
        assert!(status.starts_with("HTTP/1.1 200 OK\r\n") && status.ends_with("{\"temp_c\":61.0}"), "{status}");
        assert!(status.contains("Content-Type: application/json"));
        let metrics = get(endpoint.address, "/metrics");
        assert!(metrics.ends_with("sweeprun_agent_duty_ratio 1\n"), "{metrics}");
        assert!(get(endpoint.address, "/").starts_with("HTTP/1.1 404"));
    }
}
