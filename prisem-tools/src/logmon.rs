//! `logmon`: watch the DIMS log exchange, or send lines to it.
//!
//! Monitoring binds an exclusive, server-named queue to the exchange and consumes it with
//! no-ack. Each line is parsed ([`LogLine`]); a full line is printed with *its sender's*
//! timestamp, converted to UTC or local time; bare `<guid>: message` lines and anything else
//! (a line without a space included) are printed as they came. Lines can be filtered by level
//! (at or above), host, component and a regular expression.

use std::io::Write;

use amqp_client::options::{BindOptions, ConsumeOptions, QueueDeclareOptions};
use amqp_client::Connection;
use futures_util::StreamExt;
use regex::Regex;

use crate::daemon::Shutdown;
use crate::dimslog::{declare_exchange, Level, LogLine, Logger};

/// Which lines to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Show lines at this level or more severe (lines without a level count as INFO).
    pub level: Option<Level>,
    /// Show only lines from this host (the full name, or its short name before the first dot).
    pub host: Option<String>,
    /// Show only lines of this component (program).
    pub component: Option<String>,
    /// Show only lines whose text matches this expression.
    pub grep: Option<Regex>,
}

impl Filter {
    /// Whether `line` (whose text is `text`) passes.
    pub fn accepts(&self, line: &LogLine, text: &str) -> bool {
        if let Some(level) = self.level {
            if !line.level().at_least(level) {
                return false;
            }
        }
        if let Some(want) = &self.host {
            let Some(host) = line.host() else {
                return false;
            };
            let short = host.split('.').next().unwrap_or(host);
            if host != want && short != want {
                return false;
            }
        }
        if let Some(want) = &self.component {
            if line.component() != Some(want.as_str()) {
                return false;
            }
        }
        if let Some(re) = &self.grep {
            if !re.is_match(text) {
                return false;
            }
        }
        true
    }
}

/// How to monitor.
#[derive(Debug)]
pub struct Monitor {
    /// The log exchange (normally `logs`).
    pub exchange: String,
    /// Which lines to show.
    pub filter: Filter,
    /// Show times in UTC (else local time).
    pub utc: bool,
    /// Also append each shown line to this file.
    pub logfile: Option<std::fs::File>,
    /// Stop after this many lines were shown (`None`: until shut down).
    pub limit: Option<u64>,
}

impl Monitor {
    /// Prints lines to `out` until `shutdown`, the limit, or a broken connection. Returns how
    /// many lines were shown.
    pub async fn run(
        mut self,
        conn: &Connection,
        out: &mut (dyn Write + Send),
        shutdown: &Shutdown,
        ready: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<u64, String> {
        let channel = conn.open_channel().await.map_err(|e| e.to_string())?;
        declare_exchange(&channel, &self.exchange)
            .await
            .map_err(|e| format!("cannot declare exchange {:?}: {e}", self.exchange))?;
        let queue = channel
            .queue_declare(
                "",
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?
            .name;
        channel
            .queue_bind(&queue, &self.exchange, "", BindOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut lines = channel
            .basic_consume(
                &queue,
                ConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("monitoring exchange {}", self.exchange);
        if let Some(ready) = ready {
            let _ = ready.send(());
        }
        let mut shown = 0u64;
        loop {
            if self.limit.is_some_and(|l| shown >= l) {
                break;
            }
            let delivery = tokio::select! {
                biased;
                () = shutdown.requested() => break,
                d = lines.next() => d,
            };
            let delivery = match delivery {
                None => return Err("the log consumer ended".into()),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(d)) => d,
            };
            let text = String::from_utf8_lossy(&delivery.body);
            // One message may hold several lines (a sender that batched them).
            for raw in text.lines() {
                let line = LogLine::parse(raw);
                if !self.filter.accepts(&line, raw) {
                    continue;
                }
                let shown_line = line.render(self.utc);
                writeln!(out, "{shown_line}").map_err(|e| format!("standard output: {e}"))?;
                out.flush().map_err(|e| format!("standard output: {e}"))?;
                if let Some(file) = &mut self.logfile {
                    writeln!(file, "{shown_line}").map_err(|e| format!("log file: {e}"))?;
                }
                shown += 1;
            }
        }
        Ok(shown)
    }
}

/// Sends each line of `input` as one DIMS line at `level`; empty lines are skipped. Returns how
/// many were sent.
pub fn send_lines(
    logger: &Logger,
    input: impl std::io::BufRead,
    level: Level,
) -> Result<u64, String> {
    let mut sent = 0;
    for line in input.lines() {
        let line = line.map_err(|e| format!("reading input: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        logger.forward(level, &line);
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "76f1f5bb-19b2-4696-adbc-b5598cb35d1a";

    fn line(host: &str, component: &str, level: &str, msg: &str) -> (LogLine, String) {
        let text =
            format!("2014-11-05T17:01:53.628154-08:00 {host} {GUID} {component} {level} {msg}");
        (LogLine::parse(&text), text)
    }

    #[test]
    fn filters_by_level_host_component_and_text() {
        let (err, err_text) = line("db1.example.org", "anon", "ERROR", "disk full");
        let (dbg, dbg_text) = line("web.example.org", "crosscor", "DEBUG", "tick");
        let bare = LogLine::parse(&format!("{GUID}: started"));

        let all = Filter::default();
        assert!(all.accepts(&err, &err_text) && all.accepts(&dbg, &dbg_text));

        let warn = Filter {
            level: Some(Level::Warning),
            ..Default::default()
        };
        assert!(warn.accepts(&err, &err_text));
        assert!(!warn.accepts(&dbg, &dbg_text));
        assert!(!warn.accepts(&bare, "x"), "bare lines count as INFO");

        let host = Filter {
            host: Some("db1".into()),
            ..Default::default()
        };
        assert!(host.accepts(&err, &err_text));
        assert!(!host.accepts(&dbg, &dbg_text));
        assert!(!host.accepts(&bare, "x"));
        let full = Filter {
            host: Some("web.example.org".into()),
            ..Default::default()
        };
        assert!(full.accepts(&dbg, &dbg_text));

        let comp = Filter {
            component: Some("crosscor".into()),
            ..Default::default()
        };
        assert!(comp.accepts(&dbg, &dbg_text) && !comp.accepts(&err, &err_text));

        let grep = Filter {
            grep: Some(Regex::new("disk (full|empty)").unwrap()),
            ..Default::default()
        };
        assert!(grep.accepts(&err, &err_text) && !grep.accepts(&dbg, &dbg_text));
    }
}
