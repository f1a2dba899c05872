//! `http-get URL...`: a command that sends `GET URL` for each argument through
//! `wasi:http/outgoing-handler` and prints what happened, one line per URL:
//!
//! ```text
//! URL: 200: <the first 200 bytes of the body>
//! URL: error: <why the request failed, e.g. ErrorCode::HttpRequestDenied>
//! ```
//!
//! A refused request is an error value inside the guest, so the command goes on to the next
//! URL. The exit code is 1 if any request failed, 2 with no URLs, 0 otherwise.

use std::process::ExitCode;

fn main() -> ExitCode {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        eprintln!("usage: http-get URL...");
        return ExitCode::from(2);
    }
    let mut all_ok = true;
    for url in &urls {
        match http_hello::fetch(url) {
            Ok((status, excerpt)) => {
                let text = String::from_utf8_lossy(&excerpt);
                println!("{url}: {status}: {}", text.trim_end());
            }
            Err(err) => {
                all_ok = false;
                println!("{url}: error: {err}");
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
