//! The runtime every long-running PRISEM program shares: tracing set-up, and signals turned into
//! a shutdown every task can watch ("finish what is in flight, then exit 0") and a reload
//! stream for SIGHUP.
//!
//! Under systemd the same runtime speaks its protocols: [`notify_ready`] sends `READY=1` to
//! `$NOTIFY_SOCKET` (units are `Type=notify`), a SIGHUP sends `RELOADING=1` and, once the
//! [`Reloading`] guard it returns is dropped, `READY=1` again; SIGTERM and SIGINT send
//! `STOPPING=1`. When standard error is the journal (`$JOURNAL_STREAM` names it), log lines
//! carry a `<N>` syslog priority prefix instead of the time stamp, so the journal records
//! errors as errors. Outside systemd none of this changes anything.
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
use std::os::unix::net::UnixDatagram;

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

/// Formats events as the originals' verbose output: `[+] <iso8601> <message>`; with `journal`
/// set, `<N>[+] <message>` instead (N the syslog priority; the journal keeps its own time).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlusFormat {
    /// Prefix each line with its `<N>` priority and leave the time out.
    pub journal: bool,
}

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
        let level = *event.metadata().level();
        let mark = match level {
            tracing::Level::ERROR => "[-]",
            tracing::Level::WARN => "[!]",
            _ => "[+]",
        };
        if self.journal {
            write!(writer, "<{}>{mark} ", syslog_priority(level))?;
        } else {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
            write!(writer, "{mark} {now} ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The syslog priority of a tracing level (err, warning, info, debug).
pub fn syslog_priority(level: tracing::Level) -> u8 {
    match level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

/// Reports an error that ends the program: `program: error` on standard error, each line with
/// the `<3>` (err) priority prefix when standard error is the journal, so that the journal
/// records it as an error and not at the stream's default level (info).
pub fn fatal(program: &str, error: impl fmt::Display) {
    eprint!("{}", stderr_lines(program, &error, journal_priority(3)));
}

/// Reports a problem the program goes on despite, as [`fatal`] does, at the `<4>` (warning)
/// priority.
pub fn warning(program: &str, problem: impl fmt::Display) {
    eprint!("{}", stderr_lines(program, &problem, journal_priority(4)));
}

/// `priority` when standard error is the journal.
fn journal_priority(priority: u8) -> Option<u8> {
    stderr_is_journal().then_some(priority)
}

/// `program: text`, each line prefixed with `<priority>` if one is given.
fn stderr_lines(program: &str, text: &dyn fmt::Display, priority: Option<u8>) -> String {
    let text = format!("{program}: {text}");
    let prefix = priority.map(|p| format!("<{p}>")).unwrap_or_default();
    text.lines()
        .map(|line| format!("{prefix}{line}\n"))
        .collect()
}

/// Whether standard error is the journal's stream: `$JOURNAL_STREAM` is `<device>:<inode>` of
/// the socket systemd connected, and it must be the one file descriptor 2 still is (a child
/// whose stderr was redirected inherits the variable, not the stream).
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Sends `tracing` output to standard error in the `[+] <iso8601> <msg>` form (with `<N>`
/// priorities and no time when standard error is the journal). `PRISEM_LOG` (an `EnvFilter`
/// directive such as `debug` or `prisem_tools=trace`) overrides the verbosity. Calling it twice
/// is harmless (the second call does nothing).
pub fn init_tracing(verbosity: Verbosity) {
    let filter = EnvFilter::try_from_env("PRISEM_LOG")
        .unwrap_or_else(|_| EnvFilter::new(verbosity.directive()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(PlusFormat {
            journal: stderr_is_journal(),
        })
        .try_init();
}

/// Sends one state change (`READY=1`, `STOPPING=1`, …) to the service manager when
/// `$NOTIFY_SOCKET` names one (a path, or `@name` for an abstract socket); does nothing
/// otherwise. Failures are logged at debug level and never fatal: a daemon still serves when
/// the manager cannot be told.
pub fn sd_notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|sock| {
        let bytes = target.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr)
            }
            None => sock.send_to(state.as_bytes(), &target),
        }
    });
    if let Err(e) = sent {
        tracing::debug!("cannot notify the service manager at {target:?}: {e}");
    }
}

/// Tells the service manager the daemon is connected and serving (`READY=1`).
pub fn notify_ready() {
    sd_notify("READY=1");
}

/// Tells the service manager the daemon is stopping (`STOPPING=1`).
pub fn notify_stopping() {
    sd_notify("STOPPING=1");
}

/// A reload in progress: created by [`Reload::next`] (which sent `RELOADING=1`), it sends
/// `READY=1` when dropped, i.e. once the reload is done, whether it worked or not.
#[derive(Debug)]
#[must_use = "the reload is over when this is dropped: keep it until the reload is done"]
pub struct Reloading(());

impl Drop for Reloading {
    fn drop(&mut self) {
        notify_ready();
    }
}

fn monotonic_usec() -> Option<u64> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    let secs = u64::try_from(ts.tv_sec()).ok()?;
    let nanos = u64::try_from(ts.tv_nsec()).ok()?;
    Some(secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000))
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
            notify_stopping();
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

/// SIGHUP as a stream of reload requests; each one tells the service manager `RELOADING=1`.
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

    /// Waits for the next SIGHUP, tells the service manager a reload started, and returns the
    /// guard that tells it the reload is over when dropped.
    pub async fn next(&mut self) -> Reloading {
        self.hup.recv().await;
        match monotonic_usec() {
            Some(usec) => sd_notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}")),
            None => sd_notify("RELOADING=1"),
        }
        Reloading(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn fatal_errors_carry_the_err_priority_in_the_journal() {
        assert_eq!(
            stderr_lines("blockd", &"no such file", None),
            "blockd: no such file\n"
        );
        assert_eq!(
            stderr_lines("blockd", &"first\nsecond", Some(3)),
            "<3>blockd: first\n<3>second\n"
        );
    }

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
