//! The backbone's HTTP API against RabbitMQ's own management API, in the same run: `/send`
//! requests per second with `--clients` concurrent HTTP clients, and send→receive latency.
//!
//! ```text
//! cargo run --release -p benches --bin backbone_http -- \
//!     --backbone http://127.0.0.1:8087 --admin-token … --mgmt http://guest:guest@127.0.0.1:15672
//! ```
//!
//! (`scripts/bench-backbone` starts a broker and a release `backbone` and runs this.)
//!
//! - **throughput**: `--clients` tasks, each with its own keep-alive HTTP connection, send
//!   `--count` messages between them as fast as each answer comes back, all to one queue:
//!   ours `POST /send` (topic routed through the client's outbox to its inbox), theirs
//!   `POST /api/exchanges/%2f/amq.default/publish` straight to a durable queue. Both persistent.
//!   The queue is drained afterwards (not measured).
//! - **latency**: `--clients` tasks, each with its own queue (ours: its own client and topic),
//!   each `--rounds` times sends one message and polls (`GET /receive`, or
//!   `POST /api/queues/%2f/Q/get` with `ack_requeue_false`) until it is back; the time from
//!   sending to having it is one sample.
#![forbid(unsafe_code)]

#[allow(dead_code)]
#[path = "../e2e/stats.rs"]
mod stats;

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};
use stats::{percentile, sorted_micros, Align, Table};

/// Backbone `/send` vs the management API's publish.
#[derive(Debug, Parser)]
struct Args {
    /// The backbone's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8087")]
    backbone: String,
    /// The backbone's admin token.
    #[arg(long, env = "BACKBONE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// The management API's base URL with credentials [default: $AMQP_MGMT_URL].
    #[arg(long, env = "AMQP_MGMT_URL", hide_env_values = true)]
    mgmt: String,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Messages sent in the throughput run (per system).
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Round trips per client in the latency run.
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Also write the table as Markdown here.
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
}

type Res<T> = Result<T, String>;

fn e(what: &str) -> impl Fn(reqwest::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// One system under test: how to make a queue, send to it and take from it.
#[derive(Clone)]
enum System {
    Backbone {
        base: String,
        admin: String,
    },
    Mgmt {
        base: String,
        user: String,
        pass: String,
    },
}

/// A queue of one system, as a sender/receiver sees it.
#[derive(Clone)]
struct Target {
    /// Backbone: the client token; management: unused.
    token: String,
    /// Backbone: the topic; management: the queue name.
    key: String,
    /// Backbone: the client id, for deleting it.
    id: String,
}

impl System {
    fn name(&self) -> &'static str {
        match self {
            Self::Backbone { .. } => "backbone POST /send",
            Self::Mgmt { .. } => "management API publish",
        }
    }

    async fn create(&self, http: &reqwest::Client, tag: &str) -> Res<Target> {
        let pid = std::process::id();
        match self {
            Self::Backbone { base, admin } => {
                let id = format!("bench-{tag}-{pid}");
                let topic = format!("bench_{pid}.{tag}");
                let r = http
                    .post(format!("{base}/client"))
                    .bearer_auth(admin)
                    .json(&json!({"client_id": id, "client_name": "bench", "subscription": topic}))
                    .send()
                    .await
                    .map_err(e("POST /client"))?;
                if r.status() != reqwest::StatusCode::CREATED {
                    return Err(format!("POST /client: {}", r.status()));
                }
                let v: Value = r.json().await.map_err(e("POST /client"))?;
                let secret = v["secret"].as_str().unwrap_or_default().to_owned();
                let v: Value = http
                    .get(format!("{base}/token"))
                    .query(&[("client_id", id.as_str()), ("secret", secret.as_str())])
                    .send()
                    .await
                    .map_err(e("GET /token"))?
                    .json()
                    .await
                    .map_err(e("GET /token"))?;
                let token = v["token"]
                    .as_str()
                    .ok_or_else(|| format!("GET /token: {v}"))?
                    .to_owned();
                Ok(Target {
                    token,
                    key: topic,
                    id,
                })
            }
            Self::Mgmt { base, user, pass } => {
                let q = format!("bench-{tag}-{pid}");
                let r = http
                    .put(format!("{base}/api/queues/%2f/{q}"))
                    .basic_auth(user, Some(pass))
                    .json(&json!({"durable": true}))
                    .send()
                    .await
                    .map_err(e("PUT queue"))?;
                if !r.status().is_success() {
                    return Err(format!("PUT queue: {}", r.status()));
                }
                Ok(Target {
                    token: String::new(),
                    key: q.clone(),
                    id: q,
                })
            }
        }
    }

    async fn remove(&self, http: &reqwest::Client, t: &Target) {
        let _ = match self {
            Self::Backbone { base, admin } => {
                http.delete(format!("{base}/client/{}", t.id))
                    .bearer_auth(admin)
                    .send()
                    .await
            }
            Self::Mgmt { base, user, pass } => {
                http.delete(format!("{base}/api/queues/%2f/{}", t.id))
                    .basic_auth(user, Some(pass))
                    .send()
                    .await
            }
        };
    }

    async fn send(&self, http: &reqwest::Client, t: &Target, body: &Value) -> Res<()> {
        let r = match self {
            Self::Backbone { base, .. } => http
                .post(format!("{base}/send"))
                .bearer_auth(&t.token)
                .json(&json!({"topic": t.key, "message": body}))
                .send()
                .await
                .map_err(e("POST /send"))?,
            Self::Mgmt { base, user, pass } => http
                .post(format!("{base}/api/exchanges/%2f/amq.default/publish"))
                .basic_auth(user, Some(pass))
                .json(&json!({
                    "properties": {"delivery_mode": 2, "content_type": "application/json"},
                    "routing_key": t.key,
                    "payload": body.to_string(),
                    "payload_encoding": "string",
                }))
                .send()
                .await
                .map_err(e("publish"))?,
        };
        if r.status().is_success() {
            // Read the body so the connection is reused.
            let _ = r.bytes().await;
            Ok(())
        } else {
            Err(format!("{}: {}", self.name(), r.status()))
        }
    }

    async fn receive(&self, http: &reqwest::Client, t: &Target) -> Res<Vec<Value>> {
        match self {
            Self::Backbone { base, .. } => http
                .get(format!("{base}/receive?max_messages=100"))
                .bearer_auth(&t.token)
                .send()
                .await
                .map_err(e("GET /receive"))?
                .json()
                .await
                .map_err(e("GET /receive")),
            Self::Mgmt { base, user, pass } => {
                let got: Vec<Value> = http
                    .post(format!("{base}/api/queues/%2f/{}/get", t.key))
                    .basic_auth(user, Some(pass))
                    .json(
                        &json!({"count": 100, "ackmode": "ack_requeue_false", "encoding": "auto"}),
                    )
                    .send()
                    .await
                    .map_err(e("queue get"))?
                    .json()
                    .await
                    .map_err(e("queue get"))?;
                Ok(got
                    .iter()
                    .map(|m| {
                        serde_json::from_str(m["payload"].as_str().unwrap_or("null"))
                            .unwrap_or(Value::Null)
                    })
                    .collect())
            }
        }
    }
}

fn client() -> Res<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .map_err(|e| e.to_string())
}

/// `count` sends from `clients` tasks to one queue; requests per second.
async fn throughput(sys: &System, args: &Args) -> Res<f64> {
    let setup = client()?;
    let target = sys.create(&setup, "tput").await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (sys, target, next, count) = (sys.clone(), target.clone(), next.clone(), args.count);
        let http = client()?;
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                sys.send(&http, &target, &json!({"payload": "x".repeat(100)}))
                    .await?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let secs = start.elapsed().as_secs_f64();
    sys.remove(&setup, &target).await;
    Ok(args.count as f64 / secs)
}

/// `clients` tasks each doing `rounds` send-then-poll round trips on its own queue.
async fn latency(sys: &System, args: &Args) -> Res<Vec<Duration>> {
    let setup = client()?;
    let mut targets = Vec::new();
    for i in 0..args.clients {
        targets.push(sys.create(&setup, &format!("lat{i}")).await?);
    }
    let mut tasks = Vec::new();
    for target in targets.clone() {
        let (sys, rounds) = (sys.clone(), args.rounds);
        let http = client()?;
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(rounds);
            for n in 0..rounds {
                let t0 = Instant::now();
                sys.send(&http, &target, &json!({"n": n})).await?;
                let deadline = t0 + Duration::from_secs(30);
                'poll: loop {
                    for m in sys.receive(&http, &target).await? {
                        if m["n"] == n {
                            break 'poll;
                        }
                    }
                    if Instant::now() > deadline {
                        return Err(format!("{}: message {n} not back in 30 s", sys.name()));
                    }
                }
                samples.push(t0.elapsed());
            }
            Ok::<_, String>(samples)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    for t in &targets {
        sys.remove(&setup, t).await;
    }
    Ok(all)
}

fn split_credentials(url: &str) -> Res<(String, String, String)> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("--mgmt {url}: {e}"))?;
    let user = u.username().to_owned();
    let pass = u.password().unwrap_or_default().to_owned();
    let base = format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str().unwrap_or("127.0.0.1"),
        u.port_or_known_default().unwrap_or(15672)
    );
    Ok((base, user, pass))
}

async fn run(args: Args) -> Res<()> {
    let (base, user, pass) = split_credentials(&args.mgmt)?;
    let systems = [
        System::Backbone {
            base: args.backbone.trim_end_matches('/').to_owned(),
            admin: args.admin_token.clone(),
        },
        System::Mgmt { base, user, pass },
    ];
    let mut table = Table::new(&[
        ("path", Align::Left),
        ("requests/s", Align::Right),
        ("latency p50 ms", Align::Right),
        ("p99 ms", Align::Right),
        ("samples", Align::Right),
    ]);
    for sys in &systems {
        eprintln!("{}: throughput, {} sends", sys.name(), args.count);
        let rps = throughput(sys, &args).await?;
        eprintln!(
            "{}: latency, {} × {} round trips",
            sys.name(),
            args.clients,
            args.rounds
        );
        let lat = sorted_micros(&latency(sys, &args).await?);
        let ms = |p: f64| {
            percentile(&lat, p)
                .map(|v| format!("{:.2}", v / 1000.0))
                .unwrap_or_default()
        };
        table.push(vec![
            sys.name().to_owned(),
            format!("{rps:.0}"),
            ms(50.0),
            ms(99.0),
            lat.len().to_string(),
        ]);
    }
    println!(
        "{} concurrent HTTP clients; throughput over {} sends of a ~110-byte JSON body",
        args.clients, args.count
    );
    println!("{}", table.render_text());
    if let Some(path) = &args.markdown {
        std::fs::write(path, table.render_markdown()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backbone_http: {e}");
            ExitCode::FAILURE
        }
    }
}
