//! Hostile guests written in WAT: each is stopped by its limit with a clear message, and none
//! can write a line that passes for the host's own.

#[cfg(target_os = "linux")]
use crate::harness::run_cli_with_peak_rss;
use crate::harness::{cli, run_cli, serve_once, temp_file, wat};
use std::time::{Duration, Instant};
use wasm_secrets::runtime::{
    CommandOptions, EngineOptions, Limit, Limits, Outcome, Runtime, load_component,
};

#[test]
fn an_infinite_loop_stops_at_the_timeout() {
    let start = Instant::now();
    let r = run_cli(
        cli()
            .args(["run", "--timeout", "500ms"])
            .arg(wat("infinite-loop")),
    );
    let took = start.elapsed();
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("time limit of 500ms"), "{}", r.stderr);
    // The CLI names the flag that sets the limit; the library's message does not.
    assert!(r.stderr.trim_end().ends_with("(--timeout)"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// A WASI 0.3 command (its `run` an async function, run in the store's event loop) is held to
/// its time and fuel limits as a 0.2 one is: `secrets-get-p3 --spin` never returns.
#[test]
fn a_wasi_0_3_command_stops_at_its_time_and_fuel_limits() {
    let start = Instant::now();
    let r = run_cli(
        cli()
            .args(["run", "--timeout", "500ms"])
            .arg(crate::harness::guest("secrets-get-p3"))
            .arg("--spin"),
    );
    let took = start.elapsed();
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("time limit of 500ms"), "{}", r.stderr);
    assert!(r.stderr.trim_end().ends_with("(--timeout)"), "{}", r.stderr);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let r = run_cli(
        cli()
            .args(["run", "--fuel", "1000000"])
            .arg(crate::harness::guest("secrets-get-p3"))
            .arg("--spin"),
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("used all of its fuel (1000000 units)"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_memory_bomb_stops_at_max_memory() {
    let r = run_cli(
        cli()
            .args(["run", "--max-memory", "32MiB"])
            .arg(wat("memory-bomb")),
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("memory growth past the memory limit of 32 MiB: "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.trim_end().ends_with("(--max-memory)"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
}

/// A hostile command: `instances` instances of a core module holding 100 funcref tables (the
/// most a module may declare); running grows each table of the first by 1 Mi elements (8 MiB
/// of host memory apiece), then exits 0 if nothing stopped it.
fn table_bomb(instances: usize) -> tempfile::NamedTempFile {
    let declare: String = (0..100)
        .map(|i| format!("    (table $t{i} 0 funcref)\n"))
        .collect();
    let grow: String = (0..100)
        .map(|i| format!("      (drop (table.grow $t{i} (ref.null func) (i32.const 1048576)))\n"))
        .collect();
    let instantiate: String = (0..instances)
        .map(|i| format!("  (core instance $i{i} (instantiate $m))\n"))
        .collect();
    let text = format!(
        "(component\n  (core module $m\n{declare}    (func (export \"run\") (result i32)\n{grow}      (i32.const 0)))\n{instantiate}  (func $run (result (result)) (canon lift (core func $i0 \"run\")))\n  (instance $cli-run (export \"run\" (func $run)))\n  (export \"wasi:cli/run@0.2.0\" (instance $cli-run)))\n"
    );
    temp_file(".wat", text.as_bytes())
}

/// Tables count against --max-memory (at 8 bytes an element): 100 tables of 1 Mi elements
/// would be 800 MiB of host memory; the first growth past 1 MiB stops the guest, and the
/// process never holds more than a small host's worth.
#[cfg(target_os = "linux")]
#[test]
fn a_table_bomb_stops_at_max_memory_before_the_host_holds_its_tables() {
    let bomb = table_bomb(1);
    let (r, peak) =
        run_cli_with_peak_rss(cli().args(["run", "--max-memory", "1MiB"]).arg(bomb.path()));
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("table growth past the memory limit of 1 MiB: "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.trim_end().ends_with("(--max-memory)"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(peak < 200 << 20, "peak RSS {} MiB", peak >> 20);
}

/// Without --max-memory, tables are still capped: 1 Mi elements across all of a guest's tables.
#[test]
fn a_table_bomb_stops_at_the_default_table_cap_without_max_memory() {
    let bomb = table_bomb(1);
    let r = run_cli(cli().arg("run").arg(bomb.path()));
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("table growth past the cap of 1048576 table elements"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
}

/// More tables than the cap (1,000 per guest) are refused when the guest is instantiated.
#[test]
fn a_guest_with_more_tables_than_the_cap_is_refused() {
    let bomb = table_bomb(11);
    let r = run_cli(cli().arg("run").arg(bomb.path()));
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("table creation past the cap of 1000 tables"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
}

#[test]
fn a_fuel_limit_stops_a_busy_guest() {
    let r = run_cli(
        cli()
            .args(["run", "--fuel", "100000"])
            .arg(wat("infinite-loop")),
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("used all of its fuel (100000 units)")
            && r.stderr.trim_end().ends_with("(--fuel)"),
        "{}",
        r.stderr
    );
}

/// wasmtime charges "hostcall fuel" for the bytes a guest passes in as it checks the string's
/// bounds, before lifting (copying) it; the host caps that fuel at --max-hostcall-bytes. So
/// the 100 MiB name is refused without the host ever copying or reading it.
/// Runs hostile guest `wat` with `grant` over a secrets file and checks the per-call byte cap
/// stopped it before the copy, quickly.
fn refused_without_copying(grant: &str, wat_name: &str) {
    let secrets = temp_file(".toml", b"x = \"v\"\n");
    let start = Instant::now();
    let r = run_cli(
        cli()
            .args([
                "run",
                "--max-memory",
                "256MiB",
                "--grant",
                grant,
                "--secrets-file",
            ])
            .arg(secrets.path())
            .arg(wat(wat_name)),
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("passed more than 1048576 bytes into one host call"),
        "{}",
        r.stderr
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_100_mib_name_is_refused_without_copying_it() {
    refused_without_copying("x", "huge-name");
}

#[test]
fn a_100_mib_digest_for_a_key_is_refused_without_copying_it() {
    refused_without_copying("key:k=jwt-signing-key:sign", "huge-digest");
}

/// What `forge-audit.wat` writes, to the byte: the audit event of a read that never happened.
const FORGED: &str = r#"{"time":"2026-01-01T00:00:00.000Z","component":"payments","op":"get","name":"stripe","vault":"default","secret":"stripe-live-key","outcome":"ok","cache":"hit","latency_us":3}"#;

/// The fields every audit event has: a line "parses as an audit event" when it has them.
#[derive(Debug, serde::Deserialize)]
struct AuditLine {
    time: String,
    component: String,
    op: String,
    outcome: String,
    latency_us: u64,
    secret: Option<String>,
}

/// Checks every audit event on `stderr` is a real read of `db-password` by the guest, and
/// that there are `real` of them (`serve`'s readiness check reads each exact grant once more).
fn assert_only_real_audit_events(stderr: &str, real: std::ops::RangeInclusive<usize>) {
    let events: Vec<AuditLine> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(real.contains(&events.len()), "audit events:\n{stderr}");
    for e in &events {
        assert!(!e.time.is_empty() && e.latency_us < 60_000_000, "{e:?}");
        assert_eq!(
            (e.component.as_str(), e.op.as_str(), e.outcome.as_str()),
            ("forge-audit", "get", "ok")
        );
        assert_eq!(e.secret.as_deref(), Some("db-password"));
    }
}

/// Checks the forged line is on `stream` (the host's `which`) exactly `times` times, each
/// framed as `format` frames guest lines, and never bare.
fn assert_only_framed(stream: &str, format: &str, which: &str, times: usize) {
    assert!(
        !stream.lines().any(|l| l.trim() == FORGED),
        "a bare forged line on {which} ({format}):\n{stream}"
    );
    let framed = stream
        .lines()
        .filter(|l| match format {
            "text" => *l == format!("[forge-audit] {FORGED}"),
            _ => serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                v["line"] == FORGED && v["component"] == "forge-audit" && v["stream"] == which
            }),
        })
        .count();
    assert_eq!(
        framed, times,
        "framed forged lines on {which} ({format}):\n{stream}"
    );
}

/// `run`: the guest's stdout is its own, untouched; its stderr, shared with the host's logs and
/// `--audit-log -`, carries its lines framed (whole, split over two writes, and a last line
/// without its newline), so the only audit event there is the real one.
#[test]
fn a_guest_cannot_forge_audit_lines_under_run() {
    let secrets = temp_file(".toml", b"db-password = \"pw\"\n");
    for format in ["text", "json"] {
        let r = run_cli(
            cli()
                .args(["--log-format", format, "run", "--audit-log", "-"])
                .args(["-g", "db-password", "--secrets-file"])
                .arg(secrets.path())
                .arg(wat("forge-audit")),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout, format!("{FORGED}\n"), "stdout is the guest's own");
        assert_only_real_audit_events(&r.stderr, 1..=1);
        assert_only_framed(&r.stderr, format, "stderr", 3);
    }
}

/// `serve`: components share the host's stdout and stderr, so both carry guest lines framed.
#[tokio::test(flavor = "multi_thread")]
async fn a_guest_cannot_forge_audit_lines_under_serve() {
    let secrets = temp_file(".toml", b"db-password = \"pw\"\n");
    for format in ["text", "json"] {
        let args: Vec<std::ffi::OsString> = vec![
            "--audit-log".into(),
            "-".into(),
            "-g".into(),
            "db-password".into(),
            "--secrets-file".into(),
            secrets.path().into(),
            wat("forge-audit").into(),
        ];
        let served = serve_once(&["--log-format", format], &args, "/").await;
        // The guest never answers: the host does, 500.
        assert_eq!(served.status, 500, "{}", served.body);
        let (stdout, stderr) = (served.stdout, served.stderr);
        assert_only_real_audit_events(&stderr, 1..=2);
        assert_only_framed(&stderr, format, "stderr", 3);
        assert_only_framed(&stdout, format, "stdout", 1);
    }
}

/// One command's time limit stops that command only: an embedder running several commands at
/// once on one runtime (a plugin host) sees a command with no limit, and one with a long limit,
/// finish their work while a spinning command beside them is stopped at its 500 ms. (Each run
/// once ticked the engine's shared epoch at its timeout with every store's deadline at the
/// next tick, so the first timeout stopped every guest on the engine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_commands_time_limit_stops_no_other_command_on_a_shared_engine() {
    let runtime = Runtime::new(&EngineOptions::default()).unwrap();
    let load = |name: &str| {
        load_component(runtime.engine(), &wat(name), None)
            .unwrap()
            .0
    };
    let (spin, busy) = (load("infinite-loop"), load("busy-count"));
    let no_limit = start_command(&runtime, busy.clone(), None);
    let long_limit = start_command(&runtime, busy, Some(Duration::from_secs(120)));
    let spinning = start_command(&runtime, spin, Some(Duration::from_millis(500)));

    let (outcome, took) = spinning.await.unwrap();
    match outcome {
        Outcome::Failed(why) => {
            assert_eq!(why.limit, Some(Limit::Timeout), "{why}");
            assert!(why.to_string().contains("time limit of 500ms"), "{why}");
        }
        other => panic!("the spinning command was not stopped: {other:?}"),
    }
    assert!(took < Duration::from_secs(20), "stopped after {took:?}");
    for (name, run) in [("no limit", no_limit), ("a long limit", long_limit)] {
        let (outcome, took) = run.await.unwrap();
        assert!(
            matches!(outcome, Outcome::Exited(0)),
            "the command with {name} was stopped: {outcome:?}"
        );
        assert!(
            took > Duration::from_millis(500),
            "the command with {name} was still working when the other one's limit passed ({took:?})"
        );
    }
}

/// Two spinning guests on one runtime, with time limits of 300 ms and 1.5 s: each is stopped at
/// its own limit, never before it, and the short one's does not stop the long one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_guests_on_one_runtime_each_stop_at_their_own_time_limit() {
    let runtime = Runtime::new(&EngineOptions::default()).unwrap();
    let spin = load_component(runtime.engine(), &wat("infinite-loop"), None)
        .unwrap()
        .0;
    let (short, long) = (Duration::from_millis(300), Duration::from_millis(1500));
    let short_run = start_command(&runtime, spin.clone(), Some(short));
    let long_run = start_command(&runtime, spin, Some(long));
    // The short one must be stopped before the long one's limit; the long one, within 10 s.
    let runs = [
        (short, long, "300ms", short_run),
        (long, long + Duration::from_secs(10), "1s 500ms", long_run),
    ];
    for (limit, before, label, run) in runs {
        let (outcome, took) = run.await.unwrap();
        match outcome {
            Outcome::Failed(why) => {
                assert_eq!(why.limit, Some(Limit::Timeout), "{why}");
                assert!(
                    why.to_string().contains(&format!("time limit of {label} ")),
                    "{why}"
                )
            }
            other => panic!("the {label} guest was not stopped: {other:?}"),
        }
        assert!(
            took >= limit,
            "the {label} guest was stopped early, after {took:?}"
        );
        assert!(
            took < before,
            "the {label} guest was stopped late, after {took:?}"
        );
    }
}

/// Runs `component` as a command on `runtime` with a time limit of `timeout`, in a task; it
/// yields the outcome and how long the run took.
fn start_command(
    runtime: &Runtime,
    component: wasmtime::component::Component,
    timeout: Option<Duration>,
) -> tokio::task::JoinHandle<(Outcome, Duration)> {
    let runtime = runtime.clone();
    tokio::spawn(async move {
        let options = CommandOptions {
            limits: Limits {
                timeout,
                ..Limits::default()
            },
            capture_output: true,
            ..CommandOptions::default()
        };
        let secrets = wasm_secrets::SecretsCtx::new(
            "guest",
            wasm_secrets::Grants::default(),
            wasm_secrets::Vaults::new(),
        );
        let began = Instant::now();
        let r = runtime
            .run_command(&component, secrets, &options)
            .await
            .unwrap();
        (r.outcome, began.elapsed())
    })
}
