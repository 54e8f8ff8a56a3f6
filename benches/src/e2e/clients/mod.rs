//! One module per client library, each running every scenario the same way through its own API.
//!
//! A scenario function connects, sets up (channels, QoS, consumers) unmetered, then measures
//! exactly the work the scenario names, then tears down unmetered.

mod amqprs;
mod ceiling;
mod lapin;
mod ours;

pub(crate) use self::amqprs::Helper;

use std::time::Duration;

use super::usage::Sample;
use super::{ClientKind, Scenario, WorkSpec};

/// Errors of a run: every library has its own error type; a worker only reports them.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A plain error from a message.
/// Parses the broker URL with the client's URI model; the peers here speak plain AMQP only.
pub(crate) fn plain_uri(url: &str) -> Result<amqp_client::AmqpUri, BoxError> {
    let uri = amqp_client::AmqpUri::parse(url).map_err(|e| fail(e.to_string()))?;
    if uri.scheme != amqp_client::uri::Scheme::Amqp {
        return Err(fail(format!("{uri}: only amqp:// URLs are supported")));
    }
    Ok(uri)
}

pub(crate) fn fail(msg: impl Into<String>) -> BoxError {
    msg.into().into()
}

/// RabbitMQ's direct reply-to pseudo-queue.
pub(crate) const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// RPC calls made before the measured ones, so connection warm-up is not in the latencies.
pub(crate) const RPC_WARMUP: u64 = 100;

/// How often a publisher polls the queue depth while waiting for its messages to land.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// What a worker measured.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// CPU and wall time of the measured interval.
    pub(crate) sample: Sample,
    /// How many messages (or calls) the scenario verifiably got through.
    pub(crate) count: u64,
    /// Payload bytes moved in the measured interval.
    pub(crate) bytes: u64,
    /// Per-call latencies (RPC only).
    pub(crate) latencies: Vec<Duration>,
}

impl Outcome {
    /// A run that moved `count` messages carrying `bytes` payload octets, without latencies.
    pub(crate) fn moved(sample: Sample, count: u64, bytes: u64) -> Self {
        Self {
            sample,
            count,
            bytes,
            latencies: Vec::new(),
        }
    }

    /// A run that moved `count` messages of the scenario's size.
    pub(crate) fn messages(sample: Sample, count: u64, spec: &WorkSpec) -> Self {
        Self::moved(sample, count, count * spec.size as u64)
    }
}

/// Runs one scenario with one client library.
pub(crate) async fn run(spec: &WorkSpec) -> Result<Outcome, BoxError> {
    match spec.client {
        ClientKind::Ours => ours::run(spec).await,
        ClientKind::Lapin => lapin::run(spec).await,
        ClientKind::Amqprs => amqprs::run(spec).await,
        ClientKind::Ceiling => ceiling::run(spec).await,
    }
}

/// The message body every scenario sends: `size` bytes of a fixed pattern.
pub(crate) fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// Whether the `received`-th delivery (1-based) closes an ack batch: every `ack_every`
/// deliveries, and the last one.
pub(crate) fn ack_due(received: u64, spec: &WorkSpec) -> bool {
    received % spec.ack_every.max(1) == 0 || received == spec.count
}

/// The pause a consumer takes after each delivery (the memory scenario's slow consumer).
pub(crate) fn consumer_pause(spec: &WorkSpec) -> Option<Duration> {
    (spec.scenario == Scenario::Memory && !spec.sleep.is_zero()).then_some(spec.sleep)
}

/// Counts publisher confirms for a channel whose delivery tags run 1..=expected, accepting
/// single and `multiple` acks in any order, each tag counted once.
#[derive(Debug)]
pub(crate) struct ConfirmTally {
    seen: Vec<bool>,
    /// Tags below this are all counted.
    floor: u64,
    acked: u64,
    nacked: u64,
}

impl ConfirmTally {
    /// A tally for `expected` publishes.
    pub(crate) fn new(expected: u64) -> Self {
        Self {
            seen: vec![false; usize::try_from(expected).unwrap_or(0) + 1],
            floor: 1,
            acked: 0,
            nacked: 0,
        }
    }

    /// Records an ack (`nack == false`) or nack for `tag`, or for every tag up to it when
    /// `multiple`. Tags beyond the expected range are ignored.
    pub(crate) fn record(&mut self, tag: u64, multiple: bool, nack: bool) {
        let last = tag.min(self.seen.len() as u64 - 1);
        let first = if multiple { self.floor } else { tag };
        for t in first..=last {
            if let Some(slot) = self.seen.get_mut(t as usize) {
                if !*slot && t > 0 {
                    *slot = true;
                    if nack {
                        self.nacked += 1;
                    } else {
                        self.acked += 1;
                    }
                }
            }
        }
        if multiple {
            self.floor = self.floor.max(last + 1);
        }
    }

    /// Acks counted so far.
    pub(crate) fn acked(&self) -> u64 {
        self.acked
    }

    /// Nacks counted so far.
    pub(crate) fn nacked(&self) -> u64 {
        self.nacked
    }

    /// Whether every expected tag has been confirmed one way or the other.
    pub(crate) fn complete(&self) -> bool {
        self.acked + self.nacked + 1 >= self.seen.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_each_tag_once() {
        let mut t = ConfirmTally::new(10);
        t.record(3, true, false);
        assert_eq!(t.acked(), 3);
        t.record(5, false, false);
        t.record(5, false, false);
        assert_eq!(t.acked(), 4);
        t.record(6, true, false);
        assert_eq!(t.acked(), 6);
        t.record(7, false, true);
        assert_eq!(t.nacked(), 1);
        assert!(!t.complete());
        t.record(99, true, false);
        assert_eq!(t.acked(), 9);
        assert!(t.complete());
    }

    #[test]
    fn ack_batches_close_on_multiples_and_the_last() {
        let spec = WorkSpec {
            client: ClientKind::Lapin,
            scenario: Scenario::Consume,
            url: String::new(),
            queue: String::new(),
            count: 250,
            size: 1,
            prefetch: 1000,
            ack_every: 100,
            sleep: Duration::ZERO,
            broker_pid: None,
        };
        let due: Vec<u64> = (1..=250).filter(|n| ack_due(*n, &spec)).collect();
        assert_eq!(due, vec![100, 200, 250]);
        assert_eq!(consumer_pause(&spec), None);
        let slow = WorkSpec {
            scenario: Scenario::Memory,
            sleep: Duration::from_millis(5),
            ..spec
        };
        assert_eq!(consumer_pause(&slow), Some(Duration::from_millis(5)));
    }

    #[test]
    fn payload_has_the_requested_size() {
        let p = payload(300);
        assert_eq!(p.len(), 300);
        assert_eq!(p.get(251), Some(&0));
        assert_eq!(p.get(250), Some(&250));
    }
}
