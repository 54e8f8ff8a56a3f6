//! What every PRISEM program shares on its command line, and the two ways they run: as a
//! client making one call ([`run_client`]) or as a server ([`run_server`]).
//!
//! Options marked "(added)" in `--help` did not exist in the original programs.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use amqp_client::options::QueueType;
use amqp_client::{Connection, ConnectionConfig, RecoveryPolicy};
use clap::Args;

use crate::config::{Overrides, RpcConfig};
use crate::daemon::{init_tracing, Shutdown, Verbosity};
use crate::dimslog::Logger;
use crate::identity::Identity;
use crate::metrics::MetricsOpts;
use crate::rpc::{queue_name, AppData, Client, Reply, Server, ServerConfig, Service};

/// Options every PRISEM program takes.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonOpts {
    /// RabbitMQ server host (RPC_SERVER; `host:port` accepted).
    #[arg(long, value_name = "HOST")]
    pub server: Option<String>,

    /// Queue base name (RPC_QUEUEBASE) [default: the service name].
    #[arg(short = 'q', long = "queue-base", value_name = "BASE")]
    pub queue_base: Option<String>,

    /// Debugging output on standard error.
    #[arg(short = 'd', long)]
    pub debug: bool,

    /// Verbose output on standard error, as `[+] <time> <message>`.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// (added) RabbitMQ URI (amqp:// or amqps:// for TLS; AMQP_URL). Overrides the server,
    /// virtual host, user and password of the configuration.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// (added) Seconds to wait for the broker and for a reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_seconds)]
    pub timeout: f64,

    /// (added) Do not reconnect when the broker goes away (by default the program reconnects,
    /// restores its queues and consumers, and carries on).
    #[arg(long)]
    pub no_recovery: bool,

    /// (added) Clients: no spinner while a call is sent and answered (it is drawn on standard
    /// error only when that is a terminal).
    #[arg(long)]
    pub quiet: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 * 365.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

impl CommonOpts {
    /// The configuration of `program`: defaults, file, environment, then these options.
    /// Warnings about the configuration are logged.
    pub fn config(&self, program: &str) -> RpcConfig {
        let (mut cfg, warnings) = RpcConfig::load(program);
        for w in warnings {
            tracing::warn!("configuration: {w}");
        }
        cfg.apply(&Overrides {
            server: self.server.clone(),
            queue_base: self.queue_base.clone(),
            url: self.url.clone(),
            ..Default::default()
        });
        cfg
    }

    /// The time limit as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }

    /// Sets up tracing from `-v` and `-d`.
    pub fn init_tracing(&self) {
        init_tracing(Verbosity::from_flags(self.verbose, self.debug));
    }
}

/// Options of every PRISEM server.
#[derive(Debug, Clone, Args)]
pub struct ServerOpts {
    /// (added) Concurrent workers, each a consumer on its own channel.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: u16,

    /// (added) Largest request accepted, in bytes (larger ones get an error reply).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_request_size: usize,

    /// (added) Seconds a request may run before it gets an error reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0, value_parser = parse_seconds)]
    pub request_timeout: f64,

    /// (added) Declare the request queue as this type: classic (the originals' queue) or quorum
    /// (durable and replicated over a RabbitMQ cluster's nodes). Every server of one queue
    /// must use the same type.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub queue_type: Option<ServiceQueueType>,

    /// Metrics endpoint.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsOpts,
}

/// The queue types a PRISEM service can run on (a stream would hand every request to every
/// worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceQueueType {
    /// A classic queue on one node.
    Classic,
    /// A quorum queue, replicated with Raft.
    Quorum,
}

/// Connects to the broker of `cfg`, naming the connection after `program`; unless
/// `--no-recovery`, the connection recovers from broker restarts (backoff 0.5 s to 10 s, no
/// limit on attempts).
pub async fn connect(
    cfg: &RpcConfig,
    program: &str,
    common: &CommonOpts,
) -> Result<Connection, String> {
    let uri = cfg.amqp_uri();
    let mut conn_cfg = ConnectionConfig::from_uri(&uri)
        .map_err(|e| format!("bad broker URI: {e}"))?
        .with_connection_name(format!("{program} (pid {})", std::process::id()))
        .with_connect_timeout(common.timeout());
    if !common.no_recovery {
        conn_cfg = conn_cfg.with_recovery(
            RecoveryPolicy::default()
                .with_delays(Duration::from_millis(500), Duration::from_secs(10)),
        );
    }
    let conn = Connection::connect_with(conn_cfg)
        .await
        .map_err(|e| format!("cannot connect to the broker: {e}"))?;
    crate::metrics::watch_connection(&conn);
    Ok(conn)
}

/// The first steps of every daemon, in this order: watch SIGTERM and SIGINT, name `program` in
/// the metrics (and serve them when `--metrics` was given), connect to the broker of `cfg`.
///
/// A failure is reported with [`crate::daemon::fatal`] and comes back as exit status 1, for the
/// daemon to return.
pub async fn start_daemon(
    program: &str,
    cfg: &RpcConfig,
    common: &CommonOpts,
    metrics: &MetricsOpts,
) -> Result<(Shutdown, Connection), ExitCode> {
    let fail = |e: &dyn std::fmt::Display| {
        crate::daemon::fatal(program, e);
        ExitCode::FAILURE
    };
    let shutdown =
        Shutdown::on_signals().map_err(|e| fail(&format_args!("cannot watch signals: {e}")))?;
    metrics.start(program).await.map_err(|e| fail(&e))?;
    let conn = connect(cfg, program, common).await.map_err(|e| fail(&e))?;
    Ok((shutdown, conn))
}

/// A daemon's exit status once it has run: 0 for `Ok`, 1 for an error, which is reported with
/// [`crate::daemon::fatal`].
pub fn daemon_exit<T, E: std::fmt::Display>(program: &str, result: Result<T, E>) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            crate::daemon::fatal(program, e);
            ExitCode::FAILURE
        }
    }
}

/// The process exit status for a service's retcode: 0 stays 0, anything else is never 0.
pub fn exit_status(retcode: i32) -> u8 {
    match u8::try_from(retcode & 0xff) {
        Ok(0) if retcode != 0 => 1,
        Ok(code) => code,
        Err(_) => 1,
    }
}

/// Where a client prints a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Standard output to stdout and standard error to stderr, always (anon, crosscor).
    Both,
    /// Standard output only when retcode is 0, else only standard error (cifbulk, rwfind).
    ByRetcode,
}

/// Prints a reply as `output` says.
pub fn print_reply(reply: &Reply, output: Output) {
    use std::io::Write;
    let show_stdout = output == Output::Both || reply.retcode == 0;
    let show_stderr = output == Output::Both || reply.retcode != 0;
    if show_stdout {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&reply.stdout);
        let _ = out.flush();
    }
    if show_stderr {
        let _ = std::io::stderr().write_all(&reply.stderr);
    }
}

/// Runs a client: one call to `service` (queue `<base>_0.5.5`) with `appdata`, its reply
/// printed as `output` says; the exit status is the reply's retcode. A connection failure
/// prints the reason and exits 1; a time-out and "no server" have their own statuses
/// ([`crate::rpc::client`]).
pub async fn run_client(
    service: &str,
    common: &CommonOpts,
    appdata: AppData,
    output: Output,
) -> ExitCode {
    common.init_tracing();
    let cfg = common.config(service);
    let program = format!("{service}_client");
    let conn = match connect(&cfg, &program, common).await {
        Ok(c) => c,
        Err(e) => {
            crate::daemon::fatal(&program, e);
            return ExitCode::from(crate::rpc::client::EXIT_CONNECTION);
        }
    };
    let identity = Identity::new(&program, &cfg.domain);
    let logger = Logger::start(&conn, &cfg.log_exchange, identity.clone()).await;
    let queue = queue_name(&cfg.queue_base);
    logger.info(&format!("calling {queue}"));
    let code = match Client::new(&conn, identity, &cfg.rpc_exchange).await {
        Err(e) => {
            crate::daemon::fatal(&program, e);
            ExitCode::from(crate::rpc::client::EXIT_CONNECTION)
        }
        Ok(client) => {
            let spinner = super::progress::waiting(common.quiet, &queue);
            let reply = client.call(&queue, appdata, common.timeout()).await;
            spinner.finish_and_clear();
            match reply {
                Ok(reply) => {
                    logger.info(&format!("{queue} answered with retcode {}", reply.retcode));
                    print_reply(&reply, output);
                    ExitCode::from(exit_status(reply.retcode))
                }
                Err(e) => {
                    logger.error(&format!("call to {queue} failed: {e}"));
                    crate::daemon::fatal(&program, &e);
                    ExitCode::from(e.exit_status())
                }
            }
        }
    };
    logger.close().await;
    let _ = conn.close().await;
    code
}

/// Runs `service` as a server until SIGTERM or SIGINT (exit 0 once the requests in flight are
/// answered) or a broker failure (exit 1). `on_start` runs once connected, with the logger,
/// e.g. to watch SIGHUP for reloads.
pub async fn run_server<S, F, Fut>(
    service_name: &str,
    common: &CommonOpts,
    opts: &ServerOpts,
    service: S,
    on_start: F,
) -> ExitCode
where
    S: Service,
    F: FnOnce(Arc<S>, Arc<Logger>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    common.init_tracing();
    let cfg = common.config(service_name);
    let program = format!("{service_name}_server");
    let (shutdown, conn) = match start_daemon(&program, &cfg, common, &opts.metrics).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let identity = Identity::new(&program, &cfg.domain);
    let logger = Arc::new(Logger::start(&conn, &cfg.log_exchange, identity).await);
    let mut config = ServerConfig::new(&cfg.queue_base);
    config.workers = usize::from(opts.workers);
    config.max_request_bytes = opts.max_request_size;
    config.request_timeout = Duration::from_secs_f64(opts.request_timeout);
    config.queue_type = opts.queue_type.map(|t| match t {
        ServiceQueueType::Classic => QueueType::Classic,
        ServiceQueueType::Quorum => QueueType::Quorum,
    });
    let server = Server::new(service, config, Arc::clone(&logger));
    let hook = tokio::spawn(on_start(Arc::clone(server.service()), Arc::clone(&logger)));
    let result = server.run(&conn, &shutdown).await;
    hook.abort();
    let _ = hook.await;
    drop(server);
    if let Ok(logger) = Arc::try_unwrap(logger) {
        logger.close().await;
    }
    let _ = conn.close().await;
    daemon_exit(&program, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_never_turns_an_error_into_success() {
        assert_eq!(exit_status(0), 0);
        assert_eq!(exit_status(1), 1);
        assert_eq!(exit_status(255), 255);
        assert_eq!(exit_status(256), 1);
        assert_eq!(exit_status(-1), 255);
        assert_eq!(exit_status(300), 44);
    }

    #[test]
    fn timeouts_must_be_positive() {
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
    }
}
