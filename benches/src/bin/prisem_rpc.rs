//! PRISEM RPC benchmark: round trips per second and latency of 1 KB requests to a trivial echo
//! service, our `rpc::Server` against a pool of pika workers written to the same contract, in
//! the same run.
//!
//! ```text
//! cargo run --release -p benches --bin prisem_rpc -- --calls 5000 --workers 1,2,4
//! ```
//!
//! The load is the same for both: one `rpc::Client` keeping `--in-flight` calls outstanding on
//! one connection. Our server runs in a child process (this binary with a hidden `--serve-echo`
//! flag) with `N` workers (channels); the pika pool is `N` processes of
//! `prisem-tools/tests/pika/contract_server.py --echo`, each with its own connection, prefetch
//! 1 and manual ack, as the originals ran. The server columns are the CPU the server processes
//! used per request over the measured interval.
#![forbid(unsafe_code)]

#[allow(dead_code)]
#[path = "../e2e/stats.rs"]
mod stats;
#[allow(dead_code)]
#[path = "../e2e/usage.rs"]
mod usage;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amqp_client::Connection;
use clap::Parser;
use prisem_tools::daemon::Shutdown;
use prisem_tools::dimslog::Logger;
use prisem_tools::identity::Identity;
use prisem_tools::rpc::{
    queue_name, AppData, Client, Reply, Server, ServerConfig, Service, ServiceError,
};
use stats::{percentile, sorted_micros, Align, Table};

/// PRISEM RPC round trips: our server vs a pika worker pool.
#[derive(Debug, Parser)]
struct Args {
    /// Broker URI [default: $AMQP_URL].
    #[arg(long, env = "AMQP_URL", hide_env_values = true)]
    url: String,
    /// Measured calls per run.
    #[arg(long, default_value_t = 5000)]
    calls: usize,
    /// Calls kept in flight.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// Request size (bytes of `data` before base64).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Worker counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    workers: Vec<usize>,
    /// Rounds (each measures every worker count for both servers).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The Python with pika.
    #[arg(long, default_value = "/usr/bin/python3")]
    python: String,
    /// Also write the table as Markdown here.
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
    /// The broker's pid, for its CPU per request [default: $BENCH_BROKER_PID].
    #[arg(long, env = "BENCH_BROKER_PID")]
    broker_pid: Option<u32>,
    /// Measure the anon service instead of the echo: this `anon_server` binary with N workers,
    /// each request the sample report and network map of prisem-tools/data with stats (no
    /// pika row: there is no pika anon).
    #[arg(long, value_name = "PATH")]
    anon_server: Option<std::path::PathBuf>,
    /// Internal: serve the echo service on this queue base.
    #[arg(long, hide = true)]
    serve_echo: Option<String>,
}

struct Echo;

impl Service for Echo {
    async fn handle(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        Ok(Reply::ok(appdata.file("data")?))
    }
}

/// The child side: our echo server until SIGTERM.
async fn serve_echo(url: &str, base: &str, workers: usize) -> ExitCode {
    let Ok(conn) = Connection::connect(url).await else {
        eprintln!("cannot connect");
        return ExitCode::FAILURE;
    };
    let Ok(shutdown) = Shutdown::on_signals() else {
        return ExitCode::FAILURE;
    };
    let mut config = ServerConfig::new(base);
    config.workers = workers;
    let logger = Arc::new(Logger::tracing_only(Identity::for_program("echo")));
    let server = Server::new(Echo, config, logger);
    let s = shutdown.clone();
    let c = conn.clone();
    let task = tokio::spawn(async move { server.run(&c, &s).await });
    wait_consumers(&conn, &queue_name(base), workers).await;
    println!("ready");
    match task.await {
        Ok(Ok(_)) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Waits until `queue` has `n` consumers (a passive declare of a queue not yet declared closes
/// its channel, so each probe has its own).
async fn wait_consumers(conn: &Connection, queue: &str, n: usize) {
    for _ in 0..400 {
        if let Ok(probe) = conn.open_channel().await {
            let opts = amqp_client::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            if let Ok(i) = probe.queue_declare(queue, opts).await {
                let _ = probe.close().await;
                if i.consumer_count as usize >= n {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Pool(Vec<Child>);

impl Drop for Pool {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Pool {
    /// Starts the servers; with `ready_line`, waits for each to print "ready".
    fn start(mut commands: Vec<Command>, ready_line: bool) -> Result<Self, String> {
        let mut pool = Self(Vec::new());
        for cmd in &mut commands {
            let mut child = cmd
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
            if !ready_line {
                pool.0.push(child);
                continue;
            }
            let mut line = String::new();
            let out = child.stdout.take().ok_or("no stdout")?;
            pool.0.push(child);
            BufReader::new(out)
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            if line.trim() != "ready" {
                return Err(format!("{cmd:?} did not get ready"));
            }
        }
        Ok(pool)
    }

    fn cpu(&self) -> Duration {
        self.0
            .iter()
            .filter_map(|c| usage::process_cpu(c.id()).ok())
            .sum()
    }
}

struct Outcome {
    rate: f64,
    p50: f64,
    p99: f64,
    server_us: f64,
    /// Broker CPU per request and its average use of a core, when its pid is known.
    broker: Option<(f64, f64)>,
}

fn broker_cpu(pid: Option<u32>) -> Option<Duration> {
    usage::process_cpu(pid?).ok()
}

async fn measure(
    args: &Args,
    client: &Arc<Client>,
    queue: &str,
    pool: &Pool,
) -> Result<Outcome, String> {
    let appdata = request(args)?;
    let limit = Duration::from_secs(60);
    // Warm-up: connections, JIT of the Python side, the queue's first messages.
    for _ in 0..100 {
        client
            .call(queue, appdata.clone(), limit)
            .await
            .map_err(|e| e.to_string())?;
    }
    let cpu0 = pool.cpu();
    let broker0 = broker_cpu(args.broker_pid);
    let started = Instant::now();
    let per_task = args.calls.div_ceil(args.in_flight.max(1));
    let anon = args.anon_server.is_some();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.in_flight.max(1) {
        let (client, queue, appdata) = (Arc::clone(client), queue.to_owned(), appdata.clone());
        tasks.spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let t = Instant::now();
                let reply = client.call(&queue, appdata.clone(), limit).await;
                match reply {
                    Ok(r)
                        if r.retcode == 0 && (anon || r.stdout.len() == appdata_len(&appdata)) => {}
                    Ok(r) => return Err(format!("bad reply: retcode {}", r.retcode)),
                    Err(e) => return Err(e.to_string()),
                }
                lat.push(t.elapsed());
            }
            Ok(lat)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    let cpu = pool.cpu().saturating_sub(cpu0);
    let broker = match (broker0, broker_cpu(args.broker_pid)) {
        (Some(a), Some(b)) => {
            let used = b.saturating_sub(a).as_secs_f64();
            Some((
                used * 1e6 / latencies.len().max(1) as f64,
                100.0 * used / elapsed.as_secs_f64(),
            ))
        }
        _ => None,
    };
    let sorted = sorted_micros(&latencies);
    let n = latencies.len() as f64;
    Ok(Outcome {
        rate: n / elapsed.as_secs_f64(),
        p50: percentile(&sorted, 50.0).unwrap_or(f64::NAN),
        p99: percentile(&sorted, 99.0).unwrap_or(f64::NAN),
        server_us: cpu.as_secs_f64() * 1e6 / n,
        broker,
    })
}

/// The request every call sends: 1 KB (`--size`) for the echo, the sample report for anon.
fn request(args: &Args) -> Result<AppData, String> {
    if args.anon_server.is_none() {
        return Ok(AppData::new().with_file("data", &vec![b'x'; args.size]));
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../prisem-tools/data");
    let read = |f: &str| std::fs::read(format!("{dir}/{f}")).map_err(|e| format!("{dir}/{f}: {e}"));
    Ok(AppData::new()
        .with_file("data", &read("report.txt")?)
        .with_file("netmap", &read("netmap.txt")?)
        .with_flag("stats", true))
}

fn appdata_len(appdata: &AppData) -> usize {
    appdata.file("data").map_or(0, |d| d.len())
}

async fn run(args: Args) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../prisem-tools/tests/pika/contract_server.py"
    );
    let conn = Connection::connect(&args.url)
        .await
        .map_err(|e| e.to_string())?;
    let client = Arc::new(
        Client::new(&conn, Identity::for_program("rpc-bench"), "")
            .await
            .map_err(|e| e.to_string())?,
    );
    let mut table = Table::new(&[
        ("workers", Align::Right),
        ("server", Align::Left),
        ("round", Align::Right),
        ("req/s", Align::Right),
        ("p50 µs", Align::Right),
        ("p99 µs", Align::Right),
        ("server CPU µs/req", Align::Right),
        ("broker CPU µs/req", Align::Right),
        ("broker % core", Align::Right),
        ("ours × pika req/s", Align::Right),
        ("ours ÷ pika p50", Align::Right),
    ]);
    for round in 1..=args.rounds {
        for &workers in &args.workers {
            let mut ours_out = None;
            let servers: &[&str] = if args.anon_server.is_some() {
                &["ours"]
            } else {
                &["ours", "pika"]
            };
            for &server in servers {
                let base = format!("rpcbench-{}-{server}-{workers}-{round}", std::process::id());
                let queue = queue_name(&base);
                let commands: Vec<Command> = if let Some(anon) = &args.anon_server {
                    let mut c = Command::new(anon);
                    c.args([
                        "--url",
                        &args.url,
                        "-q",
                        &base,
                        "--workers",
                        &workers.to_string(),
                    ])
                    .stderr(Stdio::null());
                    vec![c]
                } else if server == "ours" {
                    let mut c = Command::new(&me);
                    c.args(["--url", &args.url, "--serve-echo", &base])
                        .args(["--workers", &workers.to_string()]);
                    vec![c]
                } else {
                    (0..workers)
                        .map(|_| {
                            let mut c = Command::new(&args.python);
                            c.args([script, &args.url, &queue, "--echo"]);
                            c
                        })
                        .collect()
                };
                let pool = Pool::start(commands, args.anon_server.is_none())?;
                if args.anon_server.is_some() {
                    wait_consumers(&conn, &queue, workers).await;
                }
                let out = measure(&args, &client, &queue, &pool).await?;
                drop(pool);
                let (ratio, p50_ratio) = match (&ours_out, server) {
                    (Some(o), "pika") => {
                        let o: &Outcome = o;
                        (
                            format!("{:.2}×", o.rate / out.rate),
                            format!("{:.2}", o.p50 / out.p50),
                        )
                    }
                    _ => (String::new(), String::new()),
                };
                table.push(vec![
                    workers.to_string(),
                    server.to_owned(),
                    round.to_string(),
                    format!("{:.0}", out.rate),
                    format!("{:.0}", out.p50),
                    format!("{:.0}", out.p99),
                    format!("{:.0}", out.server_us),
                    out.broker.map_or("-".into(), |b| format!("{:.0}", b.0)),
                    out.broker.map_or("-".into(), |b| format!("{:.0}", b.1)),
                    ratio,
                    p50_ratio,
                ]);
                eprintln!(
                    "workers {workers} {server} round {round}: {:.0} req/s, p50 {:.0} µs, p99 {:.0} µs",
                    out.rate, out.p50, out.p99
                );
                if server == "ours" {
                    ours_out = Some(out);
                }
                if let Ok(ch) = conn.open_channel().await {
                    let _ = ch.queue_delete(&queue, Default::default()).await;
                    let _ = ch.close().await;
                }
            }
        }
    }
    let what = if args.anon_server.is_some() {
        "anon requests (sample report + map, stats)".to_owned()
    } else {
        format!("echo requests of {} B", args.size)
    };
    println!(
        "{} {what}, {} in flight, one client connection\n\n{}",
        args.calls,
        args.in_flight,
        table.render_text()
    );
    if let Some(path) = &args.markdown {
        std::fs::write(path, table.render_markdown()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(base) = &args.serve_echo {
        let workers = args.workers.first().copied().unwrap_or(1);
        return serve_echo(&args.url, base, workers).await;
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prisem_rpc: {e}");
            ExitCode::FAILURE
        }
    }
}
