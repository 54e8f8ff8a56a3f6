//! The runtime every long-running PRISEM program shares: tracing set-up, and signals turned into
//! a shutdown every task can watch ("finish what is in flight, then exit 0") and a reload
//! stream for SIGHUP.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use prisem_tools::daemon::Shutdown;
//!
//! let shutdown = Shutdown::on_signals()?; // SIGTERM or SIGINT
//! let mut watcher = shutdown.clone();
//! tokio::spawn(async move {
//!     watcher.requested().await;
//!     // stop taking new work here
//! });
//! shutdown.requested().await;
//! # Ok(()) }
//! ```

use std::fmt;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How much a program says on standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verbosity {
    /// Warnings and errors only.
    #[default]
    Quiet,
    /// `-v`: what the program does.
    Verbose,
    /// `-d`: debugging detail.
    Debug,
}

impl Verbosity {
    /// From the `-v` and `-d` flags.
    pub fn from_flags(verbose: bool, debug: bool) -> Self {
        match (verbose, debug) {
            (_, true) => Self::Debug,
            (true, false) => Self::Verbose,
            _ => Self::Quiet,
        }
    }

    fn directive(self) -> &'static str {
        match self {
            Self::Quiet => "warn",
            Self::Verbose => "info",
            Self::Debug => "debug",
        }
    }
}

/// Formats events as the originals' verbose output: `[+] <iso8601> <message>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlusFormat;

impl<S, N> FormatEvent<S, N> for PlusFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
        let mark = match *event.metadata().level() {
            tracing::Level::ERROR => "[-]",
            tracing::Level::WARN => "[!]",
            _ => "[+]",
        };
        write!(writer, "{mark} {now} ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Sends `tracing` output to standard error in the `[+] <iso8601> <msg>` form. `PRISEM_LOG`
/// (an `EnvFilter` directive such as `debug` or `prisem_tools=trace`) overrides the verbosity.
/// Calling it twice is harmless (the second call does nothing).
pub fn init_tracing(verbosity: Verbosity) {
    let filter = EnvFilter::try_from_env("PRISEM_LOG")
        .unwrap_or_else(|_| EnvFilter::new(verbosity.directive()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(PlusFormat)
        .try_init();
}

/// A shutdown request that any number of tasks can wait for. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A shutdown that only [`trigger`](Self::trigger) requests.
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Self {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    /// A shutdown requested by SIGTERM or SIGINT (must be called inside a tokio runtime).
    pub fn on_signals() -> std::io::Result<Self> {
        let shutdown = Self::new();
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!("{name}: finishing the work in flight, then exiting");
            trigger.trigger();
        });
        Ok(shutdown)
    }

    /// Requests the shutdown.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the shutdown was requested.
    pub fn is_requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until the shutdown is requested (at once if it already was).
    pub async fn requested(&self) {
        let mut rx = self.rx.clone();
        // An error means every sender is gone: nobody can request it any more, wait forever.
        if rx.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// SIGHUP as a stream of reload requests.
#[derive(Debug)]
pub struct Reload {
    hup: tokio::signal::unix::Signal,
}

impl Reload {
    /// Listens for SIGHUP (must be called inside a tokio runtime).
    pub fn on_sighup() -> std::io::Result<Self> {
        Ok(Self {
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next SIGHUP.
    pub async fn next(&mut self) {
        self.hup.recv().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_clone_sees_the_request() {
        let s = Shutdown::new();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.requested().await })
            })
            .collect();
        assert!(!s.is_requested());
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        s.clone().trigger();
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .unwrap()
                .unwrap();
        }
        assert!(s.is_requested());
        // Waiting after the request returns at once.
        tokio::time::timeout(Duration::from_secs(1), s.requested())
            .await
            .unwrap();
    }

    #[test]
    fn verbosity_from_flags() {
        assert_eq!(Verbosity::from_flags(false, false), Verbosity::Quiet);
        assert_eq!(Verbosity::from_flags(true, false), Verbosity::Verbose);
        assert_eq!(Verbosity::from_flags(true, true), Verbosity::Debug);
    }
}
