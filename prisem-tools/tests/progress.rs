//! Progress bars: `amqp publish -l` from a file and `amqp consume --count N` draw one on a
//! terminal (run under `script`, which gives them a pseudo-terminal), and none when standard
//! error is a pipe or with `--quiet`; a PRISEM client shows a spinner while its call is
//! answered.

mod common;

use std::process::{Command, Stdio};

use common::{amqp_url, unique_name, AMQP};

/// Runs the fixed command line `cmd` under a pseudo-terminal; the values it uses come in as
/// environment variables, so nothing reaches the shell but this constant text.
fn on_a_terminal(cmd: &str, env: &[(&str, &str)]) -> String {
    let (ok, text) = on_a_terminal_status(cmd, env);
    assert!(ok, "{cmd} failed:\n{text}");
    text
}

/// Like [`on_a_terminal`], also giving whether the command succeeded.
fn on_a_terminal_status(cmd: &str, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new("script")
        .args(["-q", "-e", "-c", cmd, "/dev/null"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

#[test]
fn progress_on_a_terminal_only() {
    let url = amqp_url();
    let queue = unique_name("progress");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines");
    let lines: String = (0..3000).map(|i| format!("message {i}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let input = input.to_str().unwrap();
    let env = [
        ("AMQP", AMQP),
        ("URL", url.as_str()),
        ("Q", queue.as_str()),
        ("IN", input),
    ];
    let declare = Command::new(AMQP)
        .args(["--url", &url, "declare", "queue", &queue])
        .output()
        .unwrap();
    assert!(declare.status.success(), "{declare:?}");

    // On a terminal: the bar with its counts.
    let shown = on_a_terminal(
        r#""$AMQP" --url "$URL" publish -r "$Q" -l --confirm < "$IN""#,
        &env,
    );
    assert!(
        shown.contains("messages published"),
        "no progress: {shown:?}"
    );
    let shown = on_a_terminal(
        r#""$AMQP" --url "$URL" consume -q "$Q" --count 1000 > /dev/null"#,
        &env,
    );
    assert!(
        shown.contains("/1000 messages consumed"),
        "no progress: {shown:?}"
    );

    // --quiet on a terminal, and a pipe: nothing but what the program says anyway.
    let quiet = on_a_terminal(
        r#""$AMQP" --url "$URL" consume -q "$Q" --count 1000 --quiet > /dev/null"#,
        &env,
    );
    assert!(
        !quiet.contains("messages"),
        "progress despite --quiet: {quiet:?}"
    );
    let piped = Command::new(AMQP)
        .args(["--url", &url, "consume", "-q", &queue, "--count", "1000"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(piped.status.success(), "{piped:?}");
    assert_eq!(String::from_utf8_lossy(&piped.stdout).lines().count(), 1000);
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("messages"),
        "progress on a pipe: {stderr:?}"
    );
    let piped = Command::new(AMQP)
        .args(["--url", &url, "publish", "-r", &queue, "-l", "--confirm"])
        .stdin(std::fs::File::open(input).unwrap())
        .output()
        .unwrap();
    assert!(piped.status.success(), "{piped:?}");
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("messages"),
        "progress on a pipe: {stderr:?}"
    );
    let delete = Command::new(AMQP)
        .args(["--url", &url, "delete", "queue", &queue])
        .output()
        .unwrap();
    assert!(delete.status.success(), "{delete:?}");
}

#[test]
fn client_spinner_on_a_terminal_only() {
    let url = amqp_url();
    let base = unique_name("nobody-serves");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("report.txt");
    std::fs::write(&input, "198.51.100.7 203.0.113.9\n".repeat(20_000)).unwrap();
    let input = input.to_str().unwrap();
    let client = env!("CARGO_BIN_EXE_anon_client");
    let env = [
        ("C", client),
        ("URL", url.as_str()),
        ("B", base.as_str()),
        ("IN", input),
    ];
    // No server on that queue: the call fails ("no server is serving") once the request is
    // returned, the spinner having drawn its first frame on the terminal before.
    let (ok, shown) =
        on_a_terminal_status(r#""$C" --url "$URL" -q "$B" --timeout 1 -r "$IN""#, &env);
    assert!(!ok, "a call nobody answers succeeded: {shown:?}");
    assert!(
        shown.contains("waiting for the reply"),
        "no spinner: {shown:?}"
    );
    let (_, quiet) = on_a_terminal_status(
        r#""$C" --url "$URL" -q "$B" --timeout 1 --quiet -r "$IN""#,
        &env,
    );
    assert!(
        !quiet.contains("waiting for the reply"),
        "spinner despite --quiet: {quiet:?}"
    );

    // A queue that takes the request but nobody answers: the call waits out its timeout, and
    // meanwhile the spinner turns (several frames, the elapsed time counting up); when the
    // call ends it is wiped from the line before the error is written.
    let silent = unique_name("nobody-answers");
    let queue = format!("{silent}_{}", prisem_tools::rpc::PROTOCOL_VERSION);
    let declare = Command::new(AMQP)
        .args(["--url", &url, "declare", "queue", &queue])
        .output()
        .unwrap();
    assert!(declare.status.success(), "{declare:?}");
    // A consumer that takes one request and never answers it.
    let mut taker = Command::new(AMQP)
        .args(["--url", &url, "consume", "-q", &queue, "--count", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let consuming = (0..100).any(|_| {
        let out = Command::new(AMQP)
            .args([
                "--url",
                &url,
                "declare",
                "queue",
                &queue,
                "--passive",
                "--json",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("\"consumer_count\":1")
            || (
                std::thread::sleep(std::time::Duration::from_millis(50)),
                false,
            )
                .1
    });
    assert!(consuming, "the silent consumer never started");
    let env = [
        ("C", client),
        ("URL", url.as_str()),
        ("B", silent.as_str()),
        ("IN", input),
    ];
    let (ok, waited) =
        on_a_terminal_status(r#""$C" --url "$URL" -q "$B" --timeout 2 -r "$IN""#, &env);
    let taken = taker.wait().unwrap();
    let _ = Command::new(AMQP)
        .args(["--url", &url, "delete", "queue", &queue])
        .output();
    assert!(taken.success(), "the silent consumer failed: {taken:?}");
    assert!(!ok, "a call nobody answers succeeded: {waited:?}");
    let frames: std::collections::HashSet<char> = waited
        .split("waiting for the reply")
        .filter_map(|before| {
            // The frame opens each redrawn line: the first non-ASCII character after the last
            // carriage return.
            before.rsplit('\r').next()?.chars().find(|c| !c.is_ascii())
        })
        .collect();
    assert!(
        frames.len() >= 3,
        "the spinner did not turn: {frames:?} in {waited:?}"
    );
    assert!(
        waited.contains("(1s)"),
        "no elapsed time counted: {waited:?}"
    );
    let last_frame = waited.rfind("waiting for the reply").unwrap();
    let error = waited.rfind("anon_client:").unwrap_or(0);
    assert!(error > last_frame, "no error after the spinner: {waited:?}");
    assert!(
        waited[last_frame..error].contains("\x1b[2K"),
        "the spinner was not wiped before the error: {waited:?}"
    );

    let piped = Command::new(client)
        .args(["--url", &url, "-q", &base, "--timeout", "1", "-r", input])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!piped.status.success());
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains("waiting"), "spinner on a pipe: {stderr:?}");
}
