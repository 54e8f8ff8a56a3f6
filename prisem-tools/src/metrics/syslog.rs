//! The syslog bridge's counters, read from its [`Stats`] at each scrape.

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
}

fn gauge(value: &AtomicU64) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(value.load(Ordering::Relaxed)).unwrap_or(i64::MAX))
}

impl Collector for SyslogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let counters: [(&str, &str, &AtomicU64); 9] = [
            (
                "prisem_syslog_received",
                "Syslog lines received (including truncated and unparsed ones)",
                &s.received,
            ),
            (
                "prisem_syslog_replayed",
                "Messages found in the spool at start (received by an earlier run)",
                &s.replayed,
            ),
            (
                "prisem_syslog_sent",
                "basic.publish sent to the syslog exchange (a message republished after a loss counts again)",
                &s.sent,
            ),
            (
                "prisem_syslog_published",
                "Messages the broker confirmed: acked, or returned as unroutable",
                &s.published,
            ),
            (
                "prisem_syslog_unrouted",
                "Of the published messages, those the broker returned as unroutable (no queue bound for their key)",
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
                "Datagrams dropped because memory and spool were full, and messages lost at exit without a spool",
                &s.dropped,
            ),
            (
                "prisem_syslog_kernel_drops",
                "Datagrams the kernel dropped before the bridge read them (UDP receive buffers full)",
                &s.kernel_drops,
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value.load(Ordering::Relaxed));
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let gauges: [(&str, &str, &AtomicU64); 4] = [
            (
                "prisem_syslog_buffered",
                "Messages in memory (queued or in flight), not yet confirmed",
                &s.buffered,
            ),
            (
                "prisem_syslog_buffered_bytes",
                "Bytes of the in-memory buffer (queued, not counting those in flight)",
                &s.buffered_bytes,
            ),
            (
                "prisem_syslog_spooled",
                "Messages in the spool, not yet confirmed",
                &s.spooled,
            ),
            (
                "prisem_syslog_spool_bytes",
                "Bytes of the spool's segment files",
                &s.spool_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let g = gauge(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

/// Publishes the syslog bridge's `stats` as `prisem_syslog_*` metrics. Call it once per
/// process.
pub fn register_syslog(stats: Arc<Stats>) {
    global().with_registry(|r| r.register_collector(Box::new(SyslogCollector { stats })));
}
