//! The end-to-end benchmark: command line, the parent that schedules runs and prints the
//! table, and the worker that runs one client through one scenario and prints one JSON line.

mod clients;
mod report;
mod stats;
mod usage;

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

use self::clients::{fail, BoxError, Helper};

/// A client library under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ClientKind {
    /// This workspace's `amqp-client`.
    Ours,
    /// lapin.
    Lapin,
    /// amqprs.
    Amqprs,
    /// Not a competitor but the reference: a bare socket and the codec, pre-encoded publishes
    /// written in large batches. What it reaches is what the broker sustains (publish,
    /// confirm and consume only).
    Ceiling,
}

impl ClientKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Lapin => "lapin",
            Self::Amqprs => "amqprs",
            Self::Ceiling => "ceiling",
        }
    }

    /// Whether this client runs `scenario`: the ceiling measures the broker's throughput, so
    /// it has nothing to say about RPC latency or a client's memory.
    pub(crate) fn runs(self, scenario: Scenario) -> bool {
        self != Self::Ceiling
            || matches!(
                scenario,
                Scenario::Publish | Scenario::Confirm | Scenario::Consume
            )
    }

    /// Whether this is a competitor (compared in "× best other") rather than the reference.
    pub(crate) fn competes(self) -> bool {
        self != Self::Ceiling
    }
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scenario {
    /// Publish N messages without confirms until the queue holds N.
    Publish,
    /// Publish N messages with confirms, pipelined, until all are confirmed.
    Confirm,
    /// Consume N pre-filled messages, prefetch 1000, manual multiple ack every 100.
    Consume,
    /// N sequential request/reply calls via direct reply-to; latency percentiles.
    Rpc,
    /// Consume 1 GiB of 1 MiB messages with a pause after each delivery; peak RSS.
    Memory,
}

impl Scenario {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Confirm => "confirm",
            Self::Consume => "consume",
            Self::Rpc => "rpc",
            Self::Memory => "memory",
        }
    }
}

/// Size of every message in the memory scenario.
pub(crate) const MEMORY_MSG_SIZE: usize = 1 << 20;

/// End-to-end AMQP client benchmark: this workspace's client, lapin and amqprs, side by side
/// against one broker, optionally with the `ceiling` reference client.
///
/// Every (scenario, round, client) runs in its own child process so CPU time and peak RSS
/// belong to that client alone. Clients alternate within each round (A B C A B C …) so drift
/// in the broker or the machine hits all alike. Queues, pre-filling and the RPC echo server
/// are done by the parent through one fixed library (amqprs), outside the measured process.
#[derive(Debug, Parser)]
#[command(name = "e2e", version)]
struct Cli {
    /// Broker URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    url: String,

    /// Messages per run in the publish, confirm and consume scenarios.
    #[arg(long, default_value_t = 100_000)]
    count: u64,

    /// Sequential calls per run in the RPC scenario (after 100 unmeasured warm-up calls).
    #[arg(long, default_value_t = 10_000)]
    rpc_count: u64,

    /// Message body size in bytes (publish, confirm, consume, rpc).
    #[arg(long, default_value_t = 100)]
    size: usize,

    /// Client libraries to measure, in the order they alternate. Add `ceiling` for the
    /// reference row: a bare-socket client showing what the broker sustains (publish, confirm
    /// and consume only; it is not compared in "× best other").
    #[arg(long, value_delimiter = ',', default_value = "ours,lapin,amqprs")]
    clients: Vec<ClientKind>,

    /// Process id of the broker (its Erlang VM): its CPU time is read from `/proc/<pid>/stat`
    /// over every measured interval, for the broker CPU columns.
    #[arg(long, env = "BENCH_BROKER_PID")]
    broker_pid: Option<u32>,

    /// Rounds: each runs every client once per scenario; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: u32,

    /// Scenarios to run, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "publish,confirm,consume,rpc,memory"
    )]
    scenarios: Vec<Scenario>,

    /// Consumer prefetch (basic.qos) in the consume and memory scenarios.
    #[arg(long, default_value_t = 1000)]
    prefetch: u16,

    /// Consumers ack with `multiple` after this many deliveries.
    #[arg(long, default_value_t = 100)]
    ack_every: u64,

    /// MiB pushed through the memory scenario's slow consumer, in 1 MiB messages.
    #[arg(long, default_value_t = 1024)]
    memory_mib: u64,

    /// The memory scenario consumer's pause after each delivery, in milliseconds.
    #[arg(long, default_value_t = 5)]
    memory_sleep_ms: u64,

    /// Where to write the Markdown copy of the table.
    #[arg(long, default_value = "target/bench/e2e.md")]
    markdown: PathBuf,

    /// Also write every run's raw result as a JSON array to this file.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Give up on a single run after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,

    /// Internal: run one scenario with one client and print a JSON result line.
    #[arg(long, hide = true)]
    worker: bool,

    /// Internal (worker): the client library.
    #[arg(long, hide = true)]
    client: Option<ClientKind>,

    /// Internal (worker): the scenario.
    #[arg(long, hide = true)]
    scenario: Option<Scenario>,

    /// Internal (worker): the queue to use.
    #[arg(long, hide = true)]
    queue: Option<String>,
}

/// Everything a worker needs to run one scenario.
#[derive(Debug, Clone)]
pub(crate) struct WorkSpec {
    pub(crate) client: ClientKind,
    pub(crate) scenario: Scenario,
    pub(crate) url: String,
    pub(crate) queue: String,
    /// Messages (or calls) to get through.
    pub(crate) count: u64,
    /// Body size in bytes.
    pub(crate) size: usize,
    pub(crate) prefetch: u16,
    pub(crate) ack_every: u64,
    /// Consumer pause after each delivery (memory scenario).
    pub(crate) sleep: Duration,
    /// The broker process whose CPU time is measured with the client's.
    pub(crate) broker_pid: Option<u32>,
}

/// One run's result: the JSON line a worker prints, and the parent's record of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunResult {
    pub(crate) client: ClientKind,
    pub(crate) scenario: Scenario,
    /// 1-based round (set by the parent).
    #[serde(default)]
    pub(crate) round: u32,
    /// Messages or calls asked for.
    pub(crate) requested: u64,
    /// Messages or calls the run verifiably got through.
    pub(crate) count: u64,
    /// Body size in bytes.
    pub(crate) size: usize,
    /// Payload bytes moved.
    pub(crate) bytes: u64,
    /// Wall time of the measured interval.
    pub(crate) elapsed_s: f64,
    /// User CPU time of the worker over the measured interval.
    pub(crate) cpu_user_s: f64,
    /// System CPU time of the worker over the measured interval.
    pub(crate) cpu_sys_s: f64,
    /// User + system CPU time of the broker over the measured interval, when its pid was given.
    #[serde(default)]
    pub(crate) broker_cpu_s: Option<f64>,
    /// Share of the whole machine's CPU time left idle over the measured interval, %.
    #[serde(default)]
    pub(crate) machine_idle_pct: Option<f64>,
    /// Peak RSS of the worker process (whole life), KiB.
    pub(crate) max_rss_kib: u64,
    /// Median call latency (RPC).
    pub(crate) p50_us: Option<f64>,
    /// 99th percentile call latency (RPC).
    pub(crate) p99_us: Option<f64>,
    /// Why the run failed, when it did.
    pub(crate) error: Option<String>,
}

impl RunResult {
    fn failed(spec: &WorkSpec, error: String) -> Self {
        Self {
            client: spec.client,
            scenario: spec.scenario,
            round: 0,
            requested: spec.count,
            count: 0,
            size: spec.size,
            bytes: 0,
            elapsed_s: 0.0,
            cpu_user_s: 0.0,
            cpu_sys_s: 0.0,
            broker_cpu_s: None,
            machine_idle_pct: None,
            max_rss_kib: usage::max_rss_kib().unwrap_or(0),
            p50_us: None,
            p99_us: None,
            error: Some(error),
        }
    }

    /// Messages (or calls) per second.
    pub(crate) fn rate(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.count as f64 / self.elapsed_s
        } else {
            0.0
        }
    }

    /// User + system CPU per message, in microseconds.
    pub(crate) fn cpu_us_per_msg(&self) -> f64 {
        if self.count > 0 {
            (self.cpu_user_s + self.cpu_sys_s) * 1e6 / self.count as f64
        } else {
            0.0
        }
    }

    /// The broker's CPU per message, in microseconds (`None` without a broker pid).
    pub(crate) fn broker_us_per_msg(&self) -> Option<f64> {
        let cpu = self.broker_cpu_s?;
        (self.count > 0).then(|| cpu * 1e6 / self.count as f64)
    }

    /// The broker's average CPU use over the interval, in % of one core (`None` without a
    /// broker pid).
    pub(crate) fn broker_core_pct(&self) -> Option<f64> {
        let cpu = self.broker_cpu_s?;
        (self.elapsed_s > 0.0).then(|| cpu * 100.0 / self.elapsed_s)
    }
}

/// Entry point of the binary.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("e2e: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.worker {
        runtime.block_on(worker(&cli))
    } else {
        match runtime.block_on(drive(&cli)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("e2e: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Worker mode: run, print exactly one JSON line on stdout.
async fn worker(cli: &Cli) -> ExitCode {
    let (Some(client), Some(scenario), Some(queue)) = (cli.client, cli.scenario, cli.queue.clone())
    else {
        eprintln!("e2e: --worker needs --client, --scenario and --queue");
        return ExitCode::FAILURE;
    };
    let spec = WorkSpec {
        client,
        scenario,
        url: cli.url.clone(),
        queue,
        count: cli.count,
        size: cli.size,
        prefetch: cli.prefetch,
        ack_every: cli.ack_every,
        sleep: Duration::from_millis(cli.memory_sleep_ms),
        broker_pid: cli.broker_pid,
    };
    let limit = Duration::from_secs(cli.timeout_secs);
    let result = match tokio::time::timeout(limit, clients::run(&spec)).await {
        Ok(Ok(outcome)) => {
            let lat = stats::sorted_micros(&outcome.latencies);
            RunResult {
                client,
                scenario,
                round: 0,
                requested: spec.count,
                count: outcome.count,
                size: spec.size,
                bytes: outcome.bytes,
                elapsed_s: outcome.sample.elapsed.as_secs_f64(),
                cpu_user_s: outcome.sample.user.as_secs_f64(),
                cpu_sys_s: outcome.sample.sys.as_secs_f64(),
                broker_cpu_s: outcome.sample.broker.map(|d| d.as_secs_f64()),
                machine_idle_pct: outcome.sample.machine_idle_pct,
                max_rss_kib: usage::max_rss_kib().unwrap_or(0),
                p50_us: stats::percentile(&lat, 50.0),
                p99_us: stats::percentile(&lat, 99.0),
                error: None,
            }
        }
        Ok(Err(e)) => RunResult::failed(&spec, e.to_string()),
        Err(_) => RunResult::failed(&spec, format!("timed out after {} s", limit.as_secs())),
    };
    match serde_json::to_string(&result) {
        Ok(line) => {
            println!("{line}");
            if result.error.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("e2e: cannot encode the result: {e}");
            ExitCode::FAILURE
        }
    }
}

fn unique_queue(scenario: Scenario, client: ClientKind, round: u32) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "e2e-{}-{}-r{round}-{}-{nanos:x}",
        scenario.name(),
        client.name(),
        std::process::id()
    )
}

/// The (count, size) a scenario runs with.
fn shape(cli: &Cli, scenario: Scenario) -> (u64, usize) {
    match scenario {
        Scenario::Publish | Scenario::Confirm | Scenario::Consume => (cli.count, cli.size),
        Scenario::Rpc => (cli.rpc_count, cli.size),
        Scenario::Memory => (cli.memory_mib, MEMORY_MSG_SIZE),
    }
}

/// Parent mode: every scenario × round × client, then the table.
async fn drive(cli: &Cli) -> Result<(), BoxError> {
    if cli.clients.is_empty() || cli.scenarios.is_empty() || cli.rounds == 0 {
        return Err(fail(
            "nothing to run: give --clients, --scenarios and --rounds ≥ 1",
        ));
    }
    if let Some(pid) = cli.broker_pid {
        usage::process_cpu(pid).map_err(|e| fail(format!("--broker-pid {pid}: {e}")))?;
    }
    let exe = std::env::current_exe()?;
    let helper = Helper::connect(&cli.url).await.map_err(|e| {
        fail(format!(
            "cannot reach the broker at {}: {e}",
            redact(&cli.url)
        ))
    })?;
    let started = Instant::now();
    let load_start = loadavg();
    let mut results = Vec::new();
    for &scenario in &cli.scenarios {
        let (count, size) = shape(cli, scenario);
        for round in 1..=cli.rounds {
            for &client in cli.clients.iter().filter(|c| c.runs(scenario)) {
                let queue = unique_queue(scenario, client, round);
                helper.declare(&queue).await?;
                let mut result =
                    run_one(cli, &exe, &helper, client, scenario, &queue, count, size).await;
                if let Err(e) = helper.delete(&queue).await {
                    eprintln!("e2e: could not delete queue {queue}: {e}");
                }
                result.round = round;
                eprintln!("{}", report::progress_line(&result));
                results.push(result);
            }
        }
    }
    let settings = report::Settings {
        count: cli.count,
        rpc_count: cli.rpc_count,
        size: cli.size,
        rounds: cli.rounds,
        prefetch: cli.prefetch,
        ack_every: cli.ack_every,
        memory_mib: cli.memory_mib,
        memory_sleep_ms: cli.memory_sleep_ms,
        clients: cli.clients.clone(),
        scenarios: cli.scenarios.clone(),
        broker_pid: cli.broker_pid,
        wall: started.elapsed(),
        broker: helper.broker(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load: (load_start, loadavg()),
    };
    helper.close().await?;
    let summaries = report::summarize(&results, &cli.scenarios, &cli.clients);
    println!("{}", report::render_text(&settings, &summaries));
    let md = report::render_markdown(&settings, &summaries);
    if let Some(dir) = cli.markdown.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cli.markdown, md)?;
    eprintln!("e2e: wrote {}", cli.markdown.display());
    if let Some(path) = &cli.json {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
    }
    Ok(())
}

/// The one-minute load average, when the system tells it: other work on the machine skews
/// a benchmark, so the report says how busy it was.
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Sets the queue up for the scenario, runs the worker process, tears down.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    cli: &Cli,
    exe: &std::path::Path,
    helper: &Helper,
    client: ClientKind,
    scenario: Scenario,
    queue: &str,
    count: u64,
    size: usize,
) -> RunResult {
    let spec = WorkSpec {
        client,
        scenario,
        url: cli.url.clone(),
        queue: queue.to_string(),
        count,
        size,
        prefetch: cli.prefetch,
        ack_every: cli.ack_every,
        sleep: Duration::from_millis(cli.memory_sleep_ms),
        broker_pid: cli.broker_pid,
    };
    let failed = |e: String| RunResult {
        max_rss_kib: 0,
        ..RunResult::failed(&spec, e)
    };
    let mut echo = None;
    match scenario {
        Scenario::Consume | Scenario::Memory => {
            if let Err(e) = helper.prefill(queue, count, size).await {
                return failed(format!("pre-fill failed: {e}"));
            }
        }
        Scenario::Rpc => match helper.start_echo(queue).await {
            Ok(e) => echo = Some(e),
            Err(e) => return failed(format!("echo server failed to start: {e}")),
        },
        Scenario::Publish | Scenario::Confirm => {}
    }
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--worker")
        .args(["--client", client.name()])
        .args(["--scenario", scenario.name()])
        .args(["--queue", queue])
        .args(["--count", &count.to_string()])
        .args(["--size", &size.to_string()])
        .args(["--prefetch", &cli.prefetch.to_string()])
        .args(["--ack-every", &cli.ack_every.to_string()])
        .args(["--memory-sleep-ms", &cli.memory_sleep_ms.to_string()])
        .args(["--timeout-secs", &cli.timeout_secs.to_string()])
        .args(
            cli.broker_pid
                .iter()
                .flat_map(|pid| ["--broker-pid".to_string(), pid.to_string()]),
        )
        // The URL travels in the environment so the password is not on a command line.
        .env("AMQP_URL", &cli.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let limit = Duration::from_secs(cli.timeout_secs + 30);
    let output = match tokio::time::timeout(limit, cmd.output()).await {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(format!("cannot start the worker: {e}")),
        Err(_) => Err(format!("worker did not finish in {} s", limit.as_secs())),
    };
    let mut result = match output {
        Err(e) => failed(e),
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let parsed = stdout
                .lines()
                .rev()
                .find(|l| l.starts_with('{'))
                .map(serde_json::from_str::<RunResult>);
            match parsed {
                Some(Ok(r)) => r,
                Some(Err(e)) => failed(format!("unreadable worker result: {e}")),
                None => {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
                    failed(format!(
                        "worker exited with {} and no result: {}",
                        out.status,
                        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                    ))
                }
            }
        }
    };
    if let Some(echo) = echo {
        match echo.stop().await {
            // The echo server also answered the worker's warm-up calls.
            Ok(_) => {}
            Err(e) if result.error.is_none() => {
                result.error = Some(format!("echo server failed: {e}"));
            }
            Err(_) => {}
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_defaults_match_the_documented_ones() {
        let cli = Cli::try_parse_from(["e2e", "--url", "amqp://h"]).unwrap();
        assert_eq!(
            (cli.count, cli.size, cli.rpc_count, cli.rounds),
            (100_000, 100, 10_000, 3)
        );
        assert_eq!(
            cli.clients,
            vec![ClientKind::Ours, ClientKind::Lapin, ClientKind::Amqprs]
        );
        assert_eq!(cli.scenarios.len(), 5);
        assert_eq!(shape(&cli, Scenario::Memory), (1024, 1 << 20));
        assert_eq!(shape(&cli, Scenario::Rpc), (10_000, 100));
        let cli = Cli::try_parse_from(["e2e", "--clients", "lapin,amqprs", "--scenarios", "rpc"])
            .unwrap();
        assert_eq!(cli.clients, vec![ClientKind::Lapin, ClientKind::Amqprs]);
        assert_eq!(cli.scenarios, vec![Scenario::Rpc]);
        assert!(Cli::try_parse_from(["e2e", "--clients", "rabbit"]).is_err());
    }

    #[test]
    fn result_line_round_trips_and_derives_rates() {
        let r = RunResult {
            client: ClientKind::Amqprs,
            scenario: Scenario::Publish,
            round: 2,
            requested: 1000,
            count: 1000,
            size: 100,
            bytes: 100_000,
            elapsed_s: 0.5,
            cpu_user_s: 0.003,
            cpu_sys_s: 0.001,
            broker_cpu_s: Some(0.25),
            machine_idle_pct: Some(12.5),
            max_rss_kib: 4096,
            p50_us: None,
            p99_us: None,
            error: None,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains("\"client\":\"amqprs\""));
        assert!(line.contains("\"scenario\":\"publish\""));
        assert_eq!(serde_json::from_str::<RunResult>(&line).unwrap(), r);
        assert_eq!(r.rate(), 2000.0);
        assert!((r.cpu_us_per_msg() - 4.0).abs() < 1e-9);
        assert_eq!(r.broker_us_per_msg(), Some(250.0));
        assert_eq!(r.broker_core_pct(), Some(50.0));
        let no_pid = RunResult {
            broker_cpu_s: None,
            machine_idle_pct: None,
            ..r.clone()
        };
        assert_eq!(no_pid.broker_us_per_msg(), None);
        assert_eq!(no_pid.broker_core_pct(), None);
        // Result lines from before the broker column still read.
        let old = line.replace(",\"broker_cpu_s\":0.25,\"machine_idle_pct\":12.5", "");
        assert_ne!(old, line);
        assert_eq!(serde_json::from_str::<RunResult>(&old).unwrap(), no_pid);
    }

    #[test]
    fn ceiling_runs_only_the_throughput_scenarios() {
        use ClientKind::{Ceiling, Ours};
        for s in [Scenario::Publish, Scenario::Confirm, Scenario::Consume] {
            assert!(Ceiling.runs(s) && Ours.runs(s));
        }
        for s in [Scenario::Rpc, Scenario::Memory] {
            assert!(!Ceiling.runs(s) && Ours.runs(s));
        }
        assert!(!Ceiling.competes() && Ours.competes());
        let cli =
            Cli::try_parse_from(["e2e", "--clients", "ours,ceiling", "--broker-pid", "7"]).unwrap();
        assert_eq!(cli.clients, vec![Ours, Ceiling]);
        assert_eq!(cli.broker_pid, Some(7));
    }

    #[test]
    fn redacts_password() {
        assert_eq!(redact("amqp://u:secret@h:1/%2f"), "amqp://u:***@h:1/%2f");
        assert_eq!(redact("amqp://h"), "amqp://h");
    }
}
