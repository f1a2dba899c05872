//! Where a server says it listens: the one parser of that line for the benches and the
//! integration tests (each crate includes this file once, with `#[path]`, at its root), so that
//! every harness starts its server on port 0 and reads the port back the same way.

/// The socket address printed right after `marker` in `line`, up to the first space, `"` or
/// `/`: for `serving on http://127.0.0.1:8080 (Ctrl-C ...)` (ours) or
/// `Serving HTTP on http://127.0.0.1:8080/` (stock wasmtime) with the marker `on http://`,
/// `127.0.0.1:8080`.
pub fn address_after(line: &str, marker: &str) -> Option<std::net::SocketAddr> {
    line.split(marker)
        .nth(1)?
        .split(|c: char| c.is_whitespace() || c == '"' || c == '/')
        .next()?
        .parse()
        .ok()
}
