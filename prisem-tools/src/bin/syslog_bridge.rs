//! `syslog-bridge`: receive syslog over UDP, TCP and unix sockets and publish every event to
//! the `syslog` topic exchange with publisher confirms. See `syslog-bridge --help`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use prisem_tools::cli::prisem::{connect, CommonOpts};
use prisem_tools::daemon::Shutdown;
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
    /// Messages buffered in memory while the broker is away or slow.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    buffer: usize,
    /// Directory keeping messages the broker had not confirmed at shutdown; replayed first at
    /// the next start.
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,
    /// Seconds a shutdown waits for the broker's confirms before spooling the rest.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    drain_timeout: u64,
    /// Seconds between stats lines.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    stats_interval: u64,
    /// Log exchange for the stats line.
    #[arg(long, default_value = "logs")]
    log_exchange: String,
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
                eprintln!("syslog-bridge: --alias {a:?}: expected FROM=TO");
                return ExitCode::from(2);
            }
        }
    }
    if args.udp.is_empty()
        && args.tcp.is_empty()
        && args.unix.is_empty()
        && args.unix_stream.is_empty()
    {
        eprintln!(
            "syslog-bridge: nothing to listen on (give --udp, --tcp, --unix or --unix-stream)"
        );
        return ExitCode::from(2);
    }
    let shutdown = match Shutdown::on_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("syslog-bridge: cannot watch signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg_file = args.common.config("syslog-bridge");
    let conn = match connect(&cfg_file, "syslog-bridge", &args.common).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("syslog-bridge: {e}");
            return ExitCode::FAILURE;
        }
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
        buffer: args.buffer,
        stats_interval: Duration::from_secs(args.stats_interval.max(1)),
        drain_timeout: Duration::from_secs(args.drain_timeout),
        spool: args.spool,
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
    match r {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("syslog-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}
