//! `logmon`: monitor the DIMS log exchange, or send lines to it.

use std::fs::OpenOptions;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use regex::Regex;

use super::prisem::{connect, CommonOpts};
use crate::config::Overrides;
use crate::daemon::Shutdown;
use crate::dimslog::{Level, Logger};
use crate::identity::Identity;
use crate::logmon::{send_lines, Filter, Monitor};

/// Monitor the PRISEM/DIMS log exchange (print every line), or send lines to it.
///
/// Without -m or -s, logmon binds a private queue to the log exchange and prints each line
/// with its sender's timestamp. With -m or -s it sends lines instead and exits.
#[derive(Debug, Parser)]
#[command(name = "logmon", version)]
pub struct LogmonArgs {
    /// Common PRISEM options.
    #[command(flatten)]
    pub common: CommonOpts,

    /// Log exchange to use (RPC_LOGEXCHANGE) [default: logs].
    #[arg(short = 'l', long = "log-exchange", value_name = "EXCHANGE")]
    pub log_exchange: Option<String>,

    /// Show times in UTC (RPC_DISPLAY_UTC, the default).
    #[arg(long, conflicts_with = "display_localtime")]
    pub display_utc: bool,

    /// Show times in local time.
    #[arg(long)]
    pub display_localtime: bool,

    /// Also append the lines shown to the log file.
    #[arg(long)]
    pub log: bool,

    /// The log file for --log.
    #[arg(long, value_name = "FILE", default_value = "logmon.log")]
    pub logfile: PathBuf,

    /// Send this message and exit.
    #[arg(
        short = 'm',
        long = "message",
        value_name = "MESSAGE",
        conflicts_with = "send"
    )]
    pub message: Option<String>,

    /// Send each line of these files (`-` for standard input) and exit.
    #[arg(short = 's', long = "send", value_name = "FILE", num_args = 1..)]
    pub send: Vec<PathBuf>,

    /// (added) Monitor: show lines at this level or more severe. Send: the level of the lines
    /// sent [default: INFO]. EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub level: Option<Level>,

    /// (added) Show only lines from this host (full or short name).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// (added) Show only lines of this component (program).
    #[arg(long, value_name = "NAME")]
    pub component: Option<String>,

    /// (added) Show only lines matching this regular expression.
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub grep: Option<Regex>,

    /// (added) Exit after showing this many lines.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
}

fn parse_regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| e.to_string())
}

/// Runs logmon.
pub async fn run(args: LogmonArgs) -> ExitCode {
    args.common.init_tracing();
    let mut cfg = args.common.config("logmon");
    cfg.apply(&Overrides {
        log_exchange: args.log_exchange.clone(),
        display_utc: if args.display_localtime {
            Some(false)
        } else if args.display_utc {
            Some(true)
        } else {
            None
        },
        ..Default::default()
    });
    let conn = match connect(&cfg, "logmon", &args.common).await {
        Ok(c) => c,
        Err(e) => {
            crate::daemon::fatal("logmon", e);
            return ExitCode::from(1);
        }
    };
    let sending = args.message.is_some() || !args.send.is_empty();
    let code = if sending {
        send(&args, &conn, &cfg.log_exchange, &cfg.domain).await
    } else {
        monitor(&args, &conn, &cfg.log_exchange, cfg.display_utc).await
    };
    let _ = conn.close().await;
    ExitCode::from(code)
}

async fn send(
    args: &LogmonArgs,
    conn: &amqp_client::Connection,
    exchange: &str,
    domain: &str,
) -> u8 {
    let level = args.level.unwrap_or(Level::Info);
    let logger = Logger::start(conn, exchange, Identity::new("logmon", domain)).await;
    let mut status = 0;
    if let Some(message) = &args.message {
        logger.forward(level, message);
    }
    for path in &args.send {
        let result = if path.as_os_str() == "-" {
            send_lines(&logger, std::io::stdin().lock(), level)
        } else {
            match std::fs::File::open(path) {
                Ok(f) => send_lines(&logger, BufReader::new(f), level),
                Err(e) => Err(format!("{}: {e}", path.display())),
            }
        };
        if let Err(e) = result {
            crate::daemon::fatal("logmon", e);
            status = 1;
        }
    }
    logger.close().await;
    status
}

async fn monitor(
    args: &LogmonArgs,
    conn: &amqp_client::Connection,
    exchange: &str,
    utc: bool,
) -> u8 {
    let logfile = if args.log {
        match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.logfile)
        {
            Ok(f) => Some(f),
            Err(e) => {
                crate::daemon::fatal("logmon", format_args!("{}: {e}", args.logfile.display()));
                return 1;
            }
        }
    } else {
        None
    };
    let shutdown = match Shutdown::on_signals() {
        Ok(s) => s,
        Err(e) => {
            crate::daemon::fatal("logmon", format_args!("cannot watch signals: {e}"));
            return 1;
        }
    };
    let monitor = Monitor {
        exchange: exchange.to_owned(),
        filter: Filter {
            level: args.level,
            host: args.host.clone(),
            component: args.component.clone(),
            grep: args.grep.clone(),
        },
        utc,
        logfile,
        limit: args.count,
    };
    let mut out = std::io::stdout();
    match monitor.run(conn, &mut out, &shutdown, None).await {
        Ok(_) => 0,
        Err(e) => {
            crate::daemon::fatal("logmon", e);
            1
        }
    }
}
