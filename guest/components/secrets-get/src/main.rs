//! `secrets-get`: a command that prints the secrets it is asked for, for tests, demos and debugging.
//!
//! ```text
//! secrets-get                      the names this component may read, one per line
//! secrets-get NAME...              NAME=VALUE for each name
//! secrets-get NAME@VERSION         NAME@VERSION=VALUE, one version of a secret
//! secrets-get --info NAME          the metadata of NAME as key=value lines, never the value
//! ```
//!
//! A failure prints `NAME: <error-kind>: <message>` (or `list: ...`), on stdout like the values so
//! that the output keeps the order of the arguments. The exit code is 1 if anything failed, 2 for a
//! usage error, 0 otherwise. `--` ends the options, for names that start with `-`. (Rust's std for
//! wasm32-wasip2 reports every non-zero code as 1 today: its WASI bindings predate
//! `exit-with-code`. The Python and JavaScript twins call it and exit 2.)

use std::io::{self, Write};
use std::process::ExitCode;

use wasm_secrets_guest::{Error, SecretInfo};

const USAGE: &str = "usage: secrets-get [NAME | NAME@VERSION | --info NAME]... [-- NAME...]";

/// One thing asked for on the command line.
enum Request {
    Get(String),
    GetVersion { name: String, version: String },
    Info(String),
}

impl Request {
    /// How the request is named in the output: the argument as given.
    fn label(&self) -> String {
        match self {
            Request::Get(name) | Request::Info(name) => name.clone(),
            Request::GetVersion { name, version } => format!("{name}@{version}"),
        }
    }

    /// Asks the host and returns the lines to print.
    fn run(&self) -> Result<Vec<String>, Error> {
        Ok(match self {
            Request::Get(name) => vec![format!(
                "{}={}",
                self.label(),
                wasm_secrets_guest::get(name)?
            )],
            Request::GetVersion { name, version } => {
                let value = wasm_secrets_guest::get_version(name, version)?;
                vec![format!("{}={value}", self.label())]
            }
            Request::Info(name) => info_lines(&wasm_secrets_guest::info(name)?),
        })
    }
}

/// The metadata as `key=value` lines; an absent optional field prints as `key=`, each tag as
/// `tag.KEY=VALUE`.
fn info_lines(info: &SecretInfo) -> Vec<String> {
    let time = |t: Option<u64>| t.map(|t| t.to_string()).unwrap_or_default();
    let mut lines = vec![
        format!("name={}", info.name),
        format!("version={}", info.version),
        format!("enabled={}", info.enabled),
        format!(
            "content-type={}",
            info.content_type.as_deref().unwrap_or_default()
        ),
        format!("not-before={}", time(info.not_before)),
        format!("expires={}", time(info.expires)),
        format!("created={}", time(info.created)),
        format!("updated={}", time(info.updated)),
    ];
    lines.extend(info.tags.iter().map(|(k, v)| format!("tag.{k}={v}")));
    lines
}

/// Turns the arguments into requests, or says what is wrong with them.
fn parse(args: impl IntoIterator<Item = String>) -> Result<Vec<Request>, String> {
    let mut requests = Vec::new();
    let mut args = args.into_iter();
    let mut options = true;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--" if options => options = false,
            "--info" if options => {
                let name = args.next().ok_or("--info needs a NAME")?;
                requests.push(Request::Info(name));
            }
            _ => match arg.split_once('@') {
                Some((name, version)) => requests.push(Request::GetVersion {
                    name: name.to_owned(),
                    version: version.to_owned(),
                }),
                None => requests.push(Request::Get(arg)),
            },
        }
    }
    Ok(requests)
}

/// Prints the answers to `requests`, or the list of names if there are none. Returns whether
/// everything succeeded.
fn run(requests: &[Request], out: &mut impl Write) -> io::Result<bool> {
    if requests.is_empty() {
        return match wasm_secrets_guest::list() {
            Ok(names) => {
                for name in names {
                    writeln!(out, "{name}")?;
                }
                Ok(true)
            }
            Err(err) => {
                writeln!(out, "list: {err}")?;
                Ok(false)
            }
        };
    }
    let mut all_ok = true;
    for request in requests {
        match request.run() {
            Ok(lines) => {
                for line in lines {
                    writeln!(out, "{line}")?;
                }
            }
            Err(err) => {
                all_ok = false;
                writeln!(out, "{}: {err}", request.label())?;
            }
        }
    }
    Ok(all_ok)
}

pub(crate) fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let requests = match parse(args) {
        Ok(requests) => requests,
        Err(msg) => {
            eprintln!("secrets-get: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut out = io::stdout().lock();
    match run(&requests, &mut out).and_then(|ok| out.flush().map(|()| ok)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("secrets-get: cannot write to stdout: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(args: &[&str]) -> Vec<String> {
        let requests = parse(args.iter().map(|a| a.to_string())).unwrap();
        requests
            .iter()
            .map(|r| match r {
                Request::Info(name) => format!("info {name}"),
                other => other.label(),
            })
            .collect()
    }

    #[test]
    fn parses_names_versions_and_info() {
        assert_eq!(
            labels(&["a", "b@0123", "--info", "c", "--", "--info"]),
            ["a", "b@0123", "info c", "--info"]
        );
        assert!(labels(&[]).is_empty());
        assert!(parse(["--info".to_string()]).is_err());
    }

    #[test]
    fn info_never_prints_a_value_and_lists_every_field() {
        let info = SecretInfo {
            name: "db".into(),
            version: "v1".into(),
            content_type: None,
            enabled: true,
            not_before: None,
            expires: Some(2_000_000_000),
            created: Some(1),
            updated: Some(2),
            tags: vec![("env".into(), "prod".into())],
        };
        assert_eq!(
            info_lines(&info),
            [
                "name=db",
                "version=v1",
                "enabled=true",
                "content-type=",
                "not-before=",
                "expires=2000000000",
                "created=1",
                "updated=2",
                "tag.env=prod",
            ]
        );
    }
}
