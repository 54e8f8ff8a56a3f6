//! The syslog → AMQP bridge: listeners for UDP, TCP, unix datagram and unix stream sockets,
//! RFC 5424/3164 parsing ([`parse`]), RFC 6587 stream framing ([`framing`]) and a publisher
//! with confirms that republishes whatever the broker did not confirm ([`publish`]).
//!
//! Every received line is published once it is parsed, to the durable topic exchange `syslog`
//! (persistent, mandatory): a line that cannot be parsed goes out raw under the routing key
//! `unparsed` with a header saying why.

pub mod framing;
pub mod parse;
pub mod publish;
pub mod spool;

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
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::daemon::Shutdown;
use framing::Deframer;
use parse::{to_outgoing, Outgoing, Received, RoutingRule, Transport};
pub use publish::Stats;

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
    /// Messages held in memory between the listeners and the publisher; when full, stream
    /// listeners stop reading and datagrams are dropped (and counted).
    pub buffer: usize,
    /// Messages published and not yet confirmed, at most.
    pub window: usize,
    /// How often the stats line is logged.
    pub stats_interval: Duration,
    /// How long a shutdown waits for confirms of what is buffered.
    pub drain_timeout: Duration,
    /// Where unconfirmed messages are kept across restarts (`None`: they are lost, and
    /// counted, when the bridge stops before the broker confirmed them).
    pub spool: Option<PathBuf>,
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
            buffer: 100_000,
            window: 1000,
            stats_interval: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            spool: None,
        }
    }
}

#[derive(Clone)]
struct Sink {
    tx: mpsc::Sender<Outgoing>,
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

    /// Stream input: waits for room (back-pressure on the sender).
    async fn send(&self, out: Outgoing) -> bool {
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(out).await.is_err() {
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Datagram input: drops (and counts) when full.
    fn try_send(&self, out: Outgoing) {
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(out).is_err() {
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

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
                    if !sink.send(out).await {
                        return;
                    }
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
async fn listen(cfg: &BridgeConfig, sink: Sink, tasks: &mut JoinSet<()>) -> Result<(), String> {
    let max = cfg.max_message;
    for addr in &cfg.udp {
        let sock = UdpSocket::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on UDP {addr}: {e}"))?;
        let sink = sink.clone();
        tasks.spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                match sock.recv_from(&mut buf).await {
                    Ok((n, from)) => {
                        let (data, cut) = datagram(buf.get(..n).unwrap_or(&[]), max);
                        sink.try_send(sink.make(data, cut, from.to_string(), Transport::Udp));
                    }
                    Err(e) => tracing::warn!("UDP receive: {e}"),
                }
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
    Ok(())
}

/// Runs the bridge until `shutdown`: binds the listeners, publishes on `conn`, logs the stats
/// line every `stats_interval` (through `log`), and on shutdown stops listening and waits up to
/// `drain_timeout` for the broker to confirm what is buffered. Returns the final counters.
pub async fn run(
    cfg: BridgeConfig,
    conn: Connection,
    shutdown: Shutdown,
    log: impl Fn(&str),
) -> Result<Arc<Stats>, String> {
    let stats = Arc::new(Stats::default());
    let (tx, rx) = mpsc::channel(cfg.buffer.max(1));
    let sink = Sink {
        tx,
        stats: stats.clone(),
        routing: Arc::new(cfg.routing.clone()),
    };
    let mut replay = publish::Replay::default();
    if let Some(dir) = &cfg.spool {
        let segments = spool::load(dir).map_err(|e| format!("spool {}: {e}", dir.display()))?;
        for (path, msgs) in segments {
            replay.messages.extend(msgs);
            replay.files.push(path);
        }
        if !replay.messages.is_empty() {
            log(&format!(
                "replaying {} spooled messages from {} segments",
                replay.messages.len(),
                replay.files.len()
            ));
        }
    }
    let mut listeners = JoinSet::new();
    listen(&cfg, sink, &mut listeners).await?;
    crate::daemon::notify_ready();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut publisher = tokio::spawn(publish::run_publisher(
        conn,
        cfg.exchange.clone(),
        rx,
        stats.clone(),
        cfg.window,
        replay,
        stop_rx,
    ));
    let mut tick = tokio::time::interval(cfg.stats_interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.requested() => break,
            _ = tick.tick() => log(&stats.line()),
            r = &mut publisher => {
                listeners.abort_all();
                let fin = r.map_err(|e| format!("publisher failed: {e}"))??;
                keep(&cfg, &stats, fin.leftover, fin.replay_files, &log)?;
                log(&stats.line());
                return match fin.error {
                    Some(e) => Err(e),
                    None => Ok(stats),
                };
            }
        }
    }
    // Stop taking lines (this drops every sender, so the publisher ends once it has the
    // broker's confirms for what is buffered), then give it the drain time and keep the rest.
    listeners.abort_all();
    let fin = match tokio::time::timeout(cfg.drain_timeout, &mut publisher).await {
        Ok(r) => r,
        Err(_) => {
            let _ = stop_tx.send(true);
            publisher.await
        }
    }
    .map_err(|e| format!("publisher failed: {e}"))??;
    keep(&cfg, &stats, fin.leftover, fin.replay_files, &log)?;
    log(&stats.line());
    Ok(stats)
}

/// Writes unconfirmed messages to the spool (then removes the replayed segments they include),
/// or reports them lost when there is no spool.
fn keep(
    cfg: &BridgeConfig,
    stats: &Stats,
    leftover: Vec<Outgoing>,
    replay_files: Vec<PathBuf>,
    log: &impl Fn(&str),
) -> Result<(), String> {
    let n = leftover.len() as u64;
    let Some(dir) = &cfg.spool else {
        if n > 0 {
            log(&format!(
                "{n} messages not confirmed by the broker are lost (no --spool)"
            ));
        }
        return Ok(());
    };
    spool::save(dir, &leftover)
        .map_err(|e| format!("cannot write the spool in {}: {e}", dir.display()))?;
    for f in replay_files {
        let _ = std::fs::remove_file(f);
    }
    stats.spooled.fetch_add(n, Ordering::Relaxed);
    stats.pending.fetch_sub(
        n.min(stats.pending.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    if n > 0 {
        log(&format!(
            "{n} unconfirmed messages kept in {}",
            dir.display()
        ));
    }
    Ok(())
}
