//! `prisem-dashboard`: the PRISEM bus in a browser. See `prisem-dashboard --help`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use prisem_tools::cli::prisem::{connect, CommonOpts};
use prisem_tools::daemon::Shutdown;
use prisem_tools::dashboard::{run, DashboardConfig, ServiceTarget};
use prisem_tools::metrics::MetricsOpts;

/// A live web dashboard: logs, services, syslog bridge, block list, backbone inboxes, and a
/// form running anon and crosscor.
#[derive(Debug, Parser)]
#[command(name = "prisem-dashboard", version)]
pub(crate) struct Args {
    #[command(flatten)]
    common: CommonOpts,
    /// Where to serve the page. Any address other than loopback requires a token.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// A file holding the login token (its first line); PRISEM_DASHBOARD_TOKEN also works.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The broker's management API, http://USER:PASSWORD@HOST:PORT.
    #[arg(
        long,
        value_name = "URL",
        env = "AMQP_MGMT_URL",
        default_value = "http://guest:guest@127.0.0.1:15672"
    )]
    management_url: String,
    /// The virtual host whose queues are shown.
    #[arg(long, value_name = "VHOST", default_value = "/")]
    vhost: String,
    /// A service to show, as its queue base, with its server's metrics URL when it has one
    /// (repeatable) [default: anon, crosscor, cifbulk, rwfind].
    #[arg(long = "service", value_name = "NAME[=METRICS_URL]")]
    services: Vec<ServiceTarget>,
    /// The syslog bridge's metrics URL (http://127.0.0.1:9741/metrics with the packaged unit).
    #[arg(long, value_name = "URL")]
    syslog_metrics: Option<String>,
    /// A network map the form offers, as NAME=PATH (repeatable).
    #[arg(long = "netmap", value_name = "NAME=PATH")]
    netmaps: Vec<String>,
    /// The DIMS log exchange.
    #[arg(long, default_value = "logs")]
    log_exchange: String,
    /// The firewall exchange.
    #[arg(long, default_value = "firewall")]
    firewall_exchange: String,
    /// Seconds between status refreshes.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    refresh: f64,
    #[command(flatten)]
    metrics: MetricsOpts,
}

fn token(args: &Args) -> Result<Option<String>, String> {
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let t = text.lines().next().unwrap_or("").trim().to_owned();
        if t.is_empty() {
            return Err(format!("{}: the token file is empty", path.display()));
        }
        return Ok(Some(t));
    }
    Ok(std::env::var("PRISEM_DASHBOARD_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty()))
}

fn netmaps(specs: &[String]) -> Result<Vec<(String, Vec<u8>)>, String> {
    specs
        .iter()
        .map(|s| {
            let (name, path) = s
                .split_once('=')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                .ok_or_else(|| format!("--netmap {s:?}: expected NAME=PATH"))?;
            let map = std::fs::read(path).map_err(|e| format!("--netmap {path}: {e}"))?;
            Ok((name.to_owned(), map))
        })
        .collect()
}

async fn main_inner(args: Args) -> Result<(), String> {
    let refresh = Some(args.refresh)
        .filter(|r| r.is_finite() && *r >= 0.2 && *r <= 3600.0)
        .ok_or_else(|| format!("--refresh {}: expected 0.2 to 3600 seconds", args.refresh))?;
    let services = if args.services.is_empty() {
        ["anon", "crosscor", "cifbulk", "rwfind"]
            .iter()
            .map(|n| ServiceTarget {
                name: (*n).to_owned(),
                metrics_url: None,
            })
            .collect()
    } else {
        args.services.clone()
    };
    let cfg = DashboardConfig {
        listen: args.listen,
        token: token(&args)?,
        log_exchange: args.log_exchange.clone(),
        firewall_exchange: args.firewall_exchange.clone(),
        management_url: Some(args.management_url.clone()),
        vhost: args.vhost.clone(),
        services,
        syslog_metrics: args.syslog_metrics.clone(),
        netmaps: netmaps(&args.netmaps)?,
        rpc_timeout: args.common.timeout(),
        refresh: Duration::from_secs_f64(refresh),
    };
    cfg.validate()?;
    let shutdown = Shutdown::on_signals().map_err(|e| format!("cannot watch signals: {e}"))?;
    args.metrics.start("prisem-dashboard").await?;
    let conn = connect(
        &args.common.config("prisem-dashboard"),
        "prisem-dashboard",
        &args.common,
    )
    .await?;
    let r = run(&conn, cfg, shutdown).await;
    let _ = conn.close().await;
    r
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.common.init_tracing();
    match main_inner(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            prisem_tools::daemon::fatal("prisem-dashboard", e);
            ExitCode::FAILURE
        }
    }
}
