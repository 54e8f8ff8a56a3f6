//! The syslog → AMQP bridge: listeners for UDP, TCP, unix datagram and unix stream sockets,
//! RFC 5424/3164 parsing ([`parse`]), RFC 6587 stream framing ([`framing`]) and a publisher
//! with confirms that republishes whatever the broker did not confirm ([`publish`]).
//!
//! Every received line is published once it is parsed, to the durable topic exchange `syslog`
//! (persistent, mandatory): a line that cannot be parsed goes out raw under the routing key
//! `unparsed` with a header saying why. Between the listeners and the publisher, the
//! [`queue`] holds messages in memory up to a size in bytes, then in the [`spool`] on disk.

pub mod framing;
pub mod parse;
pub mod publish;
pub mod queue;
pub mod spool;
pub mod udp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use amqp_client::Connection;
use bytes::BytesMut;
use chrono::Utc;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket, UnixDatagram, UnixListener};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::daemon::Shutdown;
use framing::Deframer;
use parse::{to_outgoing, Outgoing, Received, RoutingRule, Transport};
pub use publish::Stats;
use queue::Queue;

/// What the bridge listens on and how it publishes.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// UDP addresses.
    pub udp: Vec<SocketAddr>,
    /// TCP addresses.
    pub tcp: Vec<SocketAddr>,
    /// Unix datagram socket paths (like `/dev/log`).
    pub unix: Vec<PathBuf>,
    /// Unix stream socket paths.
    pub unix_stream: Vec<PathBuf>,
    /// Largest message kept; longer ones are cut and counted.
    pub max_message: usize,
    /// The exchange (`syslog`).
    pub exchange: String,
    /// How routing keys are made.
    pub routing: RoutingRule,
    /// Bytes of messages held in memory between the listeners and the publisher; past it they
    /// go to the spool, and when that is full (or there is none) stream listeners stop reading
    /// and datagrams are dropped (and counted).
    pub buffer_bytes: u64,
    /// Messages published and not yet confirmed, at most.
    pub window: usize,
    /// How often the stats line is logged.
    pub stats_interval: Duration,
    /// How long a shutdown waits for confirms of what is buffered.
    pub drain_timeout: Duration,
    /// The spool directory: messages past the memory buffer, and those unconfirmed at
    /// shutdown, kept across restarts (`None`: no spool; what is unconfirmed when the bridge
    /// stops is lost, and counted).
    pub spool: Option<PathBuf>,
    /// The most bytes the spool's segments may take.
    pub spool_limit: u64,
    /// The receive buffer asked for each UDP socket (`SO_RCVBUF`, forced past the system's
    /// maximum when the bridge may); `None` keeps the system's default.
    pub udp_rcvbuf: Option<usize>,
    /// The counters to update (`None`: fresh ones); given so they can be read while running.
    pub stats: Option<Arc<Stats>>,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            udp: vec![],
            tcp: vec![],
            unix: vec![],
            unix_stream: vec![],
            max_message: 64 * 1024,
            exchange: "syslog".into(),
            routing: RoutingRule::default(),
            buffer_bytes: 64 << 20,
            window: 1000,
            stats_interval: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            spool: None,
            spool_limit: 1 << 30,
            udp_rcvbuf: Some(8 << 20),
            stats: None,
        }
    }
}

#[derive(Clone)]
struct Sink {
    queue: Arc<Queue>,
    stats: Arc<Stats>,
    routing: Arc<RoutingRule>,
}

impl Sink {
    fn make(&self, raw: Vec<u8>, truncated: bool, peer: String, transport: Transport) -> Outgoing {
        let rec = Received {
            raw,
            peer,
            transport,
            received_at: Utc::now(),
            truncated,
        };
        let out = to_outgoing(&rec, &self.routing);
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        if truncated {
            self.stats.truncated.fetch_add(1, Ordering::Relaxed);
        }
        if out.routing_key == "unparsed" {
            self.stats.unparsed.fetch_add(1, Ordering::Relaxed);
        }
        out
    }

    /// Stream input: waits for room (back-pressure on the sender, who is not read meanwhile).
    async fn send(&self, mut out: Outgoing) {
        loop {
            match self.queue.push(out) {
                Ok(()) => return,
                Err(back) => {
                    out = back;
                    self.queue.wait_room().await;
                }
            }
        }
    }

    /// Datagram input: drops (and counts) when full.
    fn try_send(&self, out: Outgoing) {
        if self.queue.push(out).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Bytes of datagrams read and not yet parsed, at most.
const UDP_BACKLOG: usize = 16 << 20;

/// A datagram read, waiting to be parsed: its bytes, whether it was cut, the sender, and its
/// share of the backlog.
type Datagram = (Vec<u8>, bool, SocketAddr, OwnedSemaphorePermit);

fn datagram(buf: &[u8], max: usize) -> (Vec<u8>, bool) {
    let mut data = buf.get(..buf.len().min(max)).unwrap_or(buf);
    while let Some((last, rest)) = data.split_last() {
        if *last == b'\n' || *last == 0 || *last == b'\r' {
            data = rest;
        } else {
            break;
        }
    }
    (data.to_vec(), buf.len() > max)
}

async fn read_stream<R: AsyncRead + Unpin>(
    mut r: R,
    sink: Sink,
    max: usize,
    peer: String,
    transport: Transport,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut deframer = Deframer::new(max);
    loop {
        match r.read_buf(&mut buf).await {
            Ok(0) => {
                while let Some(f) = deframer.finish(&mut buf) {
                    let out = sink.make(f.data, f.truncated, peer.clone(), transport);
                    sink.send(out).await;
                }
                return;
            }
            Ok(_) => {
                while let Some(f) = deframer.next(&mut buf) {
                    let out = sink.make(f.data, f.truncated, peer.clone(), transport);
                    sink.send(out).await;
                }
            }
            Err(e) => {
                tracing::warn!("{} {peer}: read error: {e}", transport.name());
                return;
            }
        }
    }
}

/// Binds every listener of `cfg`; fails with a message naming the address that could not be
/// bound.
/// Returns the inodes of the UDP sockets (to read their kernel drop counts).
async fn listen(
    cfg: &BridgeConfig,
    sink: Sink,
    tasks: &mut JoinSet<()>,
) -> Result<Vec<u64>, String> {
    let max = cfg.max_message;
    let mut udp_inodes = vec![];
    for addr in &cfg.udp {
        let sock = udp::bind(*addr, cfg.udp_rcvbuf)
            .and_then(UdpSocket::from_std)
            .map_err(|e| format!("cannot listen on UDP {addr}: {e}"))?;
        if let Some(ino) = udp::inode(&sock) {
            udp_inodes.push(ino);
        }
        // Reading and parsing are two tasks, so the socket is drained while lines are parsed;
        // between them at most UDP_BACKLOG bytes wait (past that, datagrams are dropped and
        // counted).
        let budget = Arc::new(Semaphore::new(UDP_BACKLOG));
        let (tx, mut rx) = mpsc::unbounded_channel::<Datagram>();
        let stats = sink.stats.clone();
        tasks.spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                match sock.recv_from(&mut buf).await {
                    Ok((n, from)) => {
                        let (data, cut) = datagram(buf.get(..n).unwrap_or(&[]), max);
                        let cost = u32::try_from(data.len().max(1)).unwrap_or(u32::MAX);
                        match budget.clone().try_acquire_many_owned(cost) {
                            Ok(permit) => {
                                let _ = tx.send((data, cut, from, permit));
                            }
                            Err(_) => {
                                stats.received.fetch_add(1, Ordering::Relaxed);
                                stats.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(e) => tracing::warn!("UDP receive: {e}"),
                }
            }
        });
        let sink = sink.clone();
        tasks.spawn(async move {
            while let Some((data, cut, from, _permit)) = rx.recv().await {
                sink.try_send(sink.make(data, cut, from.to_string(), Transport::Udp));
            }
        });
    }
    for path in &cfg.unix {
        let _ = std::fs::remove_file(path);
        let sock = UnixDatagram::bind(path)
            .map_err(|e| format!("cannot listen on unix socket {}: {e}", path.display()))?;
        let sink = sink.clone();
        let peer = path.display().to_string();
        tasks.spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                match sock.recv(&mut buf).await {
                    Ok(n) => {
                        let (data, cut) = datagram(buf.get(..n).unwrap_or(&[]), max);
                        sink.try_send(sink.make(data, cut, peer.clone(), Transport::Unix));
                    }
                    Err(e) => tracing::warn!("unix receive: {e}"),
                }
            }
        });
    }
    for addr in &cfg.tcp {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on TCP {addr}: {e}"))?;
        let sink = sink.clone();
        tasks.spawn(async move {
            // Readers die with the accept task (dropping the set aborts them).
            let mut readers = JoinSet::new();
            loop {
                while readers.try_join_next().is_some() {}
                match l.accept().await {
                    Ok((s, from)) => {
                        let sink = sink.clone();
                        readers.spawn(read_stream(s, sink, max, from.to_string(), Transport::Tcp));
                    }
                    Err(e) => {
                        tracing::warn!("TCP accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    for path in &cfg.unix_stream {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).map_err(|e| {
            format!(
                "cannot listen on unix stream socket {}: {e}",
                path.display()
            )
        })?;
        let sink = sink.clone();
        let peer = path.display().to_string();
        tasks.spawn(async move {
            let mut readers = JoinSet::new();
            loop {
                while readers.try_join_next().is_some() {}
                match l.accept().await {
                    Ok((s, _)) => {
                        let sink = sink.clone();
                        readers.spawn(read_stream(
                            s,
                            sink,
                            max,
                            peer.clone(),
                            Transport::UnixStream,
                        ));
                    }
                    Err(e) => {
                        tracing::warn!("unix stream accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    Ok(udp_inodes)
}

/// Runs the bridge until `shutdown`: opens the spool (what it holds is published first),
/// binds the listeners, publishes on `conn`, logs the stats line every `stats_interval`
/// (through `log`), syncs the spool every second, and on shutdown stops listening, waits up
/// to `drain_timeout` for the broker to confirm what is queued, and keeps the rest in the
/// spool. Returns the final counters.
pub async fn run(
    cfg: BridgeConfig,
    conn: Connection,
    shutdown: Shutdown,
    log: impl Fn(&str),
) -> Result<Arc<Stats>, String> {
    let stats = cfg.stats.clone().unwrap_or_default();
    run_with(cfg, conn, shutdown, log, stats).await
}

/// [`run`] with counters the caller holds (and may read while the bridge runs).
pub async fn run_with(
    cfg: BridgeConfig,
    conn: Connection,
    shutdown: Shutdown,
    log: impl Fn(&str),
    stats: Arc<Stats>,
) -> Result<Arc<Stats>, String> {
    let spool = match &cfg.spool {
        Some(dir) => Some(
            spool::Spool::open(dir, cfg.spool_limit)
                .map_err(|e| format!("spool {}: {e}", dir.display()))?,
        ),
        None => None,
    };
    if let Some(s) = &spool {
        if s.unread() > 0 {
            log(&format!(
                "replaying {} spooled messages from {} segments",
                s.unread(),
                s.segments()
            ));
        }
    }
    let queue = Arc::new(Queue::new(cfg.buffer_bytes, spool, stats.clone()));
    let sink = Sink {
        queue: queue.clone(),
        stats: stats.clone(),
        routing: Arc::new(cfg.routing.clone()),
    };
    let mut listeners = JoinSet::new();
    let udp_inodes = listen(&cfg, sink, &mut listeners).await?;
    let kernel_drops = || {
        if !udp_inodes.is_empty() {
            stats
                .kernel_drops
                .store(udp::drops(&udp_inodes), Ordering::Relaxed);
        }
    };
    crate::daemon::notify_ready();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut publisher = tokio::spawn(publish::run_publisher(
        conn,
        cfg.exchange.clone(),
        queue.clone(),
        stats.clone(),
        cfg.window,
        stop_rx,
    ));
    let mut tick = tokio::time::interval(cfg.stats_interval);
    tick.tick().await;
    let mut sync_tick = tokio::time::interval(Duration::from_secs(1));
    let sync = || {
        if let Some(f) = queue.sync() {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = f.sync_data() {
                    tracing::warn!("cannot sync the spool: {e}");
                }
            });
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.requested() => break,
            _ = tick.tick() => {
                kernel_drops();
                log(&stats.line());
            }
            _ = sync_tick.tick() => sync(),
            r = &mut publisher => {
                // Read while the sockets are open (/proc lists open sockets only).
                kernel_drops();
                listeners.abort_all();
                let fin = r.map_err(|e| format!("publisher failed: {e}"))??;
                keep(&cfg, &queue, fin.unconfirmed, &log)?;
                log(&stats.line());
                return match fin.error {
                    Some(e) => Err(e),
                    None => Ok(stats),
                };
            }
        }
    }
    // Stop taking lines; the publisher ends once it has the broker's confirms for what is
    // queued. Give it the drain time, then keep the rest.
    kernel_drops();
    listeners.abort_all();
    while listeners.join_next().await.is_some() {}
    queue.close();
    let fin = match tokio::time::timeout(cfg.drain_timeout, &mut publisher).await {
        Ok(r) => r,
        Err(_) => {
            let _ = stop_tx.send(true);
            publisher.await
        }
    }
    .map_err(|e| format!("publisher failed: {e}"))??;
    keep(&cfg, &queue, fin.unconfirmed, &log)?;
    log(&stats.line());
    Ok(stats)
}

/// Writes the unconfirmed messages and what is left in memory to the spool, or reports them
/// lost when there is no spool.
fn keep(
    cfg: &BridgeConfig,
    queue: &Queue,
    unconfirmed: Vec<(spool::Record, queue::Origin)>,
    log: &impl Fn(&str),
) -> Result<(), String> {
    let (n, kept) = queue.shutdown(unconfirmed)?;
    match (&cfg.spool, kept) {
        (Some(dir), true) if n > 0 => log(&format!(
            "{n} unconfirmed messages kept in {}",
            dir.display()
        )),
        (_, false) if n > 0 => log(&format!(
            "{n} messages not confirmed by the broker are lost (no --spool)"
        )),
        _ => {}
    }
    Ok(())
}
