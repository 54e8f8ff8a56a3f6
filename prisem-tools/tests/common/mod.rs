//! Running the `amqp` binary (and rabbitmq-c's tools) against the test broker.
#![allow(dead_code, unused_imports)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub(crate) use amqp_test_support::{amqp_url, broker_addr, unique_name};

/// The `amqp` binary built by this package.
pub(crate) const AMQP: &str = env!("CARGO_BIN_EXE_amqp");

/// What a run of a program gave back.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }

    /// Standard output as JSON lines.
    pub(crate) fn json_lines(&self) -> Vec<Value> {
        self.stdout_text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }

    /// Panics with the whole output unless the exit status is `code`.
    #[track_caller]
    pub(crate) fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            code,
            "exit status {} (wanted {code}); stdout {:?}; stderr {:?}",
            self.code,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        );
        self
    }

    #[track_caller]
    pub(crate) fn ok(self) -> Self {
        self.expect_code(0)
    }
}

/// Runs a program with `stdin` as its standard input.
pub(crate) fn run_program(program: &str, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run::from(out)
}

/// `amqp ARGS…` against the test broker (AMQP_URL), with empty standard input.
pub(crate) fn amqp(args: &[&str]) -> Run {
    amqp_stdin(args, b"")
}

/// `amqp ARGS…` against the test broker, with `stdin` as standard input.
pub(crate) fn amqp_stdin(args: &[&str], stdin: &[u8]) -> Run {
    let url = amqp_url();
    run_program(
        AMQP,
        args,
        stdin,
        &[("AMQP_URL", &url), ("AMQP_LOG", "warn")],
    )
}

/// `amqp ARGS…` with no AMQP_URL in the environment.
pub(crate) fn amqp_no_env(args: &[&str]) -> Run {
    let mut cmd = Command::new(AMQP);
    cmd.args(args).env_remove("AMQP_URL").stdin(Stdio::null());
    Run::from(cmd.output().unwrap())
}

/// A rabbitmq-c tool (`amqp-publish`, …) against the test broker.
pub(crate) fn rabbitmq_c(tool: &str, args: &[&str], stdin: &[u8]) -> Run {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: the interop tests need rabbitmq-c's tools \
         (Debian package amqp-tools; scripts/install-deps installs it)"
    );
    let url = amqp_url();
    let mut full = vec!["--url", url.as_str()];
    full.extend_from_slice(args);
    run_program(tool, &full, stdin, &[])
}

/// A queue for one test, deleted when dropped.
pub(crate) struct TempQueue(pub String);

impl TempQueue {
    pub(crate) fn new(prefix: &str) -> Self {
        let name = unique_name(prefix);
        amqp(&["declare", "queue", &name]).ok();
        Self(name)
    }

    pub(crate) fn with_args(prefix: &str, extra: &[&str]) -> Self {
        let name = unique_name(prefix);
        let mut args = vec!["declare", "queue", name.as_str()];
        args.extend_from_slice(extra);
        amqp(&args).ok();
        Self(name)
    }

    pub(crate) fn name(&self) -> &str {
        &self.0
    }

    /// Ready messages, from a passive declare.
    pub(crate) fn message_count(&self) -> u64 {
        let run = amqp(&["declare", "queue", &self.0, "--passive", "--json"]).ok();
        run.json_lines()[0]["message_count"].as_u64().unwrap()
    }
}

impl Drop for TempQueue {
    fn drop(&mut self) {
        let _ = amqp(&["delete", "queue", &self.0]);
    }
}
