//! systemd's notification protocol: a daemon started against the test broker with
//! `NOTIFY_SOCKET` naming a socket this test binds says `READY=1` once serving,
//! `RELOADING=1` then `READY=1` around a SIGHUP reload, and `STOPPING=1` on SIGTERM; with
//! `JOURNAL_STREAM` naming its standard error, its log lines carry `<N>` priorities.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use amqp_test_support::{amqp_url, unique_name};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: Signal) {
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), sig).unwrap();
}

/// The next state message, or a panic naming what was awaited.
fn next(sock: &UnixDatagram, waiting_for: &str) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no message while waiting for {waiting_for}: {e}"));
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn cifbulk_server_notifies_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_cifbulk_server"))
        .args(["--url", &amqp_url(), "-q", &unique_name("notify")])
        .arg("--store")
        .arg(&store)
        .env("NOTIFY_SOCKET", &path)
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reaped(child);
    assert_eq!(next(&sock, "READY=1"), "READY=1");

    signal(&child.0, Signal::SIGHUP);
    let reloading = next(&sock, "RELOADING=1");
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"), "{reloading:?}");
    let usec = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec.parse::<u64>().unwrap() > 0);
    assert_eq!(next(&sock, "READY=1 after the reload"), "READY=1");

    signal(&child.0, Signal::SIGTERM);
    assert_eq!(next(&sock, "STOPPING=1"), "STOPPING=1");
    assert!(child.0.wait().unwrap().success());
}

/// Runs anon_server with -v until ready, stops it, and returns what it wrote on standard error;
/// with `journal`, JOURNAL_STREAM names that file as systemd names the journal's socket.
fn anon_stderr(journal: bool) -> String {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let err_path = dir.path().join("stderr");
    let err = std::fs::File::create(&err_path).unwrap();
    let meta = err.metadata().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anon_server"));
    cmd.args(["-v", "--url", &amqp_url(), "-q", &unique_name("journal")])
        .env("NOTIFY_SOCKET", &path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    if journal {
        cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    } else {
        // Set but naming another file: not the journal.
        cmd.env(
            "JOURNAL_STREAM",
            format!("{}:{}", meta.dev(), meta.ino() + 1),
        );
    }
    let mut child = Reaped(cmd.spawn().unwrap());
    assert_eq!(next(&sock, "READY=1"), "READY=1");
    signal(&child.0, Signal::SIGTERM);
    assert!(child.0.wait().unwrap().success());
    std::fs::read_to_string(&err_path).unwrap()
}

#[test]
fn journal_lines_carry_priorities_and_others_keep_the_time() {
    let journal = anon_stderr(true);
    assert!(
        journal
            .lines()
            .any(|l| l.starts_with("<6>[+] ") && l.contains("serving")),
        "no <6> info line about serving in {journal:?}"
    );
    assert!(
        journal.lines().all(|l| l.starts_with('<')),
        "a journal line without its priority in {journal:?}"
    );
    let plain = anon_stderr(false);
    assert!(
        plain
            .lines()
            .any(|l| l.starts_with("[+] 20") && l.contains("serving")),
        "no timed [+] line in {plain:?}"
    );
    assert!(
        plain.lines().all(|l| !l.starts_with('<')),
        "priorities outside the journal: {plain:?}"
    );
}

/// The stderr of `program` run with `args` until it exits; with `journal`, JOURNAL_STREAM
/// names that file as systemd names the journal's socket.
fn exit_stderr(program: &str, args: &[&str], journal: bool) -> (Option<i32>, String) {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    let err = std::fs::File::create(&err_path).unwrap();
    let meta = err.metadata().unwrap();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    if journal {
        cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    }
    let status = cmd.status().unwrap();
    (status.code(), std::fs::read_to_string(&err_path).unwrap())
}

#[test]
fn fatal_errors_reach_the_journal_as_errors() {
    let bridge = env!("CARGO_BIN_EXE_syslog-bridge");
    let (code, journal) = exit_stderr(bridge, &[], true);
    assert_eq!(code, Some(2));
    assert!(
        journal.starts_with("<3>syslog-bridge: nothing to listen on"),
        "{journal:?}"
    );
    let (_, plain) = exit_stderr(bridge, &[], false);
    assert!(
        plain.starts_with("syslog-bridge: nothing to listen on"),
        "{plain:?}"
    );

    // A daemon that cannot open its configuration says so at err priority too.
    let blockd = env!("CARGO_BIN_EXE_blockd");
    let (code, journal) = exit_stderr(
        blockd,
        &[
            "--block-command",
            "/nonexistent {ip}",
            "--unblock-command",
            "",
        ],
        true,
    );
    assert_ne!(code, Some(0));
    assert!(journal.starts_with("<3>blockd: "), "{journal:?}");
}

/// Every daemon starts the same way (signals, metrics, broker); a step that fails ends it with
/// status 1 and one line at err priority naming the program and the reason.
#[test]
fn daemons_that_cannot_start_say_why_at_err_priority() {
    // Nothing listens on port 1 of the loopback: the connection is refused at once.
    let refused = ["--url", "amqp://guest:guest@127.0.0.1:1/", "--timeout", "5"];
    let daemons: [(&str, &str, &[&str]); 4] = [
        ("sshwatch", env!("CARGO_BIN_EXE_sshwatch"), &[]),
        ("blockd", env!("CARGO_BIN_EXE_blockd"), &["--dry-run"]),
        (
            "syslog-bridge",
            env!("CARGO_BIN_EXE_syslog-bridge"),
            &["--udp", "127.0.0.1:0"],
        ),
        ("anon_server", env!("CARGO_BIN_EXE_anon_server"), &[]),
    ];
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    for (name, program, extra) in daemons {
        let args = [&refused[..], extra].concat();
        let (code, journal) = exit_stderr(program, &args, true);
        assert_eq!(code, Some(1), "{name}: {journal:?}");
        let want = format!("<3>{name}: cannot connect to the broker");
        assert!(journal.starts_with(&want), "{name}: {journal:?}");

        // The metrics address is checked before the broker is tried.
        let args = [&refused[..], extra, &["--metrics", &taken]].concat();
        let (code, journal) = exit_stderr(program, &args, true);
        assert_eq!(code, Some(1), "{name}: {journal:?}");
        let want = format!("<3>{name}: metrics: cannot listen on {taken}");
        assert!(journal.starts_with(&want), "{name}: {journal:?}");
    }
}
