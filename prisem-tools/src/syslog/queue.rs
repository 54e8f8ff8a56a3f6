//! Between the listeners and the publisher: an in-memory buffer bounded in bytes, and past it
//! the on-disk spool (when there is one). Order is kept: while the spool holds records not yet
//! read back, new messages go to the spool too, and the publisher takes the memory first, then
//! the spool.
//!
//! When neither has room, [`Queue::push`] hands the message back: stream listeners wait for
//! room (and so stop reading their sockets), datagram listeners count a drop.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::parse::Outgoing;
use super::publish::Stats;
use super::spool::{Record, Spool};

/// Where a message taken from the queue was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The in-memory buffer.
    Memory,
    /// The spool.
    Spool,
}

fn size(m: &Outgoing) -> u64 {
    (m.body.len()
        + m.routing_key.len()
        + m.headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + 64) as u64
}

struct State {
    memory: VecDeque<Record>,
    memory_bytes: u64,
    memory_limit: u64,
    spool: Option<Spool>,
    /// The spool holds records not yet read: new messages go there.
    spooling: bool,
    next_id: u64,
    closed: bool,
    /// The last error writing the spool, logged once.
    spool_failed: bool,
}

/// The queue shared by the listeners and the publisher.
pub struct Queue {
    state: Mutex<State>,
    /// Something was pushed (or the queue closed).
    ready: Notify,
    /// Room was made.
    room: Notify,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

impl Queue {
    /// A queue holding at most `memory_limit` bytes in memory, then spilling to `spool`.
    /// Records already in the spool are counted as replayed and are taken first.
    pub fn new(memory_limit: u64, spool: Option<Spool>, stats: Arc<Stats>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let (next_id, unread, bytes) = match &spool {
            Some(s) => (now.max(s.last_id() + 1), s.unread(), s.bytes()),
            None => (now, 0, 0),
        };
        stats.replayed.fetch_add(unread, Ordering::Relaxed);
        stats.spooled.fetch_add(unread, Ordering::Relaxed);
        stats.spool_bytes.store(bytes, Ordering::Relaxed);
        Self {
            state: Mutex::new(State {
                memory: VecDeque::new(),
                memory_bytes: 0,
                memory_limit: memory_limit.max(1),
                spool,
                spooling: unread > 0,
                next_id,
                closed: false,
                spool_failed: false,
            }),
            ready: Notify::new(),
            room: Notify::new(),
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `msg` (in memory if it has room and nothing waits in the spool, else in the
    /// spool); hands it back when both are full.
    pub fn push(&self, msg: Outgoing) -> Result<(), Outgoing> {
        let mut st = self.lock();
        let len = size(&msg);
        let id = st.next_id;
        if !st.spooling && (st.memory.is_empty() || st.memory_bytes + len <= st.memory_limit) {
            st.memory.push_back(Record { id, msg });
            st.memory_bytes += len;
            st.next_id += 1;
            self.stats.buffered.fetch_add(1, Ordering::Relaxed);
            self.stats
                .buffered_bytes
                .store(st.memory_bytes, Ordering::Relaxed);
            drop(st);
            self.ready.notify_one();
            return Ok(());
        }
        let st = &mut *st;
        let Some(spool) = st.spool.as_mut() else {
            return Err(msg);
        };
        match spool.append(id, &msg) {
            Ok(true) => {
                st.spool_failed = false;
                st.spooling = true;
                st.next_id += 1;
                self.stats.spooled.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .spool_bytes
                    .store(spool.bytes(), Ordering::Relaxed);
                self.ready.notify_one();
                Ok(())
            }
            Ok(false) => Err(msg),
            Err(e) => {
                if !std::mem::replace(&mut st.spool_failed, true) {
                    tracing::error!("cannot write the spool: {e}");
                }
                Err(msg)
            }
        }
    }

    /// Waits until room may have been made (or a short while).
    pub async fn wait_room(&self) {
        let _ =
            tokio::time::timeout(std::time::Duration::from_millis(100), self.room.notified()).await;
    }

    /// The oldest message not yet taken, or `None` when there is none now.
    pub fn take(&self) -> Option<(Record, Origin)> {
        let mut st = self.lock();
        if let Some(r) = st.memory.pop_front() {
            st.memory_bytes -= size(&r.msg);
            self.stats
                .buffered_bytes
                .store(st.memory_bytes, Ordering::Relaxed);
            drop(st);
            self.room.notify_waiters();
            return Some((r, Origin::Memory));
        }
        if !st.spooling {
            return None;
        }
        let st = &mut *st;
        let spool = st.spool.as_mut()?;
        loop {
            match spool.read_next() {
                Ok(Some(r)) => return Some((r, Origin::Spool)),
                Ok(None) => {
                    // Read to the end: new messages go to memory again.
                    st.spooling = false;
                    if let Err(e) = spool.seal() {
                        tracing::error!("cannot sync the spool: {e}");
                    }
                    // The closed segment may be confirmed already.
                    spool.confirm(0);
                    self.stats
                        .spool_bytes
                        .store(spool.bytes(), Ordering::Relaxed);
                    self.room.notify_waiters();
                    return None;
                }
                Err(e) => {
                    tracing::error!("spool record lost: {e}");
                    self.stats.spooled.fetch_sub(1, Ordering::Relaxed);
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Waits for something to take (or for the queue to close).
    pub async fn wait_ready(&self) {
        self.ready.notified().await;
    }

    /// Whether the listeners are gone and nothing is left to take.
    pub fn finished(&self) -> bool {
        let st = self.lock();
        st.closed && st.memory.is_empty() && !st.spooling
    }

    /// The broker confirmed (or returned) the message `id`, and every earlier one.
    pub fn confirmed(&self, id: u64, origin: Origin) {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        match origin {
            Origin::Memory => {
                self.stats.buffered.fetch_sub(1, Ordering::Relaxed);
            }
            Origin::Spool => {
                self.stats.spooled.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let mut st = self.lock();
        if let Some(spool) = st.spool.as_mut() {
            let before = spool.bytes();
            spool.confirm(id);
            if spool.bytes() != before {
                self.stats
                    .spool_bytes
                    .store(spool.bytes(), Ordering::Relaxed);
                drop(st);
                self.room.notify_waiters();
            }
        }
    }

    /// No more pushes: the publisher ends once everything is taken and confirmed.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// A handle to fdatasync for what was spooled since the last call, and the confirmed id
    /// saved; done every second by the bridge.
    pub fn sync(&self) -> Option<std::fs::File> {
        let mut st = self.lock();
        let spool = st.spool.as_mut()?;
        if let Err(e) = spool.save_confirmed() {
            tracing::warn!("cannot save the confirmed id in the spool: {e}");
        }
        spool.sync_handle().unwrap_or_else(|e| {
            tracing::warn!("cannot sync the spool: {e}");
            None
        })
    }

    /// At shutdown: the unconfirmed messages (in order) that were taken from memory, and what
    /// is still in memory, go to the spool, each run of them between records taken from the
    /// spool as a segment of its own (so a replay keeps the order); the spool is closed.
    /// Returns how many messages were kept, or, without a spool, how many were lost.
    pub fn shutdown(&self, unconfirmed: Vec<(Record, Origin)>) -> Result<(usize, bool), String> {
        let mut st = self.lock();
        let st = &mut *st;
        let mut runs: Vec<Vec<Record>> = vec![vec![]];
        for (r, origin) in unconfirmed {
            match origin {
                Origin::Memory => runs.last_mut().map(|run| run.push(r)).unwrap_or_default(),
                Origin::Spool => runs.push(vec![]),
            }
        }
        if let Some(run) = runs.last_mut() {
            run.extend(st.memory.drain(..));
        }
        runs.retain(|r| !r.is_empty());
        st.memory_bytes = 0;
        st.closed = true;
        let n: usize = runs.iter().map(Vec::len).sum();
        self.stats.buffered_bytes.store(0, Ordering::Relaxed);
        self.stats.buffered.fetch_sub(n as u64, Ordering::Relaxed);
        let Some(spool) = st.spool.as_mut() else {
            self.stats.dropped.fetch_add(n as u64, Ordering::Relaxed);
            return Ok((n, false));
        };
        let mut done = spool.seal();
        for run in &runs {
            done = done.and_then(|()| spool.keep(run));
        }
        done = done.and_then(|()| spool.save_confirmed());
        self.stats.spooled.fetch_add(n as u64, Ordering::Relaxed);
        self.stats
            .spool_bytes
            .store(spool.bytes(), Ordering::Relaxed);
        done.map_err(|e| format!("cannot write the spool: {e}"))?;
        Ok((n, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize) -> Outgoing {
        Outgoing {
            routing_key: "k".into(),
            headers: vec![],
            body: format!("{i:0100}").into_bytes(),
        }
    }

    fn body(r: &Record) -> usize {
        std::str::from_utf8(&r.msg.body).unwrap().parse().unwrap()
    }

    #[test]
    fn overflow_to_spool_keeps_order_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(Stats::default());
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let q = Queue::new(1000, Some(spool), stats.clone());
        for i in 0..20 {
            q.push(msg(i)).unwrap();
        }
        let s = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        assert!(s(&stats.buffered) > 0 && s(&stats.spooled) > 0);
        assert_eq!(s(&stats.buffered) + s(&stats.spooled), 20);
        assert!(s(&stats.spool_bytes) > 0);
        // Taking from memory makes room, but new messages still go behind the spooled ones.
        let (first, o) = q.take().unwrap();
        assert_eq!((body(&first), o), (0, Origin::Memory));
        q.push(msg(20)).unwrap();
        let mut got = vec![(first, o)];
        while let Some(t) = q.take() {
            got.push(t);
        }
        assert_eq!(
            got.iter().map(|(r, _)| body(r)).collect::<Vec<_>>(),
            (0..=20).collect::<Vec<_>>()
        );
        assert!(got.windows(2).all(|w| w[0].0.id < w[1].0.id));
        // The spool is read to its end: memory again.
        q.push(msg(21)).unwrap();
        assert_eq!(q.take().unwrap().1, Origin::Memory);
        for (r, o) in &got {
            q.confirmed(r.id, *o);
        }
        assert_eq!(s(&stats.spooled), 0);
        assert_eq!(s(&stats.spool_bytes), 0);
        assert_eq!(s(&stats.published), 21);
    }

    #[test]
    fn full_without_spool_hands_back() {
        let stats = Arc::new(Stats::default());
        let q = Queue::new(500, None, stats);
        let mut n = 0;
        while q.push(msg(n)).is_ok() {
            n += 1;
        }
        assert!((1..5).contains(&n), "{n}");
        q.take().unwrap();
        assert!(q.push(msg(99)).is_ok());
    }

    #[test]
    fn shutdown_keeps_memory_before_unread_spool() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(Stats::default());
        let q = Queue::new(1000, Some(Spool::open(dir.path(), 1 << 20).unwrap()), stats);
        for i in 0..20 {
            q.push(msg(i)).unwrap();
        }
        // Everything taken (the spool read to its end), then more in memory and the spool.
        let taken: Vec<(Record, Origin)> = std::iter::from_fn(|| q.take()).collect();
        assert!(taken.iter().any(|t| t.1 == Origin::Spool));
        for i in 20..40 {
            q.push(msg(i)).unwrap();
        }
        let mut taken = taken.into_iter();
        let (a, o) = taken.next().unwrap();
        q.confirmed(a.id, o);
        assert!(q.shutdown(taken.collect()).unwrap().1);
        drop(q);
        let stats = Arc::new(Stats::default());
        let q = Queue::new(1000, Some(Spool::open(dir.path(), 1 << 20).unwrap()), stats);
        let got: Vec<usize> = std::iter::from_fn(|| q.take())
            .map(|(r, _)| body(&r))
            .collect();
        assert_eq!(got, (1..40).collect::<Vec<_>>());
    }
}
