//! The syslog bridge's counters, read from its [`Stats`] at each scrape.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::global;
use crate::syslog::Stats;

#[derive(Debug)]
struct SyslogCollector {
    stats: Arc<Stats>,
    spool: Option<PathBuf>,
}

/// Bytes in the spool directory's regular files (0 without a spool or when unreadable).
fn spool_bytes(dir: Option<&PathBuf>) -> u64 {
    let Some(dir) = dir else { return 0 };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len())
        .sum()
}

impl Collector for SyslogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let counters: [(&str, &str, &AtomicU64); 8] = [
            (
                "prisem_syslog_received",
                "Syslog lines received (including truncated and unparsed ones)",
                &s.received,
            ),
            (
                "prisem_syslog_published",
                "basic.publish sent to the syslog exchange (a message republished after a loss counts again)",
                &s.published,
            ),
            (
                "prisem_syslog_confirmed",
                "Messages the broker confirmed (acked and routed)",
                &s.confirmed,
            ),
            (
                "prisem_syslog_unrouted",
                "Messages the broker returned as unroutable (no queue bound for their key)",
                &s.unrouted,
            ),
            (
                "prisem_syslog_unparsed",
                "Lines that could not be parsed (published under the key unparsed)",
                &s.unparsed,
            ),
            (
                "prisem_syslog_truncated",
                "Lines cut at the maximum message size",
                &s.truncated,
            ),
            (
                "prisem_syslog_dropped",
                "Datagrams dropped because the buffer was full",
                &s.dropped,
            ),
            (
                "prisem_syslog_spooled",
                "Messages written to the spool because the broker had not confirmed them",
                &s.spooled,
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value.load(Ordering::Relaxed));
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let pending =
            ConstGauge::new(i64::try_from(s.pending.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        pending.encode(encoder.encode_descriptor(
            "prisem_syslog_pending",
            "Messages waiting in memory or in flight to the broker",
            None,
            pending.metric_type(),
        )?)?;
        let spool =
            ConstGauge::new(i64::try_from(spool_bytes(self.spool.as_ref())).unwrap_or(i64::MAX));
        spool.encode(encoder.encode_descriptor(
            "prisem_syslog_spool_bytes",
            "Bytes in the spool directory (messages kept for the next start)",
            None,
            spool.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Publishes the syslog bridge's `stats` (and the size of its `spool` directory) as
/// `prisem_syslog_*` metrics. Call it once per process.
pub fn register_syslog(stats: Arc<Stats>, spool: Option<PathBuf>) {
    global().with_registry(|r| r.register_collector(Box::new(SyslogCollector { stats, spool })));
}
