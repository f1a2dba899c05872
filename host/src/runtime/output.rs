//! Guest output on the host's streams, framed line by line.
//!
//! `run` and `serve` share stderr between the guests, the host's own log lines and (with
//! `audit-log = "-"`) the audit log; `serve` also shares stdout between its components. A
//! guest writing raw bytes there could print a line that passes for the host's own: an audit
//! event, a log line, another component's output. So every line a guest writes reaches the host
//! stream framed, naming the component:
//!
//! - text: `[NAME] LINE`, with control characters escaped (`\r`, `\u{1b}`), so that no guest
//!   line starts like a host line or rewrites one on a terminal;
//! - JSON: one object per line, the guest's line an escaped string field of it:
//!   `{"timestamp":"…","level":"INFO","message":"guest output","component":"NAME","stream":"stderr","line":"…"}`.
//!
//! A line waits for its newline, the end of the guest (its store dropped), or [`MAX_LINE`]
//! bytes, whichever comes first; a longer line is cut into framed pieces. Each framed line goes
//! to the host stream in one write under that stream's lock, so the lines of concurrent guests
//! never interleave.

use bytes::Bytes;
use serde::Serialize;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// The longest guest line framed whole; longer lines are cut into pieces of at most this.
const MAX_LINE: usize = 16 * 1024;

/// The most a guest may hand over in one write (the stream's permit).
const MAX_WRITE: usize = 64 * 1024;

/// How framed lines look: like the host's own log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// `[NAME] LINE`.
    #[default]
    Text,
    /// One JSON object per line, the guest's line in its `line` field.
    Json,
}

/// Which of the host's streams a guest stream goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStream {
    /// The host's stdout.
    Stdout,
    /// The host's stderr.
    Stderr,
}

impl HostStream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// A guest's stdout or stderr whose every line reaches a host stream framed. Clones (one per
/// `get-stderr` the guest calls) share one partial line; the last one dropped writes it out.
#[derive(Clone)]
pub struct FramedOutput(Arc<Mutex<Framer>>);

impl std::fmt::Debug for FramedOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FramedOutput")
    }
}

impl FramedOutput {
    /// `component`'s lines, framed in `format`, onto the host's `stream`.
    pub fn new(component: &str, stream: HostStream, format: OutputFormat) -> Self {
        let out: Box<dyn Write + Send> = match stream {
            HostStream::Stdout => Box::new(std::io::stdout()),
            HostStream::Stderr => Box::new(std::io::stderr()),
        };
        Self::to_writer(component, stream, format, out)
    }

    /// The same onto any writer (a test's buffer); `stream` only labels it.
    fn to_writer(
        component: &str,
        stream: HostStream,
        format: OutputFormat,
        out: Box<dyn Write + Send>,
    ) -> Self {
        Self(Arc::new(Mutex::new(Framer {
            format,
            component: component.to_owned(),
            prefix: format!("[{}] ", escape_controls(component)),
            stream,
            pending: Vec::new(),
            out,
        })))
    }

    fn push(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(bytes)
    }
}

struct Framer {
    format: OutputFormat,
    component: String,
    /// `[NAME] `, escaped, for text lines.
    prefix: String,
    stream: HostStream,
    /// The line so far, without its newline; shorter than [`MAX_LINE`] between writes.
    pending: Vec<u8>,
    out: Box<dyn Write + Send>,
}

impl Framer {
    fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let (text, ends_line) = match piece.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (piece, false),
            };
            self.pending.extend_from_slice(text);
            while self.pending.len() > MAX_LINE {
                let rest = self
                    .pending
                    .split_off(char_boundary(&self.pending, MAX_LINE));
                self.emit()?;
                self.pending = rest;
            }
            if ends_line {
                self.emit()?;
            }
        }
        Ok(())
    }

    /// Writes the pending line, framed, in one write.
    fn emit(&mut self) -> std::io::Result<()> {
        let bytes = std::mem::take(&mut self.pending);
        let text = String::from_utf8_lossy(&bytes);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let mut line = match self.format {
            OutputFormat::Text => format!("{}{}", self.prefix, escape_controls(text)),
            OutputFormat::Json => serde_json::to_string(&JsonLine {
                timestamp: crate::audit::now_rfc3339(),
                level: "INFO",
                message: "guest output",
                component: &self.component,
                stream: self.stream.name(),
                line: text,
            })?,
        };
        line.push('\n');
        self.out.write_all(line.as_bytes())?;
        self.out.flush()
    }
}

impl Drop for Framer {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.emit();
        }
    }
}

/// A guest line in JSON: the fields of the host's JSON log lines, and the guest's text only
/// in `line`.
#[derive(Serialize)]
struct JsonLine<'a> {
    timestamp: String,
    level: &'static str,
    message: &'static str,
    component: &'a str,
    stream: &'static str,
    line: &'a str,
}

/// The largest cut at or below `max` that does not split a UTF-8 character (`max` itself if
/// the bytes are not UTF-8 there). `bytes` is longer than `max`.
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| bytes[i] & 0xC0 != 0x80)
        .filter(|&i| i > 0)
        .unwrap_or(max)
}

/// `text` with control characters (but tab) and Unicode line separators escaped.
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let escape = |c: char| (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl IsTerminal for FramedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for FramedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for FramedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        // A partial line waits for its end: a flush in mid-line must not frame half of it.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_WRITE)
    }
}

#[async_trait::async_trait]
impl Pollable for FramedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for FramedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.push(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn framed(format: OutputFormat) -> (FramedOutput, Buffer) {
        let buffer = Buffer::default();
        let out = FramedOutput::to_writer(
            "pay\nments",
            HostStream::Stderr,
            format,
            Box::new(buffer.clone()),
        );
        (out, buffer)
    }

    #[test]
    fn text_lines_are_prefixed_and_escaped_and_wait_for_their_end() {
        let (out, buffer) = framed(OutputFormat::Text);
        let mut second = out.clone();
        out.push(b"{\"op\":\"get\"").unwrap();
        assert_eq!(buffer.text(), "", "a partial line waits");
        OutputStream::write(&mut second, Bytes::from_static(b"}\r\n\x1b[2Kx\ry\n\ntail")).unwrap();
        assert_eq!(
            buffer.text(),
            "[pay\\nments] {\"op\":\"get\"}\n[pay\\nments] \\u{1b}[2Kx\\ry\n[pay\\nments] \n"
        );
        drop((out, second));
        assert!(
            buffer.text().ends_with("[pay\\nments] tail\n"),
            "{}",
            buffer.text()
        );
    }

    #[test]
    fn json_lines_hold_the_guest_line_as_a_string_field() {
        let (out, buffer) = framed(OutputFormat::Json);
        out.push(b"{\"time\":\"x\",\"op\":\"get\"}\n").unwrap();
        let text = buffer.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["line"], "{\"time\":\"x\",\"op\":\"get\"}");
        assert_eq!(v["component"], "pay\nments");
        assert_eq!(v["stream"], "stderr");
        assert!(v["timestamp"].is_string() && v.get("op").is_none(), "{v}");
    }

    #[test]
    fn a_long_line_is_cut_into_framed_pieces_on_character_boundaries() {
        let (out, buffer) = framed(OutputFormat::Text);
        let long = "é".repeat(MAX_LINE); // 2 * MAX_LINE bytes
        out.push(long.as_bytes()).unwrap();
        drop(out);
        let text = buffer.text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() >= 2, "{}", lines.len());
        for line in &lines {
            let body = line.strip_prefix("[pay\\nments] ").unwrap();
            assert!(body.len() <= MAX_LINE && !body.contains('\u{fffd}'));
        }
        let joined: String = lines
            .iter()
            .map(|l| l.strip_prefix("[pay\\nments] ").unwrap())
            .collect();
        assert_eq!(joined, long);
    }
}
