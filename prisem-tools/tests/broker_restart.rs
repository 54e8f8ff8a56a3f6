//! PRISEM programs ride through a broker restart: a server and a logmon started before the
//! broker is killed (SIGKILL) and started again keep running, and the server answers again
//! once the broker is back. The only test in this binary, so restarting the shared test broker
//! disturbs no other test (cargo runs test binaries one after the other).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use amqp_test_support::{amqp_url, broker_script, unique_name};
use common::Reaped;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/report.txt");
const MAP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/netmap.txt");

/// Runs anon_client until it succeeds or `within` passes; returns its last exit status and
/// output.
fn call_until_ok(base: &str, within: Duration) -> (i32, String) {
    let started = Instant::now();
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_anon_client"))
            .args([
                "--url",
                &amqp_url(),
                "-q",
                base,
                "-r",
                DATA,
                "-m",
                MAP,
                "-s",
            ])
            .args(["--timeout", "5"])
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        if code == 0 || started.elapsed() > within {
            return (code, String::from_utf8_lossy(&out.stdout).into_owned());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn server_and_logmon_survive_a_broker_kill_and_restart() {
    let base = unique_name("anon-restart");
    let server = Reaped(
        Command::new(env!("CARGO_BIN_EXE_anon_server"))
            .args(["--url", &amqp_url(), "-q", &base, "--workers", "2"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut logmon = Reaped(
        Command::new(env!("CARGO_BIN_EXE_logmon"))
            .args(["--url", &amqp_url()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (code, before) = call_until_ok(&base, Duration::from_secs(20));
    assert_eq!(code, 0, "the server never answered");
    assert!(before.contains("All_Sites:"), "{before}");

    broker_script(&["kill"]);
    broker_script(&["start"]);

    let (code, after) = call_until_ok(&base, Duration::from_secs(60));
    assert_eq!(code, 0, "the server did not answer after the restart");
    assert_eq!(after, before, "the same request gives the same answer");
    let mut server = server;
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "anon_server exited during the restart"
    );
    assert!(
        logmon.0.try_wait().unwrap().is_none(),
        "logmon exited during the restart"
    );
    // SIGTERM: finish, then exit 0.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
