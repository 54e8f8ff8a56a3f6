//! DIMS logging: log lines ([`LogLine`], [`Level`]) and a [`Logger`] that publishes them to the
//! `logs` fanout exchange and to `tracing`.
//!
//! Every PRISEM program logs its events this way. The logger never stops the program: when the
//! broker is unreachable or slow, lines still go to `tracing`, and the ones that cannot be
//! queued for the exchange are counted and dropped.
//!
//! ```no_run
//! # async fn demo(conn: amqp_client::Connection) {
//! use prisem_tools::dimslog::{Level, Logger};
//! use prisem_tools::identity::Identity;
//!
//! let logger = Logger::start(&conn, "logs", Identity::for_program("anon")).await;
//! logger.log(Level::Info, "serving anon_0.5.5");
//! logger.close().await; // sends what is queued (bounded wait)
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use amqp_client::options::{ExchangeDeclareOptions, ExchangeKind};
use amqp_client::{BasicProperties, Channel, Connection};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

mod line;

pub use line::{looks_like_guid, FullLine, Level, LogLine, Timestamp};

use crate::identity::Identity;

/// How many lines may wait for the exchange before new ones are dropped.
const QUEUE: usize = 4096;
/// How long [`Logger::close`] waits for queued lines to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Declares the log exchange the way the originals did: a non-durable fanout.
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> amqp_client::Result<()> {
    channel
        .exchange_declare(
            exchange,
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
        )
        .await
}

/// Publishes DIMS lines for one process.
#[derive(Debug)]
pub struct Logger {
    identity: Identity,
    tx: Option<mpsc::Sender<String>>,
    task: Option<JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
}

impl Logger {
    /// A logger that writes to `tracing` only.
    pub fn tracing_only(identity: Identity) -> Self {
        Self {
            identity,
            tx: None,
            task: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Opens a channel on `conn`, declares `exchange` (a non-durable fanout) and logs the start
    /// line linking this process's GUID to its program, version, host and pid. If the channel
    /// or the declaration fails, the logger still works, on `tracing` only.
    pub async fn start(conn: &Connection, exchange: &str, identity: Identity) -> Self {
        let channel = match conn.open_channel().await {
            Ok(ch) => ch,
            Err(e) => {
                tracing::warn!("log exchange unavailable, logging locally only: {e}");
                return Self::tracing_only(identity);
            }
        };
        if let Err(e) = declare_exchange(&channel, exchange).await {
            tracing::warn!("cannot declare log exchange {exchange:?}, logging locally only: {e}");
            return Self::tracing_only(identity);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(publish_lines(channel, exchange.to_owned(), rx));
        let logger = Self {
            identity,
            tx: Some(tx),
            task: Some(task),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        logger.log(Level::Info, &logger.start_line());
        logger
    }

    /// The line that links this process's GUID to what it is.
    fn start_line(&self) -> String {
        let id = &self.identity;
        format!(
            "started program={} version={} host={} pid={} guid={} date={}",
            id.program,
            id.release,
            id.hostname,
            id.pid,
            id.guid,
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }

    /// The identity this logger stamps on its lines.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Logs `message` at `level` to `tracing` and, when connected, to the exchange.
    pub fn log(&self, level: Level, message: &str) {
        match level {
            Level::Emergency | Level::Alert | Level::Critical | Level::Error => {
                tracing::error!(target: "dims", "{message}")
            }
            Level::Warning => tracing::warn!(target: "dims", "{message}"),
            Level::Notice | Level::Info => tracing::info!(target: "dims", "{message}"),
            Level::Debug => tracing::debug!(target: "dims", "{message}"),
        }
        self.send(LogLine::new(&self.identity, level, message).to_string());
    }

    /// Publishes `message` at `level` to the exchange only, without echoing it to `tracing`
    /// (logmon's send mode).
    pub fn forward(&self, level: Level, message: &str) {
        self.send(LogLine::new(&self.identity, level, message).to_string());
    }

    /// Publishes an already formed line unchanged.
    pub fn send(&self, line: String) {
        if let Some(tx) = &self.tx {
            if tx.try_send(line).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Logs at INFO.
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    /// Logs at WARNING.
    pub fn warning(&self, message: &str) {
        self.log(Level::Warning, message);
    }

    /// Logs at ERROR.
    pub fn error(&self, message: &str) {
        self.log(Level::Error, message);
    }

    /// Logs at DEBUG.
    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message);
    }

    /// How many lines were dropped because the exchange could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Sends the queued lines (waiting a few seconds at most) and stops.
    pub async fn close(mut self) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(CLOSE_WAIT, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        // Without close(), the task ends when the channel's sender is gone and it has drained.
        self.tx = None;
    }
}

async fn publish_lines(channel: Channel, exchange: String, mut rx: mpsc::Receiver<String>) {
    let props = BasicProperties::default();
    let mut failed = false;
    while let Some(line) = rx.recv().await {
        let result = channel
            .publish(
                amqp_client::Publish::exchange(&exchange),
                &props,
                line.as_bytes(),
            )
            .await;
        if let Err(e) = result {
            if !failed {
                tracing::warn!("log line not published to {exchange:?}: {e}");
                failed = true;
            }
        }
    }
    // Closing the channel flushes what was written before it.
    let _ = channel.close().await;
}
