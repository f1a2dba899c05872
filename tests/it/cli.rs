//! The command line as a new user meets it: the README's run, and bad input.

use crate::harness::{cli, guest, run_cli, temp_file};
use std::path::Path;

fn secrets_file() -> tempfile::NamedTempFile {
    temp_file(
        ".toml",
        b"db-password = \"pw-from-file\"\napi-key = \"key-from-file\"\n",
    )
}

#[test]
fn run_prints_granted_values_and_refuses_the_rest() {
    let s = secrets_file();
    let r = run_cli(
        cli()
            .args(["run", "--secrets-file"])
            .arg(s.path())
            .args(["--grant", "db-password"])
            .arg(guest("secrets-get"))
            .args(["db-password", "api-key"]),
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "db-password=pw-from-file");
    assert!(
        lines[1].starts_with("api-key: not-granted: "),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("key-from-file"));
    assert_eq!(r.code, 1, "the guest's exit code is passed on");
}

#[test]
fn exit_code_zero_when_everything_was_read() {
    let s = secrets_file();
    let r = run_cli(
        cli()
            .args(["run", "--secrets-file"])
            .arg(s.path())
            .args(["-g", "db-password"])
            .arg(guest("secrets-get"))
            .arg("db-password"),
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "db-password=pw-from-file\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn hello_prints_only_a_masked_form() {
    let s = secrets_file();
    let r = run_cli(
        cli()
            .args(["run", "--secrets-file"])
            .arg(s.path())
            .args(["-g", "db-password"])
            .arg(guest("hello")),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("****"), "{}", r.stdout);
    assert!(!r.stdout.contains("pw-from-file") && !r.stderr.contains("pw-from-file"));
}

#[test]
fn config_file_grants_and_limits_apply() {
    let s = secrets_file();
    let config = format!(
        "secrets-file = {:?}\n[components.reader]\nwasm = {:?}\ngrants = [\"pw=db-password\"]\nlimits = {{ timeout = \"30s\" }}\n",
        s.path(),
        guest("secrets-get")
    );
    let c = temp_file(".toml", config.as_bytes());
    let r = run_cli(
        cli()
            .args(["run", "-c"])
            .arg(c.path())
            .args(["reader", "pw", "db-password"]),
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "pw=pw-from-file", "{}", r.stderr);
    assert!(
        lines[1].starts_with("db-password: not-granted"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_second_run_uses_the_compiled_component_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let s = secrets_file();
    let mut runs = (0..2).map(|_| {
        run_cli(
            cli()
                .env("WASM_SECRETS_CACHE_DIR", dir.path())
                .env("WASM_SECRETS_LOG", "debug")
                .args(["run", "--secrets-file"])
                .arg(s.path())
                .arg(guest("secrets-get")),
        )
    });
    let (first, second) = (runs.next().unwrap(), runs.next().unwrap());
    assert!(
        !first
            .stderr
            .contains("loaded compiled component from cache"),
        "{}",
        first.stderr
    );
    assert!(
        second
            .stderr
            .contains("loaded compiled component from cache"),
        "{}",
        second.stderr
    );
    assert_eq!(first.code, 0);
    assert_eq!(second.code, 0);
}

/// Each bad input: a non-zero exit, one line on stderr saying what to do, never a panic.
#[test]
fn bad_input_gets_one_clear_line() {
    let s = secrets_file();
    let text = temp_file(".wasm", b"this is not wasm");
    let core = temp_file(".wasm", b"\0asm\x01\0\0\0");
    let bad_config = temp_file(".toml", b"colour = \"blue\"\n");
    let bad_secrets = temp_file(".toml", b"\"a/b\" = \"topsecret\"\n");
    let sp = s.path().to_str().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["run".into(), "/no/such/file.wasm".into()],
            "cannot read component /no/such/file.wasm",
        ),
        (
            vec![
                "run".into(),
                "--secrets-file".into(),
                sp.into(),
                "--grant".into(),
                "a/b/c".into(),
                guest("secrets-get").display().to_string(),
            ],
            "invalid grant",
        ),
        (
            vec![
                "run".into(),
                "-c".into(),
                bad_config.path().display().to_string(),
                guest("secrets-get").display().to_string(),
            ],
            "unknown field `colour`",
        ),
        (
            vec!["run".into(), text.path().display().to_string()],
            "is not a WebAssembly component",
        ),
        (
            vec!["run".into(), core.path().display().to_string()],
            "is a core WebAssembly module",
        ),
        (
            vec![
                "run".into(),
                "--secrets-file".into(),
                "/no/such/secrets.toml".into(),
                guest("secrets-get").display().to_string(),
            ],
            "cannot read secrets file",
        ),
        (
            vec![
                "run".into(),
                "--secrets-file".into(),
                bad_secrets.path().display().to_string(),
                guest("secrets-get").display().to_string(),
            ],
            "is not a valid name",
        ),
        (
            vec![
                "run".into(),
                "--grant".into(),
                "db-password".into(),
                guest("secrets-get").display().to_string(),
            ],
            "--secrets-file",
        ),
        (
            vec![
                "run".into(),
                "--secrets-file".into(),
                sp.into(),
                "--grant".into(),
                "pay/x".into(),
                guest("secrets-get").display().to_string(),
            ],
            "vault \"pay\", which is not configured",
        ),
        (
            vec![
                "run".into(),
                "--env".into(),
                "=x".into(),
                guest("secrets-get").display().to_string(),
            ],
            "expected NAME=VALUE",
        ),
        (
            vec![
                "run".into(),
                "--dir".into(),
                "/no/such/dir".into(),
                guest("secrets-get").display().to_string(),
            ],
            "is not a directory",
        ),
    ];
    for (args, expect) in cases {
        let r = run_cli(cli().args(&args));
        assert_eq!(r.code, 1, "{args:?}");
        assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(expect),
            "{args:?}: expected {expect:?} in {}",
            r.stderr
        );
        assert_eq!(r.stderr.trim().lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("topsecret"));
    }
    // clap's own usage errors: non-zero, no panic.
    for args in [
        vec!["run", "--timeout", "soon", "x.wasm"],
        vec!["run"],
        vec!["fly"],
    ] {
        let r = run_cli(cli().args(&args));
        assert_eq!(r.code, 2, "{args:?}");
        assert!(!r.stderr.contains("panicked"));
    }
}

#[test]
fn serve_answers_requests_with_granted_secrets_from_the_command_line() {
    use std::io::{BufRead, BufReader, Read, Write};
    let s = secrets_file();
    let mut child = cli()
        .args(["serve", "--addr", "127.0.0.1:0", "--secrets-file"])
        .arg(s.path())
        .args(["--grant", "db-password"])
        .arg(guest("http-hello"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    let ask = |path: &str| {
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    };
    let ok = ask("/db-password");
    let denied = ask("/api-key");
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(
        ok.contains("hello: read secret 'db-password' (12 characters)"),
        "{ok}"
    );
    assert!(denied.starts_with("HTTP/1.1 403"), "{denied}");
    assert!(!ok.contains("pw-from-file") && !denied.contains("key-from-file"));
}

#[test]
fn a_whole_vault_grant_needs_the_opt_in() {
    let s = secrets_file();
    for grant in ["*", "default/*"] {
        let r = run_cli(
            cli()
                .args(["run", "--secrets-file"])
                .arg(s.path())
                .args(["--grant", grant])
                .arg(guest("secrets-get"))
                .arg("db-password"),
        );
        assert_eq!(r.code, 1, "{grant}: {}", r.stderr);
        assert_eq!(r.stdout, "", "the guest never ran");
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {}", r.stderr);
        assert!(
            lines[0].contains("--allow-whole-vault")
                && lines[0].contains("allow-whole-vault = true"),
            "{}",
            lines[0]
        );
    }
    // With the flag: it works, and says so once on stderr.
    let r = run_cli(
        cli()
            .args(["run", "--allow-whole-vault", "--secrets-file"])
            .arg(s.path())
            .args(["--grant", "*"])
            .arg(guest("secrets-get"))
            .args(["db-password", "api-key"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "db-password=pw-from-file\napi-key=key-from-file\n"
    );
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    assert!(warnings[0].contains("allow-whole-vault"), "{}", warnings[0]);
    // In the config: allow-whole-vault = true on the component.
    let config = format!(
        "secrets-file = {:?}\n[components.reader]\nwasm = {:?}\ngrants = [\"*\"]\nallow-whole-vault = true\n",
        s.path(),
        guest("secrets-get")
    );
    let c = temp_file(".toml", config.as_bytes());
    let r = run_cli(
        cli()
            .args(["run", "-c"])
            .arg(c.path())
            .args(["reader", "api-key"]),
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "api-key=key-from-file\n"),
        "{}",
        r.stderr
    );
    // A prefix grant is not a whole vault and needs nothing.
    let r = run_cli(
        cli()
            .args(["run", "--secrets-file"])
            .arg(s.path())
            .args(["--grant", "db-*"])
            .arg(guest("secrets-get"))
            .arg("db-password"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("warning:"), "{}", r.stderr);
}

#[test]
fn a_request_that_cannot_be_audited_is_refused() {
    // /dev/full takes the open and fails every write (ENOSPC): a full disk.
    let s = secrets_file();
    let r = run_cli(
        cli()
            .args(["run", "--audit-log", "/dev/full", "--secrets-file"])
            .arg(s.path())
            .args(["--grant", "db-password"])
            .arg(guest("secrets-get"))
            .arg("db-password"),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("db-password: unavailable: the request for \"db-password\" was refused: the host cannot write its audit log"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("pw-from-file") && !r.stderr.contains("pw-from-file"));
    // The same request with a writable log is served.
    let log = tempfile::NamedTempFile::new().unwrap();
    let r = run_cli(
        cli()
            .args(["run", "--audit-log"])
            .arg(log.path())
            .arg("--secrets-file")
            .arg(s.path())
            .args(["--grant", "db-password"])
            .arg(guest("secrets-get"))
            .arg("db-password"),
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "db-password=pw-from-file\n"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(log.path()).unwrap().lines().count(),
        1
    );
}

/// `info` and `list` are audited like `get`, and refused like it when their line cannot be
/// written: a guest learns neither a secret's metadata nor which names exist.
#[test]
fn info_and_list_that_cannot_be_audited_are_refused() {
    let s = secrets_file();
    let secrets_get = |log: &Path, args: &[&str]| {
        run_cli(
            cli()
                .args(["run", "--audit-log"])
                .arg(log)
                .arg("--secrets-file")
                .arg(s.path())
                .args(["--grant", "db-password"])
                .arg(guest("secrets-get"))
                .args(args),
        )
    };
    let refused = "unavailable: the request for";
    let full = Path::new("/dev/full");
    let r = secrets_get(full, &["--info", "db-password"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(&format!("db-password: {refused}"))
            && r.stdout.contains("the host cannot write its audit log"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("version="), "{}", r.stdout);
    let r = secrets_get(full, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(&format!("list: {refused}"))
            && r.stdout.contains("the host cannot write its audit log"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("db-password"), "{}", r.stdout);

    // The same requests with a writable log are served, one line each.
    let log = tempfile::NamedTempFile::new().unwrap();
    let r = secrets_get(log.path(), &["--info", "db-password"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("name=db-password\n"), "{}", r.stdout);
    let r = secrets_get(log.path(), &[]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "db-password\n"),
        "{}",
        r.stderr
    );
    let ops: Vec<String> = std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["op"].to_string())
        .collect();
    assert_eq!(ops, ["\"info\"", "\"list\""]);
}

/// A folder holding `app.toml` (with `body` after a secrets-file line), the secrets file, and
/// `some/dir/api.wasm`, a copy of guest `copy`.
fn app_dir(body: &str, copy: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "db-password = \"pw-from-file\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app.toml"),
        format!("secrets-file = \"s.toml\"\n{body}"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("some/dir")).unwrap();
    std::fs::copy(guest(copy), dir.path().join("some/dir/api.wasm")).unwrap();
    dir
}

/// `[components.api]` grants `db-password` to the entry named `api`; a file named `api.wasm`
/// is not that entry and gets none of its grants.
fn api_entry(wasm: &str) -> String {
    format!(
        "[components.api]\nwasm = {:?}\ngrants = [\"db-password\"]\n",
        guest(wasm).display()
    )
}

#[test]
fn run_gives_an_entrys_grants_only_to_its_name_never_to_a_file_of_that_name() {
    let dir = app_dir(&api_entry("secrets-get"), "secrets-get");
    let config = dir.path().join("app.toml");
    let r = run_cli(
        cli()
            .arg("run")
            .arg("-c")
            .arg(&config)
            .arg(dir.path().join("some/dir/api.wasm"))
            .arg("db-password"),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("db-password: not-granted: "),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("to use [components.api], give its name: api"),
        "{}",
        r.stderr
    );
    let r = run_cli(
        cli()
            .arg("run")
            .arg("-c")
            .arg(&config)
            .args(["api", "db-password"]),
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "db-password=pw-from-file\n"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("warning:"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_gives_an_entrys_grants_only_to_its_name_never_to_a_file_of_that_name() {
    let dir = app_dir(&api_entry("http-hello"), "http-hello");
    let config = dir.path().join("app.toml");
    let file = crate::harness::serve_once(
        &[],
        &[
            "-c".into(),
            config.clone().into(),
            dir.path().join("some/dir/api.wasm").into(),
        ],
        "/db-password",
    )
    .await;
    assert_eq!(file.status, 403, "{}", file.body);
    assert!(file.body.starts_with("not-granted: "), "{}", file.body);
    let entry = crate::harness::serve_once(
        &[],
        &["-c".into(), config.into(), "api".into()],
        "/db-password",
    )
    .await;
    assert_eq!(
        (entry.status, entry.body.as_str()),
        (200, "hello: read secret 'db-password' (12 characters)\n")
    );
}

/// Two entries running one `.wasm` are told apart in the audit log: it names the entry.
#[test]
fn the_audit_log_names_the_config_entry_not_the_file() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let wasm = guest("secrets-get");
    let body = format!(
        "audit-log = {:?}\n\
         [components.reader-a]\nwasm = {:?}\ngrants = [\"db-password\"]\n\
         [components.reader-b]\nwasm = {:?}\ngrants = [\"db-password\"]\n",
        log.path().display(),
        wasm.display(),
        wasm.display()
    );
    let dir = app_dir(&body, "secrets-get");
    for entry in ["reader-a", "reader-b"] {
        let r = run_cli(
            cli()
                .arg("run")
                .arg("-c")
                .arg(dir.path().join("app.toml"))
                .args([entry, "db-password"]),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let components: Vec<String> = std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["component"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(components, ["reader-a", "reader-b"]);
}
