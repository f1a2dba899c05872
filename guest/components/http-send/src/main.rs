//! `http-send [-X METHOD] [-H 'NAME: VALUE']... [--bearer NAME] [-d BODY] [--repeat N] [--dump-memory] URL`:
//! sends one request (or N alike, one after another) through `wasi:http/outgoing-handler` with
//! exactly the headers and body given, and prints everything the last one received, so a test
//! can look for a value in all of it:
//!
//! ```text
//! status: 200
//! header: content-type: text/plain
//! body: <the whole body>
//! ```
//!
//! or `error: <why>` (exit 1). A header may hold a `{{secret:NAME}}` marker: the host replaces
//! it with a use-only secret this guest never sees; `--bearer NAME` adds `Authorization: Bearer`
//! with the marker made by the SDK (`wasm_secrets_guest::use_secret`). `--dump-memory` then prints the guest's
//! whole linear memory, hex-encoded, on a line `memory: ...`: every string it ever held.

use std::process::ExitCode;
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

struct Args {
    method: Method,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    dump_memory: bool,
    repeat: usize,
    url: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut method = Method::Get;
    let mut headers = Vec::new();
    let mut body = Vec::new();
    let mut dump_memory = false;
    let mut repeat = 1;
    let mut url = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-X" => {
                method = match args.next().as_deref() {
                    Some("GET") => Method::Get,
                    Some("POST") => Method::Post,
                    Some("PUT") => Method::Put,
                    Some(other) => Method::Other(other.to_string()),
                    None => return Err("-X needs a method".into()),
                }
            }
            "-H" => {
                let h = args.next().ok_or("-H needs NAME: VALUE")?;
                let (name, value) = h.split_once(':').ok_or("-H needs NAME: VALUE")?;
                headers.push((name.trim().to_string(), value.trim().as_bytes().to_vec()));
            }
            "--bearer" => {
                let name = args.next().ok_or("--bearer needs a secret's name")?;
                let marker = wasm_secrets_guest::use_secret(&name).map_err(|e| e.to_string())?;
                headers.push((
                    "authorization".into(),
                    format!("Bearer {marker}").into_bytes(),
                ));
            }
            "-d" => body = args.next().ok_or("-d needs a body")?.into_bytes(),
            "--dump-memory" => dump_memory = true,
            "--repeat" => {
                repeat = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n >= 1)
                    .ok_or("--repeat needs a count of at least 1")?
            }
            _ if url.is_none() => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    Ok(Args {
        method,
        headers,
        body,
        dump_memory,
        repeat,
        url: url.ok_or(
            "usage: http-send [-X METHOD] [-H 'NAME: VALUE']... [-d BODY] [--dump-memory] URL",
        )?,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut result = Ok(());
    for i in 1..=args.repeat {
        result = send(&args, i == args.repeat);
        if result.is_err() {
            break;
        }
    }
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    };
    if args.dump_memory {
        dump_memory();
    }
    code
}

/// Sends the request; prints what came back if `show`, else only a non-2xx status.
fn send(args: &Args, show: bool) -> Result<(), String> {
    let (scheme, rest) = args.url.split_once("://").ok_or("not an absolute URL")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let headers = Fields::from_list(&args.headers).map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let set = request.set_method(&args.method).is_ok()
        && request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(authority)).is_ok()
        && request.set_path_with_query(Some(path)).is_ok();
    if !set {
        return Err(format!("invalid URL {}", args.url));
    }
    let body = request.body().map_err(|()| "request body taken")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| e.to_string())?;
    {
        let out = body.write().map_err(|()| "request stream taken")?;
        for chunk in args.body.chunks(4096) {
            out.blocking_write_and_flush(chunk)
                .map_err(|e| format!("writing the body: {e:?}"))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| e.to_string())?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(e.to_string()),
        Some(Err(())) | None => return Err("no response".into()),
    };
    let status = response.status();
    if !show && !(200..300).contains(&status) {
        return Err(format!("status {status}"));
    }
    if show {
        println!("status: {status}");
        for (name, value) in response.headers().entries() {
            println!("header: {name}: {}", String::from_utf8_lossy(&value));
        }
    }
    let incoming = response.consume().map_err(|()| "response body taken")?;
    let stream = incoming.stream().map_err(|()| "response stream taken")?;
    let mut got = Vec::new();
    loop {
        match stream.blocking_read(65536) {
            Ok(chunk) => got.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
    if show {
        println!("body: {}", String::from_utf8_lossy(&got));
    }
    drop(stream);
    drop(incoming);
    drop(response);
    Ok(())
}

/// Prints the whole linear memory (from address 1: address 0 cannot be read from Rust).
fn dump_memory() {
    use std::io::Write;
    let size = core::arch::wasm32::memory_size(0) * 65536;
    // SAFETY: every address below the memory's size is readable in wasm; nothing writes to
    // this memory while the slice lives except the printing below, whose own buffers may
    // change under it (that only changes what is printed).
    // Address 1, not a dangling pointer: it is the start of what is read.
    #[allow(clippy::manual_dangling_ptr)]
    let memory = unsafe { core::slice::from_raw_parts(1 as *const u8, size - 1) };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b"memory: ");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in memory.chunks(32768) {
        let hex: Vec<u8> = chunk
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
            .collect();
        let _ = out.write_all(&hex);
    }
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}
