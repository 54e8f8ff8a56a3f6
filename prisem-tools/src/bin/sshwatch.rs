//! `sshwatch`: count sshd failures from the `syslog` exchange and publish `block` messages to
//! the `firewall` exchange. See `sshwatch --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use prisem_tools::cli::prisem::{daemon_exit, start_daemon, CommonOpts};
use prisem_tools::dimslog::Logger;
use prisem_tools::firewall::{run_sshwatch, SshwatchConfig};
use prisem_tools::identity::Identity;
use prisem_tools::sshwatch::WatchConfig;

/// Turns repeated sshd failures into "block this address" messages.
#[derive(Debug, Parser)]
#[command(name = "sshwatch", version)]
pub(crate) struct Args {
    #[command(flatten)]
    common: CommonOpts,
    /// Failures within the window that trigger a block.
    #[arg(long, default_value_t = 5)]
    max_failures: usize,
    /// The sliding window, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    window: u64,
    /// How long a block lasts, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    ttl: u64,
    /// Never block addresses in this network (repeatable; loopback always).
    #[arg(long, value_name = "CIDR")]
    allow: Vec<ipnet::IpNet>,
    /// Count IPv6 addresses by their /64.
    #[arg(long)]
    ipv6_by_64: bool,
    /// Count events from any origin (by default only the bridge's unix sockets and loopback).
    #[arg(long)]
    trust_all: bool,
    /// Publish `unblock` when a ban expires.
    #[arg(long)]
    send_unblock: bool,
    /// The syslog exchange.
    #[arg(long, default_value = "syslog")]
    syslog_exchange: String,
    /// The firewall exchange.
    #[arg(long, default_value = "firewall")]
    firewall_exchange: String,
    #[command(flatten)]
    metrics: prisem_tools::metrics::MetricsOpts,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.common.init_tracing();
    let cfg = args.common.config("sshwatch");
    let (shutdown, conn) = match start_daemon("sshwatch", &cfg, &args.common, &args.metrics).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let logger = Logger::start(&conn, "logs", Identity::for_program("sshwatch")).await;
    let cfg = SshwatchConfig {
        watch: WatchConfig {
            max_failures: args.max_failures.max(1),
            window: Duration::from_secs(args.window),
            ttl: Duration::from_secs(args.ttl),
            allow: args.allow,
            ipv6_by_64: args.ipv6_by_64,
        },
        syslog_exchange: args.syslog_exchange,
        firewall_exchange: args.firewall_exchange,
        trust_all: args.trust_all,
        send_unblock: args.send_unblock,
        ..Default::default()
    };
    let r = run_sshwatch(&conn, cfg, shutdown, |l| logger.info(l)).await;
    logger.close().await;
    let _ = conn.close().await;
    daemon_exit("sshwatch", r)
}
