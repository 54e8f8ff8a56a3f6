//! Progress bars: `amqp publish -l` from a file and `amqp consume --count N` draw one on a
//! terminal (run under `script`, which gives them a pseudo-terminal), and none when standard
//! error is a pipe or with `--quiet`.

mod common;

use std::process::{Command, Stdio};

use common::{amqp_url, unique_name, AMQP};

/// Runs the fixed command line `cmd` under a pseudo-terminal; the values it uses come in as
/// environment variables, so nothing reaches the shell but this constant text.
fn on_a_terminal(cmd: &str, env: &[(&str, &str)]) -> String {
    let out = Command::new("script")
        .args(["-q", "-e", "-c", cmd, "/dev/null"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{cmd}: {:?}\n{text}", out.status);
    text
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
