//! Heartbeats and the peer's liveness: any bytes received prove the peer alive; every half
//! interval the connection checks that something arrived within two intervals (the spec's
//! rule) and sends a heartbeat frame if nothing else was written since the last check.

use std::time::{Duration, Instant};

use super::{encode, Phase, Proto};
use crate::error::Error;

/// Heartbeat bookkeeping: checks run every half interval.
#[derive(Debug)]
pub(super) struct Heartbeat {
    interval: Duration,
    next_check: Instant,
}

impl Heartbeat {
    /// Heartbeats every `interval`, counted from `last_received`.
    pub(super) fn new(interval: Duration, last_received: Instant) -> Self {
        Self {
            interval,
            next_check: last_received + interval / 2,
        }
    }
}

impl<T, U> Proto<T, U> {
    /// Notes that bytes arrived at `now` (any bytes prove the peer alive).
    pub(crate) fn note_received(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// Tells the state machine the owner has stopped (or resumed) reading from the socket, so
    /// that the peer's silence meanwhile is not taken for death.
    pub(crate) fn set_read_paused(&mut self, paused: bool, now: Instant) {
        if self.read_paused && !paused {
            self.last_received = now;
        }
        self.read_paused = paused;
    }

    /// When the next heartbeat check is due, while heartbeats are on.
    pub(super) fn heartbeat_deadline(&self) -> Option<Instant> {
        self.heartbeat
            .as_ref()
            .filter(|_| matches!(self.phase, Phase::Open | Phase::AwaitOpenOk))
            .map(|h| h.next_check)
    }

    /// The check every half interval: the peer's silence, and a heartbeat of ours if nothing
    /// else was written since the last check.
    pub(super) fn heartbeat_tick(&mut self, now: Instant) {
        let Some(hb) = &mut self.heartbeat else {
            return;
        };
        if now < hb.next_check || !matches!(self.phase, Phase::Open | Phase::AwaitOpenOk) {
            return;
        }
        let interval = hb.interval;
        // Catch up without firing repeatedly after a long stall of the caller.
        while hb.next_check <= now {
            hb.next_check += interval / 2;
        }
        // Spec: a peer that receives nothing for two intervals treats the connection as dead.
        if !self.read_paused && now.duration_since(self.last_received) >= interval * 2 {
            self.fail(Error::MissedHeartbeats(interval), None);
            self.phase = Phase::Closed;
            return;
        }
        if !self.wrote_since_check && self.out.is_empty() {
            encode::heartbeat(&mut self.out);
        }
        self.wrote_since_check = false;
    }
}
