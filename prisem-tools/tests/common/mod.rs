//! Helpers shared by the integration tests: running the `amqp` binary (and rabbitmq-c's
//! tools) against the test broker, daemons that are reaped when a test ends, `syslog-bridge`
//! and its queues, and the Communications Backbone served on loopback.
#![allow(dead_code, unused_imports)]

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use amqp_client::options::{
    ConsumeOptions, ExchangeDeclareOptions, ExchangeKind, QueueDeclareOptions, QueueDeleteOptions,
};
use amqp_client::{Channel, Connection, ConnectionConfig, Consumer, RecoveryPolicy};
use prisem_tools::backbone::store::Store;
use prisem_tools::backbone::{Backbone, Settings};
use prisem_tools::daemon::Shutdown;
use serde_json::Value;
use tokio_tungstenite::tungstenite;

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
        self.passive("message_count")
    }

    /// Consumers, from a passive declare.
    pub(crate) fn consumer_count(&self) -> u64 {
        self.passive("consumer_count")
    }

    fn passive(&self, field: &str) -> u64 {
        let run = amqp(&["declare", "queue", &self.0, "--passive", "--json"]).ok();
        run.json_lines()[0][field].as_u64().unwrap()
    }

    /// Waits (at most 20 s) until the queue has `n` consumers.
    pub(crate) fn wait_for_consumers(&self, n: u64) {
        let started = Instant::now();
        while self.consumer_count() < n {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} never had {n} consumers",
                self.0
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TempQueue {
    fn drop(&mut self) {
        let _ = amqp(&["delete", "queue", &self.0]);
    }
}

// ----- child processes ------------------------------------------------------------------------

/// A child process that is killed and reaped when dropped, so a failing test leaves no daemon
/// running.
pub(crate) struct Reaped(pub(crate) Child);

impl Reaped {
    /// Sends SIGTERM.
    pub(crate) fn sigterm(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }

    /// SIGTERM, then waits (at most `within`) for the exit: the exit status (-1 when a signal
    /// ended it) and standard error (when it was piped and not taken).
    pub(crate) fn stop(mut self, within: Duration) -> (i32, String) {
        self.sigterm();
        let started = Instant::now();
        while self.0.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < within,
                "pid {} did not stop within {within:?} of SIGTERM",
                self.0.id()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut err = String::new();
        if let Some(stderr) = self.0.stderr.as_mut() {
            std::io::Read::read_to_string(stderr, &mut err).unwrap();
        }
        (self.0.wait().unwrap().code().unwrap_or(-1), err)
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin --url AMQP_URL ARGS…` with standard input closed, standard error discarded and
/// standard output as given.
pub(crate) fn spawn_daemon(bin: &str, args: &[&str], stdout: Stdio) -> Reaped {
    Reaped(
        Command::new(bin)
            .args(["--url", &amqp_url()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

pub(crate) use amqp_test_support::free_port;

/// Connects to loopback `port`, trying again for up to 20 s while nothing listens there yet (a
/// daemon that was just started).
pub(crate) fn connect_local(port: u16) -> TcpStream {
    let started = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("nothing listening on 127.0.0.1:{port}: {e}"),
        }
    }
}

/// Waits (at most 10 s) until `queue` has at least `n` consumers: a server under test is
/// serving once its workers consume, which a fixed sleep cannot know on a loaded machine.
pub(crate) async fn wait_for_consumers(conn: &Connection, queue: &str, n: u32) {
    let started = Instant::now();
    loop {
        let ch = conn.open_channel().await.unwrap();
        let opts = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        // A passive declare of a queue not there yet closes the channel: a new one each time.
        if let Ok(info) = ch.queue_declare(queue, opts).await {
            let _ = ch.close().await;
            if info.consumer_count >= n {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{queue} never had {n} consumers"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ----- syslog-bridge --------------------------------------------------------------------------

/// The `syslog-bridge` binary built by this package.
pub(crate) const SYSLOG_BRIDGE: &str = env!("CARGO_BIN_EXE_syslog-bridge");

/// `syslog-bridge --url URL -v --exchange EXCHANGE`, with its standard error (log and stats
/// lines) piped and its standard output discarded; the caller adds the listeners and spawns it.
pub(crate) fn bridge_command(url: &str, exchange: &str) -> Command {
    let mut cmd = Command::new(SYSLOG_BRIDGE);
    cmd.args(["--url", url, "-v", "--exchange", exchange])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Runs util-linux `logger ARGS…`; fails the test unless it succeeds.
pub(crate) fn logger(args: &[&str]) {
    let out: Output = Command::new("logger").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `msg` as an `sshd-session` line at auth.info with `logger` over TCP to loopback `port`.
pub(crate) fn sshd_log(port: u16, msg: &str) {
    logger(&[
        "--tcp",
        "-n",
        "127.0.0.1",
        "-P",
        &port.to_string(),
        "-t",
        "sshd-session",
        "-p",
        "auth.info",
        msg,
    ]);
}

/// Declares a durable topic exchange and a queue (durable or not) bound to it with `#`.
pub(crate) async fn declare_bound_queue(ch: &Channel, exchange: &str, queue: &str, durable: bool) {
    ch.exchange_declare(
        exchange,
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ch.queue_declare(
        queue,
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ch.queue_bind(queue, exchange, "#", Default::default())
        .await
        .unwrap();
}

/// Deletes what [`declare_bound_queue`] declared.
pub(crate) async fn delete_bound_queue(ch: &Channel, exchange: &str, queue: &str) {
    ch.queue_delete(queue, QueueDeleteOptions::default())
        .await
        .unwrap();
    ch.exchange_delete(exchange, Default::default())
        .await
        .unwrap();
}

/// A consumer of `queue` whose deliveries need no acknowledgement.
pub(crate) async fn consume_no_ack(ch: &Channel, queue: &str) -> Consumer {
    ch.basic_consume(
        queue,
        ConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

// ----- the Communications Backbone ------------------------------------------------------------

/// The backbone's API served on a loopback port, its store in a temporary directory.
pub(crate) struct Api {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    /// The admin token the backbone made up at its start, if it did.
    pub(crate) new_admin_token: Option<String>,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// Starts the backbone with `admin` as its admin token, on a connection to the test broker that
/// recovers quickly, and serves its API on a free loopback port.
pub(crate) async fn serve_backbone(admin: &str, token_lifetime: Duration) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("backbone.db"),
        argon2::Params::new(256, 1, 1, None).unwrap(),
    )
    .unwrap();
    let cfg = ConnectionConfig::from_uri(&amqp_url())
        .unwrap()
        .with_recovery(
            RecoveryPolicy::default()
                .with_delays(Duration::from_millis(100), Duration::from_secs(1)),
        );
    let conn = Connection::connect_with(cfg).await.unwrap();
    let bb = Backbone::start(
        store,
        conn,
        Settings {
            token_lifetime,
            token_secret: None,
            admin_token: Some(admin.into()),
        },
    )
    .await
    .unwrap();
    let new_admin_token = bb.new_admin_token.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move { bb.serve(listener, stop).await.unwrap() });
    Api {
        base,
        http: reqwest::Client::new(),
        new_admin_token,
        shutdown,
        task,
        _dir: dir,
    }
}

impl Api {
    /// Shuts the server down and waits for it; fails the test if serving failed.
    pub(crate) async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.unwrap();
    }
}

/// A websocket to the backbone's `/stream`.
pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The handshake request for `/stream{query}`, with `token` as bearer token if given.
pub(crate) fn ws_request(
    api: &Api,
    query: &str,
    token: Option<&str>,
) -> tungstenite::handshake::client::Request {
    use tungstenite::client::IntoClientRequest as _;
    let url = format!("{}/stream{query}", api.base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}
