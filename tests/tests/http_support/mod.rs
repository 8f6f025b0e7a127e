//! Shared by the `http_*` tests: a recording stand-in for the Lambda Invoke API, and fixtures.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use lambda_http::Request;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST /2015-03-31/functions/<name>/invocations HTTP/1.1`
    pub request_line: String,
    /// Header names lower-cased, with their values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Recorded {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP server on 127.0.0.1 that answers every request with `status` and records it, so the
/// real aws-sdk-lambda client can be pointed at it (moto cannot run Lambda functions without Docker).
pub struct InvokeStandIn {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Requests received so far.
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl InvokeStandIn {
    /// Starts the stand-in answering `status` (202 = accepted asynchronous invoke).
    pub async fn start(status: u16) -> InvokeStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    loop {
                        let mut request_line = String::new();
                        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut headers = Vec::new();
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = line.split_once(':') {
                                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                            }
                        }
                        let length: usize = headers
                            .iter()
                            .find(|(k, _)| k == "content-length")
                            .and_then(|(_, v)| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        seen.lock().unwrap().push(Recorded {
                            request_line: request_line.trim_end().to_string(),
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                        let (reason, body) = match status {
                            202 => ("Accepted", String::new()),
                            _ => (
                                "Not Found",
                                r#"{"Type":"User","message":"Function not found"}"#.to_string(),
                            ),
                        };
                        let mut response = format!(
                            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                            body.len()
                        );
                        if status != 202 {
                            response.push_str("x-amzn-errortype: ResourceNotFoundException\r\n");
                        }
                        response.push_str("\r\n");
                        response.push_str(&body);
                        if write.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        InvokeStandIn { url, requests }
    }

    /// What was received so far.
    pub fn received(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// A stored API Gateway v2 event as a `Request`.
pub fn event(name: &str) -> Request {
    lambda_http::request::from_str(&prematch_tests::event_fixture(name)).unwrap()
}

/// The response body as JSON.
pub fn json(response: &lambda_http::Response<lambda_http::Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}
