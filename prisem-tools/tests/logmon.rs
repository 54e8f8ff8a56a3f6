//! `logmon` against the test broker: it prints, in order, what pika programs (all three line
//! shapes), a PRISEM client, a PRISEM server and `logmon -s` publish, with the senders' times.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use amqp_client::Connection;
use amqp_test_support::{amqp_url, unique_name};
use prisem_tools::daemon::Shutdown;
use prisem_tools::dimslog::Logger;
use prisem_tools::identity::Identity;
use prisem_tools::rpc::{AppData, Reply, Server, ServerConfig, Service, ServiceError};

const LOGMON: &str = env!("CARGO_BIN_EXE_logmon");
const GUID: &str = "76f1f5bb-19b2-4696-adbc-b5598cb35d1a";

struct Monitor {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The test's own log exchange, so parallel tests do not see each other's lines.
    exchange: String,
}

impl Monitor {
    /// Starts `logmon -v ARGS` and waits until it is bound to the exchange.
    fn start(args: &[&str]) -> Self {
        let exchange = unique_name("logs");
        let mut child = Command::new(LOGMON)
            .args(["-v", "--url", &amqp_url(), "-l", &exchange])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("monitoring exchange") {
            line.clear();
            assert_ne!(err.read_line(&mut line).unwrap(), 0, "logmon ended early");
        }
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            exchange,
        }
    }

    /// Lines printed until one contains `marker` (which is included).
    fn until(&self, marker: &str) -> Vec<String> {
        self.until_all(&[marker])
    }

    /// Lines printed until every marker was seen (in any order).
    fn until_all(&self, markers: &[&str]) -> Vec<String> {
        let mut got: Vec<String> = Vec::new();
        while !markers.iter().all(|m| got.iter().any(|l| l.contains(m))) {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("not all of {markers:?}; got {got:#?}"));
            got.push(l);
        }
        got
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pika_log(exchange: &str, lines: &[&str]) {
    let status =
        Command::new(std::env::var("PIKA_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into()))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/pika/contract_log.py"
            ))
            .arg(amqp_url())
            .arg(exchange)
            .args(lines)
            .status()
            .unwrap();
    assert!(status.success());
}

#[test]
fn prints_the_three_shapes_from_pika_with_the_senders_time() {
    let m = Monitor::start(&["--display-utc"]);
    let marker = unique_name("end");
    pika_log(&m.exchange, &[
        &format!("2014-11-05T17:01:53.628154-08:00 27b-6.local {GUID} logmon INFO first line"),
        &format!("2014-11-05T17:01:54-08:00 h.localdomain {GUID} anon_client [-] [4242] WARNING second"),
        &format!("{GUID}: third, from a server"),
        "nospaces",
        &marker,
    ]);
    let got = m.until(&marker);
    assert_eq!(
        got,
        [
            format!("2014-11-06T01:01:53.628154+00:00 27b-6.local {GUID} logmon INFO first line"),
            format!("2014-11-06T01:01:54.000000+00:00 h.localdomain {GUID} anon_client [-] [4242] WARNING second"),
            format!("{GUID}: third, from a server"),
            "nospaces".to_owned(),
            marker,
        ]
    );
}

#[test]
fn filters_and_appends_to_the_log_file() {
    let file = std::env::temp_dir().join(format!("{}.log", unique_name("logmon")));
    let m = Monitor::start(&[
        "--level",
        "warning",
        "--grep",
        "keep|MARK",
        "--log",
        "--logfile",
        file.to_str().unwrap(),
    ]);
    let marker = format!("MARK-{}", unique_name("m"));
    pika_log(
        &m.exchange,
        &[
            &format!("2014-11-05T17:01:53Z h {GUID} c ERROR keep me"),
            &format!("2014-11-05T17:01:53Z h {GUID} c INFO keep? no: too low"),
            &format!("2014-11-05T17:01:53Z h {GUID} c ERROR drop me"),
            &format!("2014-11-05T17:01:53Z h {GUID} c CRITICAL {marker}"),
        ],
    );
    let got = m.until(&marker);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[0].ends_with("ERROR keep me"));
    drop(m);
    let logged = std::fs::read_to_string(&file).unwrap();
    assert_eq!(logged.lines().collect::<Vec<_>>(), got);
    let _ = std::fs::remove_file(file);
}

struct Echo;

impl Service for Echo {
    async fn handle(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        Ok(Reply::ok(appdata.file("data")?))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_then_server_then_logmon_send_in_order() {
    let m = Monitor::start(&[]);
    let base = unique_name("logged");
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let identity = Identity::new("logged_server", "localdomain");
    let logger = Arc::new(Logger::start(&conn, &m.exchange, identity).await);
    let server = Server::new(Echo, ServerConfig::new(&base), Arc::clone(&logger));
    let shutdown = Shutdown::new();
    let (c, s) = (conn.clone(), shutdown.clone());
    let task = tokio::spawn(async move { server.run(&c, &s).await });
    let served = m.until(&format!("serving {base}_0.5.5"));
    assert!(served
        .iter()
        .any(|l| l.contains("logged_server INFO started program=logged_server")));

    let call = tokio::process::Command::new(env!("CARGO_BIN_EXE_prisem"))
        .args(["call", &base, "--url", &amqp_url(), "--appdata", "{}"])
        .env("RPC_LOGEXCHANGE", &m.exchange)
        .output()
        .await
        .unwrap();
    assert!(call.status.success(), "{call:?}");
    // The client's last line and the server's line race each other to the exchange.
    let client_done = format!("{base}_0.5.5 answered with retcode 0");
    let client_lines = m.until_all(&[&client_done, "answered with retcode 0 in"]);
    let find = |needle: &str| {
        client_lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in {client_lines:#?}"))
    };
    let started = find(&format!("{base}_client INFO started program={base}_client"));
    let calling = find(&format!("{base}_client INFO calling {base}_0.5.5"));
    let answered = find("answered with retcode 0 in");
    assert!(started < calling && calling < answered, "{client_lines:#?}");

    let mut send = Command::new(LOGMON)
        .args([
            "--url",
            &amqp_url(),
            "-s",
            "-",
            "--level",
            "notice",
            "-l",
            &m.exchange,
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    send.stdin
        .take()
        .unwrap()
        .write_all(b"sent one\n\nsent two\n")
        .unwrap();
    assert!(send.wait().unwrap().success());
    let sent = m.until("logmon NOTICE sent two");
    let n = sent.len();
    assert!(
        n >= 2 && sent[n - 2].ends_with("logmon NOTICE sent one"),
        "{sent:#?}"
    );

    shutdown.trigger();
    task.await.unwrap().unwrap();
}
