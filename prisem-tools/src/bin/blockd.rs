//! `blockd`: apply `block`/`unblock` messages from the `firewall` exchange to the packet
//! filter. See `blockd --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::blockd::Template;
use prisem_tools::cli::prisem::{daemon_exit, start_daemon, CommonOpts};
use prisem_tools::dimslog::Logger;
use prisem_tools::firewall::{run_blockd, Applier};
use prisem_tools::identity::Identity;

/// Applies block messages with nftables (or operator commands), one fixed argv per action.
#[derive(Debug, Parser)]
#[command(name = "blockd", version)]
pub(crate) struct Args {
    #[command(flatten)]
    common: CommonOpts,
    /// Print the argv of each action as a JSON line instead of running it.
    #[arg(long)]
    dry_run: bool,
    /// Block command template ({ip} and {ttl} as whole words), instead of nft.
    #[arg(long, value_name = "TEMPLATE", requires = "unblock_command")]
    block_command: Option<String>,
    /// Unblock command template ({ip} as a whole word).
    #[arg(long, value_name = "TEMPLATE", requires = "block_command")]
    unblock_command: Option<String>,
    /// The firewall exchange.
    #[arg(long, default_value = "firewall")]
    exchange: String,
    /// The durable queue blockd consumes.
    #[arg(long, default_value = "blockd")]
    queue: String,
    #[command(flatten)]
    metrics: prisem_tools::metrics::MetricsOpts,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.common.init_tracing();
    let applier = match (&args.block_command, &args.unblock_command) {
        _ if args.dry_run => Applier::DryRun,
        (Some(b), Some(u)) => match (Template::parse(b), Template::parse(u)) {
            (Ok(block), Ok(unblock)) => Applier::Templates { block, unblock },
            (Err(e), _) | (_, Err(e)) => {
                prisem_tools::daemon::fatal("blockd", e);
                return ExitCode::from(2);
            }
        },
        _ => Applier::Nft,
    };
    let cfg = args.common.config("blockd");
    let (shutdown, conn) = match start_daemon("blockd", &cfg, &args.common, &args.metrics).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let logger = Logger::start(&conn, "logs", Identity::for_program("blockd")).await;
    let r = run_blockd(&conn, &args.exchange, &args.queue, applier, shutdown, |l| {
        logger.info(l)
    })
    .await;
    logger.close().await;
    let _ = conn.close().await;
    daemon_exit("blockd", r)
}
