//! Failover across a three-node RabbitMQ cluster that the test starts (and stops, if it
//! started it) with `scripts/broker cluster`: the node a client is connected to is stopped,
//! gracefully and with kill -9, and the client goes on on another node without losing a
//! confirmed message; a classic queue whose home node is down gets its consumer back once
//! the node returns.
//!
//! Both scenarios run in one test, one after the other, on one cluster: booting a cluster
//! costs more than the scenarios themselves.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amqp_client::options::*;
use amqp_client::*;
use common::*;
use futures_util::StreamExt;

const NODES: u16 = 3;

/// The test cluster; stopped on drop when this test started it.
struct Cluster {
    started_here: bool,
    url: String,
    first_port: u16,
}

/// Runs `scripts/broker cluster ARGS` with the test's environment; its exit status and
/// output.
fn script(args: &[&str]) -> (bool, String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/broker");
    let out = Command::new(script)
        .arg("cluster")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cluster(args: &[&str]) -> String {
    let (ok, stdout, stderr) = script(args);
    assert!(ok, "scripts/broker cluster {args:?} failed:\n{stderr}");
    stdout
}

impl Cluster {
    fn start() -> Self {
        let (already_up, _, _) = script(&["status"]);
        let nodes = NODES.to_string();
        let (ok, stdout, stderr) = script(&["start", &nodes]);
        assert!(
            ok,
            "cannot start the test cluster (`scripts/broker cluster start {nodes}`; ports from \
             CLUSTER_PORT, CLUSTER_EPMD_PORT, state in CLUSTER_DIR):\n{stderr}"
        );
        eprintln!("{stderr}");
        let url = stdout.trim().to_owned();
        let parsed = AmqpUri::parse(&url).unwrap();
        Self {
            started_here: !already_up,
            first_port: parsed.port,
            url,
        }
    }

    /// The node (1…N) listening on `endpoint`.
    fn node(&self, endpoint: &Endpoint) -> String {
        (endpoint.port - self.first_port + 1).to_string()
    }

    /// A URI naming one node only.
    fn node_url(&self, node: u16) -> String {
        format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f",
            self.first_port + node - 1
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started_here {
            let _ = script(&["stop"]);
        }
    }
}

fn policy() -> RecoveryPolicy {
    RecoveryPolicy::default()
        .with_delays(Duration::from_millis(100), Duration::from_secs(1))
        .with_entity_retries(3)
}

/// Runs a cluster command off the runtime's threads.
async fn cluster_async(args: &'static [&'static str], node: String) {
    tokio::task::spawn_blocking(move || {
        let mut all: Vec<&str> = args.to_vec();
        all.push(&node);
        cluster(&all);
    })
    .await
    .unwrap();
}

/// Waits (up to 60 s) for the event `pred` picks; how long it took.
async fn wait_event(
    events: &mut ConnectionEvents,
    what: &str,
    pred: impl Fn(&ConnectionEvent) -> bool,
) -> Duration {
    let started = Instant::now();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(e) = events.next().await {
            if pred(&e) {
                return;
            }
        }
        panic!("the event stream ended while waiting for {what}");
    })
    .await;
    assert!(found.is_ok(), "{what} did not happen within 60 s");
    started.elapsed()
}

/// What the publisher and the consumer saw.
#[derive(Default)]
struct Tally {
    confirmed: BTreeSet<u64>,
    republished: u64,
    nacked: u64,
    received: BTreeSet<u64>,
    duplicates: u64,
}

async fn wait_for(tally: &Mutex<Tally>, what: &str, done: impl Fn(&Tally) -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while !done(&tally.lock().unwrap()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let t = tally.lock().unwrap();
    assert!(
        waited.is_ok(),
        "{what}: not within 60 s ({} confirmed, {} received)",
        t.confirmed.len(),
        t.received.len()
    );
}

/// Publishes numbered persistent messages with confirms until told to stop, publishing a
/// message again when its confirm was lost with the connection.
async fn publish_until(
    conn: Connection,
    queue: String,
    tally: Arc<Mutex<Tally>>,
    stop: Arc<tokio::sync::Notify>,
) {
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let props = BasicProperties::default().with_delivery_mode(2);
    let mut next = 0u64;
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        let body = next.to_string();
        let outcome = match ch
            .publish(
                amqp_client::Publish::to_queue(&queue),
                &props,
                body.as_bytes(),
            )
            .await
        {
            Ok(confirm) => confirm.await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(c) if c.is_ack() => {
                tally.lock().unwrap().confirmed.insert(next);
                next += 1;
            }
            // A quorum queue whose leader is moving may refuse a message: publish it again.
            Ok(_nack) => tally.lock().unwrap().nacked += 1,
            Err(e) => {
                assert!(e.is_retryable(), "publishing {next}: {e}");
                tally.lock().unwrap().republished += 1;
                tokio::time::timeout(Duration::from_secs(60), conn.wait_for_recovery())
                    .await
                    .expect("recovered within 60 s")
                    .unwrap();
            }
        }
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
}

async fn consume_into(mut consumer: Consumer, tally: Arc<Mutex<Tally>>) {
    while let Some(d) = consumer.next().await {
        let d = d.unwrap();
        let n: u64 = std::str::from_utf8(&d.body).unwrap().parse().unwrap();
        match d.ack() {
            Ok(()) | Err(Error::StaleDelivery { .. }) => {}
            Err(e) => panic!("ack: {e}"),
        }
        let mut t = tally.lock().unwrap();
        if !t.received.insert(n) {
            t.duplicates += 1;
        }
    }
}

#[tokio::test]
async fn cluster_failover() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    quorum_queue_survives_stop_and_kill_of_the_connected_node(&cluster).await;
    classic_queue_consumer_returns_with_its_home_node(&cluster).await;
}

async fn quorum_queue_survives_stop_and_kill_of_the_connected_node(cluster: &Cluster) {
    let cfg = ConnectionConfig::from_uri(&cluster.url)
        .unwrap()
        .with_connection_name(name("cluster-quorum"))
        .with_recovery(policy());
    assert_eq!(cfg.all_endpoints().len(), usize::from(NODES));
    let conn = Connection::connect_with(cfg).await.unwrap();
    let mut events = conn.events();
    let lost_at = Arc::new(Mutex::new(None::<Instant>));
    tokio::spawn({
        let mut events = conn.events();
        let lost_at = lost_at.clone();
        async move {
            while let Some(e) = events.next().await {
                if matches!(e, ConnectionEvent::RecoveryStarted { .. }) {
                    *lost_at.lock().unwrap() = Some(Instant::now());
                }
            }
        }
    });
    let ch = conn.open_channel().await.unwrap();
    let queue = name("cluster-quorum");
    let quorum = QueueDeclareOptions {
        durable: true,
        queue_type: Some(QueueType::Quorum),
        ..Default::default()
    };
    ch.queue_declare(&queue, quorum).await.unwrap();
    ch.basic_qos(50, QosOptions::default()).await.unwrap();
    let consumer = ch
        .basic_consume(&queue, ConsumeOptions::default())
        .await
        .unwrap();

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let publisher = tokio::spawn(publish_until(
        conn.clone(),
        queue.clone(),
        tally.clone(),
        stop.clone(),
    ));
    let consuming = tokio::spawn(consume_into(consumer, tally.clone()));

    for (how, down) in [("stop-node", "stopped gracefully"), ("kill", "killed")] {
        let before = tally.lock().unwrap().confirmed.len();
        wait_for(&tally, "publishing before the outage", |t| {
            t.confirmed.len() >= before + 50 && t.received.len() >= before + 25
        })
        .await;
        let node = cluster.node(&conn.endpoint().unwrap());
        let args: &'static [&'static str] = if how == "kill" {
            &["kill"]
        } else {
            &["stop-node"]
        };
        let outage = Instant::now();
        cluster_async(args, node.clone()).await;
        wait_event(&mut events, "recovery", |e| {
            matches!(e, ConnectionEvent::Recovered)
        })
        .await;
        let lost = lost_at
            .lock()
            .unwrap()
            .take()
            .expect("RecoveryStarted came first");
        let moved_to = cluster.node(&conn.endpoint().unwrap());
        assert_ne!(moved_to, node, "reconnected to another node");
        eprintln!(
            "node {node} {down}: connection lost {} ms after the command, recovered on node \
             {moved_to} {} ms after the loss",
            lost.duration_since(outage).as_millis(),
            lost.elapsed().as_millis()
        );
        let after = tally.lock().unwrap().confirmed.len();
        wait_for(&tally, "publishing after the recovery", |t| {
            t.confirmed.len() >= after + 50
        })
        .await;
        // The quorum needs the node back before the next one goes.
        cluster_async(&["start-node"], node).await;
    }

    stop.notify_one();
    publisher.await.unwrap();
    wait_for(&tally, "every confirmed message consumed", |t| {
        t.confirmed.is_subset(&t.received)
    })
    .await;
    {
        let t = tally.lock().unwrap();
        let missing = t.confirmed.difference(&t.received).count();
        eprintln!(
            "quorum queue: {} confirmed, {} received, {missing} missing, {} duplicates, {} \
             republished after a lost confirm, {} after a nack",
            t.confirmed.len(),
            t.received.len(),
            t.duplicates,
            t.republished,
            t.nacked
        );
        assert_eq!(missing, 0, "no confirmed message is lost");
        assert!(t.republished >= 1, "the publisher saw the outages");
    }
    consuming.abort();
    ch.queue_delete(&queue, Default::default()).await.unwrap();
    // RabbitMQ 3.10 may crash the channel of a quorum-queue consumer whose queue moved while
    // the connection closes, and answer with 541: close() still ends the connection for good.
    match conn.close().await {
        Ok(()) => {}
        Err(Error::ConnectionClosed(r)) if r.initiator == Initiator::Server => {
            eprintln!("the broker closed the connection itself: {r}");
        }
        Err(e) => panic!("close: {e}"),
    }
    assert_eq!(conn.state(), ConnectionState::Closed);
}

async fn classic_queue_consumer_returns_with_its_home_node(cluster: &Cluster) {
    // Node 2 first: the queue's home is the node of the connection that declares it.
    let hosts: Vec<String> = [2, 1, 3].iter().map(|&n| cluster.node_url(n)).collect();
    let cfg = ConnectionConfig::from_uris(&hosts)
        .unwrap()
        .with_connection_name(name("cluster-classic"))
        .with_recovery(policy());
    let conn = Connection::connect_with(cfg).await.unwrap();
    assert_eq!(cluster.node(&conn.endpoint().unwrap()), "2");
    let mut events = conn.events();
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let queue = name("cluster-classic");
    let durable = QueueDeclareOptions {
        durable: true,
        queue_type: Some(QueueType::Classic),
        ..Default::default()
    };
    ch.queue_declare(&queue, durable).await.unwrap();
    let mut consumer = ch
        .basic_consume(&queue, ConsumeOptions::default())
        .await
        .unwrap();
    let publish = |n: u32| {
        let ch = ch.clone();
        let queue = queue.clone();
        async move {
            let props = BasicProperties::default().with_delivery_mode(2);
            let body = n.to_string();
            let c = ch
                .publish(
                    amqp_client::Publish::to_queue(&queue),
                    &props,
                    body.as_bytes(),
                )
                .await
                .unwrap();
            assert!(c.await.unwrap().is_ack());
        }
    };
    let mut next_body = async || {
        let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("a delivery within 30 s")
            .expect("the consumer stream goes on")
            .unwrap();
        d.ack().unwrap();
        String::from_utf8(d.body.to_vec()).unwrap()
    };
    publish(1).await;
    assert_eq!(next_body().await, "1");

    cluster_async(&["stop-node"], "2".to_owned()).await;
    wait_event(&mut events, "the queue to be left for later", |e| {
        matches!(e, ConnectionEvent::EntityFailed { action, .. }
            if *action == "retrying in the background")
    })
    .await;
    wait_event(&mut events, "recovery", |e| {
        matches!(e, ConnectionEvent::Recovered)
    })
    .await;
    assert_ne!(cluster.node(&conn.endpoint().unwrap()), "2");

    let back = Instant::now();
    cluster_async(&["start-node"], "2".to_owned()).await;
    let restored = wait_event(&mut events, "the consumer to be restored", |e| {
        matches!(e, ConnectionEvent::ConsumerRestored { .. })
    })
    .await;
    eprintln!(
        "classic queue: consumer restored {} ms after its home node was started again ({} ms \
         after it answered)",
        back.elapsed().as_millis(),
        restored.as_millis()
    );
    publish(2).await;
    assert_eq!(next_body().await, "2", "the same consumer stream goes on");
    ch.queue_delete(&queue, Default::default()).await.unwrap();
    conn.close().await.unwrap();
}
