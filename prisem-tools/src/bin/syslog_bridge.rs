//! `syslog-bridge`: receive syslog over UDP, TCP and unix sockets and publish every event to
//! the `syslog` topic exchange with publisher confirms. See `syslog-bridge --help`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use prisem_tools::cli::prisem::{daemon_exit, start_daemon, CommonOpts};
use prisem_tools::dimslog::Logger;
use prisem_tools::identity::Identity;
use prisem_tools::syslog::parse::RoutingRule;
use prisem_tools::syslog::{run, BridgeConfig};

/// Syslog → AMQP bridge: every event to the `syslog` topic exchange, routing key = program.
#[derive(Debug, Parser)]
#[command(name = "syslog-bridge", version)]
pub(crate) struct Args {
    #[command(flatten)]
    common: CommonOpts,
    /// Listen for syslog datagrams on ADDR:PORT (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    udp: Vec<SocketAddr>,
    /// Listen for syslog over TCP on ADDR:PORT (octet counting, LF or NUL framing).
    #[arg(long, value_name = "ADDR:PORT")]
    tcp: Vec<SocketAddr>,
    /// Listen on a unix datagram socket (like /dev/log).
    #[arg(long, value_name = "PATH")]
    unix: Vec<PathBuf>,
    /// Listen on a unix stream socket.
    #[arg(long, value_name = "PATH")]
    unix_stream: Vec<PathBuf>,
    /// Largest message in bytes; longer ones are cut and counted.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    max_message: usize,
    /// Exchange to publish to (a durable topic exchange).
    #[arg(long, default_value = "syslog")]
    exchange: String,
    /// Routing key template with {facility}, {severity}, {program}, {host} [default: {program}].
    #[arg(long, value_name = "TEMPLATE")]
    routing_key: Option<String>,
    /// Program alias FROM=TO (repeatable; sshd-session=sshd is always set).
    #[arg(long, value_name = "FROM=TO")]
    alias: Vec<String>,
    /// Bytes of messages held in memory while the broker is away or slow (K, M, G suffixes);
    /// past it they go to the spool.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    buffer: u64,
    /// Spool directory: messages past the memory buffer, and those the broker had not
    /// confirmed at shutdown, in append-only segments replayed in order.
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,
    /// Most bytes the spool may take; when full, stream listeners stop reading and datagrams
    /// are dropped (and counted).
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    spool_max: u64,
    /// Receive buffer asked for each UDP socket (0: the system's default).
    #[arg(long, value_name = "SIZE", default_value = "8M", value_parser = parse_size)]
    udp_rcvbuf: u64,
    /// Seconds a shutdown waits for the broker's confirms before spooling the rest.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    drain_timeout: u64,
    /// Seconds between stats lines.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    stats_interval: u64,
    /// Log exchange for the stats line.
    #[arg(long, default_value = "logs")]
    log_exchange: String,
    #[command(flatten)]
    metrics: prisem_tools::metrics::MetricsOpts,
}

/// A size in bytes, with an optional K, M or G suffix (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (s.get(..i).unwrap_or(""), Some(c)),
        _ => (s, None),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?}: expected a number of bytes, like 65536, 64K, 64M or 1G"))?;
    let shift = match unit.map(|c| c.to_ascii_uppercase()) {
        None => 0,
        Some('K') => 10,
        Some('M') => 20,
        Some('G') => 30,
        Some(c) => return Err(format!("{s:?}: unknown size suffix {c:?} (K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?}: too large"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.common.init_tracing();
    let mut routing = RoutingRule {
        template: args.routing_key.clone(),
        ..Default::default()
    };
    for a in &args.alias {
        match a.split_once('=') {
            Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                routing.aliases.push((from.into(), to.into()))
            }
            _ => {
                prisem_tools::daemon::fatal(
                    "syslog-bridge",
                    format_args!("--alias {a:?}: expected FROM=TO"),
                );
                return ExitCode::from(2);
            }
        }
    }
    if args.udp.is_empty()
        && args.tcp.is_empty()
        && args.unix.is_empty()
        && args.unix_stream.is_empty()
    {
        prisem_tools::daemon::fatal(
            "syslog-bridge",
            "nothing to listen on (give --udp, --tcp, --unix or --unix-stream)",
        );
        return ExitCode::from(2);
    }
    let stats = std::sync::Arc::new(prisem_tools::syslog::Stats::default());
    prisem_tools::metrics::register_syslog(stats.clone());
    let cfg_file = args.common.config("syslog-bridge");
    let (shutdown, conn) =
        match start_daemon("syslog-bridge", &cfg_file, &args.common, &args.metrics).await {
            Ok(started) => started,
            Err(code) => return code,
        };
    let logger = Arc::new(
        Logger::start(
            &conn,
            &args.log_exchange,
            Identity::for_program("syslog-bridge"),
        )
        .await,
    );
    let cfg = BridgeConfig {
        udp: args.udp,
        tcp: args.tcp,
        unix: args.unix,
        unix_stream: args.unix_stream,
        max_message: args.max_message,
        exchange: args.exchange,
        routing,
        buffer_bytes: args.buffer,
        spool_limit: args.spool_max,
        udp_rcvbuf: (args.udp_rcvbuf > 0).then_some(args.udp_rcvbuf as usize),
        stats_interval: Duration::from_secs(args.stats_interval.max(1)),
        drain_timeout: Duration::from_secs(args.drain_timeout),
        spool: args.spool,
        stats: Some(stats),
        ..Default::default()
    };
    let log = {
        let logger = logger.clone();
        move |line: &str| logger.info(line)
    };
    let r = run(cfg, conn.clone(), shutdown, log).await;
    if let Ok(logger) = Arc::try_unwrap(logger) {
        logger.close().await;
    }
    let _ = conn.close().await;
    daemon_exit("syslog-bridge", r)
}
