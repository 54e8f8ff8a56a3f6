//! The Communications Backbone over real HTTP on loopback and the test broker.

mod common;

use std::time::Duration;

use amqp_client::Connection;
use amqp_test_support::{amqp_url, unique_name};
use common::{serve_backbone, ws_request, Api, Ws};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;

const ADMIN: &str = "admin-token-for-tests";

async fn start(token_lifetime: Duration) -> Api {
    let api = serve_backbone(ADMIN, token_lifetime).await;
    assert!(api.new_admin_token.is_none());
    api
}

impl Api {
    /// Creates a client; returns its secret.
    async fn create(&self, id: &str, subscription: &str) -> String {
        let r = self
            .http
            .post(format!("{}/client", self.base))
            .bearer_auth(ADMIN)
            .json(&json!({"client_id": id, "client_name": format!("site {id}"), "subscription": subscription}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["subscription"], subscription);
        v["secret"].as_str().unwrap().to_owned()
    }

    async fn token(&self, id: &str, secret: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/token", self.base))
            .query(&[("client_id", id), ("secret", secret)])
            .send()
            .await
            .unwrap()
    }

    async fn login(&self, id: &str) -> String {
        let secret = self.create(id, "#").await;
        self.bearer(id, &secret).await
    }

    async fn bearer(&self, id: &str, secret: &str) -> String {
        let r = self.token(id, secret).await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert!(v["expiry"].as_str().unwrap().ends_with('Z'));
        v["token"].as_str().unwrap().to_owned()
    }

    async fn send(&self, token: &str, topic: &str, n: u32) -> StatusCode {
        self.http
            .post(format!("{}/send", self.base))
            .bearer_auth(token)
            .json(&json!({"topic": topic, "message": {"header": {"n": n}, "payload": {"topic": topic}}}))
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn receive(&self, token: &str, max: usize) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/receive?max_messages={max}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// Receives until `want` messages arrived or a few seconds passed.
    async fn receive_all(&self, token: &str, want: usize) -> Vec<Value> {
        let mut got = Vec::new();
        for _ in 0..100 {
            got.extend(self.receive(token, 100).await);
            if got.len() >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Anything extra would show up now.
        tokio::time::sleep(Duration::from_millis(200)).await;
        got.extend(self.receive(token, 100).await);
        got
    }
}

fn topics(msgs: &[Value]) -> Vec<String> {
    let mut t: Vec<String> = msgs
        .iter()
        .map(|m| m["payload"]["topic"].as_str().unwrap_or("?").to_owned())
        .collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_reach_exactly_the_matching_inboxes_and_clients_change_live() {
    let api = start(Duration::from_secs(3600)).await;
    // Every topic in this test starts with a unique word so other runs' queues see nothing.
    let w = unique_name("t").replace(['-', '.'], "_");
    let all = unique_name("all");
    let noc = unique_name("noc");
    let other = unique_name("other");
    let s_all = api.create(&all, &format!("{w}.#")).await;
    let s_noc = api.create(&noc, &format!("{w}.soar.*.noc.#")).await;
    let s_other = api.create(&other, &format!("{w}.soar.other.#")).await;
    let (t_all, t_noc, t_other) = (
        api.bearer(&all, &s_all).await,
        api.bearer(&noc, &s_noc).await,
        api.bearer(&other, &s_other).await,
    );

    let sent = [
        format!("{w}.soar.a.noc"),       // `#` matches zero words
        format!("{w}.soar.a.noc.x.y"),   // and several
        format!("{w}.soar.noc"),         // `*` needs exactly one word
        format!("{w}.soar.a.b.noc"),     // not two
        format!("{w}.soar.other"),       // `#` after other: zero words
        format!("{w}.soar.other.noc.z"), // matches both noc (`*`=other) and other
        format!("{w}.elsewhere"),        // only the catch-all
    ];
    for (i, t) in sent.iter().enumerate() {
        assert_eq!(
            api.send(&t_noc, t, i as u32).await,
            StatusCode::ACCEPTED,
            "{t}"
        );
    }
    // The topic may also come from message.header.destination.
    let dest = format!("{w}.soar.other.dest");
    let r = api
        .http
        .post(format!("{}/send", api.base))
        .bearer_auth(&t_other)
        .json(&json!({"message": {"header": {"destination": dest}, "payload": {"topic": dest}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let mut want_all: Vec<String> = sent.to_vec();
    want_all.push(dest.clone());
    want_all.sort();
    let mut want_noc = vec![sent[0].clone(), sent[1].clone(), sent[5].clone()];
    want_noc.sort();
    let mut want_other = vec![sent[4].clone(), sent[5].clone(), dest.clone()];
    want_other.sort();
    // /receive returns at most N.
    let first = api.receive_all(&t_all, 0).await;
    assert!(first.len() <= 100);
    let mut got_all = first;
    for _ in 0..50 {
        if got_all.len() >= want_all.len() {
            break;
        }
        let batch = api.receive(&t_all, 2).await;
        assert!(batch.len() <= 2);
        got_all.extend(batch);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(topics(&got_all), want_all);
    assert_eq!(topics(&api.receive_all(&t_noc, 3).await), want_noc);
    assert_eq!(topics(&api.receive_all(&t_other, 3).await), want_other);

    // /notify reaches every inbox, including one created while the bus runs.
    let late = unique_name("late");
    let s_late = api.create(&late, &format!("{w}.late.#")).await;
    let t_late = api.bearer(&late, &s_late).await;
    let r = api
        .http
        .post(format!("{}/notify", api.base))
        .bearer_auth(&t_all)
        .json(&json!({"message": {"payload": {"topic": "broadcast"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for t in [&t_all, &t_noc, &t_other, &t_late] {
        let got = api.receive_all(t, 1).await;
        assert!(topics(&got).contains(&"broadcast".to_owned()), "{got:?}");
    }
    // The late client receives by topic without a restart.
    assert_eq!(
        api.send(&t_all, &format!("{w}.late.x"), 9).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        topics(&api.receive_all(&t_late, 1).await),
        vec![format!("{w}.late.x")]
    );

    // A changed subscription takes effect live.
    let r = api
        .http
        .put(format!("{}/client/{other}", api.base))
        .bearer_auth(ADMIN)
        .json(&json!({"subscription": format!("{w}.changed")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        api.send(&t_all, &format!("{w}.soar.other.q"), 10).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        api.send(&t_all, &format!("{w}.changed"), 11).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        topics(&api.receive_all(&t_other, 1).await),
        vec![format!("{w}.changed")]
    );

    // A deleted client's token stops working.
    for id in [&all, &noc, &other, &late] {
        let r = api
            .http
            .delete(format!("{}/client/{id}", api.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let r = api
        .http
        .get(format!("{}/receive", api.base))
        .bearer_auth(&t_late)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    api.stop().await;
}

async fn error_of(r: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(r.status(), status);
    let v: Value = r.json().await.unwrap();
    assert!(v["detail"].is_string(), "{v}");
    v["error"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_input_failures_have_json_errors_with_their_status() {
    let api = start(Duration::from_secs(2)).await;
    let a = unique_name("a");
    let b = unique_name("b");
    let s_a = api.create(&a, "authtest.a").await;
    let t_b = api.login(&b).await;
    let http = &api.http;
    let base = &api.base;
    // GET `path`, with `token` as bearer token if given.
    let get = |path: &str, token: Option<&str>| {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let sent = req.send();
        async { sent.await.unwrap() }
    };
    // POST `body` to /send as client b.
    let send_as_b = |body: &Value| {
        let sent = http
            .post(format!("{base}/send"))
            .bearer_auth(&t_b)
            .json(body)
            .send();
        async { sent.await.unwrap() }
    };

    // No token, a malformed one, a forged one.
    error_of(get("/receive", None).await, StatusCode::UNAUTHORIZED).await;
    error_of(
        get("/receive", Some("junk")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (claims, _) = t_b.split_once('.').unwrap();
    let forged = format!("{claims}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    error_of(
        get("/receive", Some(&forged)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // Wrong secret and unknown client answer alike.
    let wrong = error_of(api.token(&a, "wrong").await, StatusCode::UNAUTHORIZED).await;
    let unknown = error_of(
        api.token("nobody-here", "wrong").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong, unknown);
    error_of(get("/token", None).await, StatusCode::BAD_REQUEST).await;

    // Admin calls need the admin token: none → 401, a client's → 403.
    error_of(get("/client", None).await, StatusCode::UNAUTHORIZED).await;
    error_of(get("/client", Some(&t_b)).await, StatusCode::FORBIDDEN).await;
    let list: Value = get("/client", Some(ADMIN)).await.json().await.unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c.get("secret").is_none() && c.get("secret_hash").is_none()));
    let one: Value = get(&format!("/client/{a}"), Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["client_id"], a.as_str());
    assert!(one.get("secret").is_none());
    error_of(
        get("/client/none-such", Some(ADMIN)).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Duplicate, bad JSON, bad fields, oversized body, unknown route.
    let post_client = |body: &Value| {
        let r = http
            .post(format!("{base}/client"))
            .bearer_auth(ADMIN)
            .json(body)
            .send();
        async { r.await.unwrap() }
    };
    let dup = json!({"client_id": a, "client_name": "again", "subscription": "#"});
    error_of(post_client(&dup).await, StatusCode::CONFLICT).await;
    let bad = http
        .post(format!("{base}/client"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    error_of(bad, StatusCode::BAD_REQUEST).await;
    let bad_id = json!({"client_id": "a b/../c", "client_name": "x", "subscription": "#"});
    error_of(post_client(&bad_id).await, StatusCode::BAD_REQUEST).await;
    let bad_sub = json!({"client_id": "okid", "client_name": "x", "subscription": "a..b"});
    error_of(post_client(&bad_sub).await, StatusCode::BAD_REQUEST).await;
    // The server closes a connection whose body it refused unread: a client of its own, so
    // the pooled connection of `http` is not the one closed.
    let big = json!({"topic": "authtest.a", "message": "x".repeat(2 << 20)});
    error_of(
        reqwest::Client::new()
            .post(format!("{base}/send"))
            .bearer_auth(&t_b)
            .json(&big)
            .send()
            .await
            .unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    error_of(
        send_as_b(&json!({"topic": "a.*", "message": {}})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    error_of(
        send_as_b(&json!({"message": {}})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    error_of(
        get("/receive?max_messages=0", Some(&t_b)).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    error_of(get("/nowhere", None).await, StatusCode::NOT_FOUND).await;

    // Token requests are rate-limited per client id.
    let mut limited = false;
    for _ in 0..40 {
        if api.token(&a, "wrong").await.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited);

    // A token expires (lifetime two seconds here, counted in whole seconds).
    let t_a = {
        let id = unique_name("exp");
        let s = api.create(&id, "authtest.exp").await;
        api.bearer(&id, &s).await
    };
    assert_eq!(api.receive(&t_a, 1).await.len(), 0);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let e = get("/receive", Some(&t_a)).await;
    assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    let v: Value = e.json().await.unwrap();
    assert_eq!(v["detail"], "the token has expired");
    let _ = s_a;
    api.stop().await;
}

// ----- /stream --------------------------------------------------------------------------------

async fn ws_connect(api: &Api, query: &str, token: Option<&str>) -> Ws {
    tokio_tungstenite::connect_async(ws_request(api, query, token))
        .await
        .unwrap()
        .0
}

/// The status and JSON body the server refused a websocket handshake with.
async fn ws_refused(api: &Api, query: &str, token: Option<&str>) -> (u16, Value) {
    match tokio_tungstenite::connect_async(ws_request(api, query, token)).await {
        Err(tungstenite::Error::Http(r)) => {
            let body: Value =
                serde_json::from_slice(r.body().as_deref().unwrap_or(b"null")).unwrap();
            (r.status().as_u16(), body)
        }
        Err(e) => panic!("handshake failed otherwise: {e}"),
        Ok(_) => panic!("the handshake succeeded"),
    }
}

/// The next text frame as JSON, or `None` if none comes within `wait`.
async fn ws_next(ws: &mut Ws, wait: Duration) -> Option<Value> {
    use futures_util::StreamExt as _;
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(tungstenite::Message::Text(t)))) => {
                return Some(serde_json::from_str(t.as_str()).unwrap())
            }
            Ok(Some(Ok(tungstenite::Message::Close(c)))) => panic!("closed: {c:?}"),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("stream ended: {other:?}"),
        }
    }
}

async fn ws_frame(ws: &mut Ws) -> Value {
    ws_next(ws, Duration::from_secs(10))
        .await
        .expect("a frame within 10 s")
}

async fn ws_ack(ws: &mut Ws, id: u64) {
    use futures_util::SinkExt as _;
    ws.send(tungstenite::Message::Text(
        json!({"ack": id}).to_string().into(),
    ))
    .await
    .unwrap();
}

/// Ready messages and consumers of a queue.
async fn queue_state(queue: &str) -> (u32, u32) {
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            queue,
            amqp_client::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let _ = conn.close().await;
    (q.message_count, q.consumer_count)
}

/// Waits until the queue has no consumer (a closed stream's channel is gone) and returns its
/// ready messages.
async fn ready_once_unconsumed(queue: &str) -> u32 {
    for _ in 0..200 {
        let (ready, consumers) = queue_state(queue).await;
        if consumers == 0 {
            return ready;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{queue} kept a consumer");
}

fn n_of(frame: &Value) -> u64 {
    frame["message"]["header"]["n"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_delivers_in_order_within_the_prefetch_and_requeues_what_was_not_acked() {
    let api = start(Duration::from_secs(3600)).await;
    let w = unique_name("s").replace(['-', '.'], "_");
    let id = unique_name("stream");
    let secret = api.create(&id, &format!("{w}.#")).await;
    let token = api.bearer(&id, &secret).await;
    let inbox = format!("{id}-inbox");
    for n in 0..10 {
        assert_eq!(
            api.send(&token, &format!("{w}.x"), n).await,
            StatusCode::ACCEPTED
        );
    }
    // The forwarder moves all ten to the inbox.
    for _ in 0..200 {
        if queue_state(&inbox).await.0 == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(queue_state(&inbox).await, (10, 0));

    let mut ws = ws_connect(&api, "?prefetch=4", Some(&token)).await;
    for i in 0..4u64 {
        let f = ws_frame(&mut ws).await;
        assert_eq!(f["id"], i + 1, "{f}");
        assert_eq!(n_of(&f), i);
        assert_eq!(f["redelivered"], false);
    }
    // The in-flight bound: the other six stay in the queue until something is acked.
    assert_eq!(ws_next(&mut ws, Duration::from_millis(300)).await, None);
    assert_eq!(queue_state(&inbox).await, (6, 1));
    ws_ack(&mut ws, 1).await;
    ws_ack(&mut ws, 2).await;
    for i in 4..6u64 {
        let f = ws_frame(&mut ws).await;
        assert_eq!((f["id"].as_u64(), n_of(&f)), (Some(i + 1), i));
    }
    assert_eq!(ws_next(&mut ws, Duration::from_millis(300)).await, None);
    // An id that is not in flight (already acked, or never sent) is an error frame.
    ws_ack(&mut ws, 1).await;
    let e = ws_frame(&mut ws).await;
    assert_eq!(e["error"], "bad request", "{e}");
    assert!(e["detail"].as_str().unwrap().contains("id 1"), "{e}");
    use futures_util::SinkExt as _;
    ws.send(tungstenite::Message::Text("not json".into()))
        .await
        .unwrap();
    assert_eq!(ws_frame(&mut ws).await["error"], "bad request");
    ws_ack(&mut ws, 3).await;
    // Closing with 4, 5, 6 (n = 3, 4, 5) and perhaps n = 6 unacked puts them back: 7 messages
    // in the queue.
    ws.close(None).await.unwrap();
    assert_eq!(ready_once_unconsumed(&inbox).await, 7);

    // A new stream gets them again, flagged, in their original order, then the rest.
    let mut ws = ws_connect(&api, "", Some(&token)).await;
    let mut got = Vec::new();
    for i in 0..7u64 {
        let f = ws_frame(&mut ws).await;
        assert_eq!(f["id"], i + 1);
        // n = 6 was sent to the first socket once 3 was acked, unless it closed first.
        if i != 3 {
            assert_eq!(f["redelivered"], i < 3, "{f}");
        }
        got.push(n_of(&f));
    }
    assert_eq!(got, (3..10).collect::<Vec<_>>());
    // Acked messages are gone from the queue for good.
    for i in 1..=7 {
        ws_ack(&mut ws, i).await;
    }
    ws.close(None).await.unwrap();
    assert_eq!(ready_once_unconsumed(&inbox).await, 0);
    assert!(api.receive(&token, 10).await.is_empty());

    // Unacked on a stream, then the socket closes: /receive gets it.
    assert_eq!(
        api.send(&token, &format!("{w}.x"), 42).await,
        StatusCode::ACCEPTED
    );
    let mut ws = ws_connect(&api, "", Some(&token)).await;
    assert_eq!(n_of(&ws_frame(&mut ws).await), 42);
    drop(ws);
    let got = api.receive_all(&token, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["header"]["n"], 42);

    // The service shutting down closes open streams with 1001.
    use futures_util::StreamExt as _;
    let mut ws = ws_connect(&api, "", Some(&token)).await;
    let stopping = tokio::spawn(api.stop());
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(tungstenite::Message::Close(c))) => break c,
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1001));
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_refuses_before_the_upgrade() {
    let api = start(Duration::from_secs(3600)).await;
    let id = unique_name("streamauth");
    let secret = api.create(&id, "streamauth.#").await;
    let token = api.bearer(&id, &secret).await;
    for (query, tok) in [
        ("", None),
        ("", Some("not-a-token")),
        ("?token=not.a-token", None),
        ("", Some(ADMIN)),
    ] {
        let (status, body) = ws_refused(&api, query, tok).await;
        assert_eq!(status, 401, "{query} {tok:?}: {body}");
        assert_eq!(body["error"], "unauthorized");
    }
    let (status, body) = ws_refused(&api, "?prefetch=0", Some(&token)).await;
    assert_eq!((status, &body["error"]), (400, &json!("bad request")));
    let (status, _) = ws_refused(&api, "?prefetch=1001", Some(&token)).await;
    assert_eq!(status, 400);
    // Without the websocket handshake: a JSON error too.
    let r = api
        .http
        .get(format!("{}/stream", api.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].is_string() && v["detail"].is_string(), "{v}");
    // The token as a query parameter, as a browser passes it.
    assert_eq!(
        api.send(&token, "streamauth.q", 7).await,
        StatusCode::ACCEPTED
    );
    let mut ws = ws_connect(&api, &format!("?token={token}"), None).await;
    let f = ws_frame(&mut ws).await;
    assert_eq!(n_of(&f), 7);
    ws_ack(&mut ws, 1).await;
    ws.close(None).await.unwrap();
    // A deleted client's stream: the token no longer opens one.
    let r = api
        .http
        .delete(format!("{}/client/{id}", api.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(ws_refused(&api, "", Some(&token)).await.0, 401);
    api.stop().await;
}

// ----- /openapi.json --------------------------------------------------------------------------

/// Every route the router serves, as (path, method).
const ROUTES: &[(&str, &str)] = &[
    ("/client", "get"),
    ("/client", "post"),
    ("/client/{id}", "delete"),
    ("/client/{id}", "get"),
    ("/client/{id}", "put"),
    ("/health", "get"),
    ("/notify", "post"),
    ("/openapi.json", "get"),
    ("/receive", "get"),
    ("/send", "post"),
    ("/stream", "get"),
    ("/token", "get"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_json_is_openapi_3_and_lists_every_route_served() {
    let api = start(Duration::from_secs(3600)).await;
    let r = api
        .http
        .get(format!("{}/openapi.json", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let listed: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    let want: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(p, m)| ((*p).to_owned(), (*m).to_owned()))
        .collect();
    assert_eq!(sorted, want);

    let schemes = &doc["components"]["securitySchemes"];
    for s in ["bearer", "admin"] {
        assert_eq!(schemes[s]["type"], "http", "{schemes}");
        assert_eq!(schemes[s]["scheme"], "bearer", "{schemes}");
    }
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["error", "detail"]), "{error}");
    for (path, method) in &listed {
        let op = &doc["paths"][path][method];
        let responses = op["responses"].as_object().unwrap();
        for (status, resp) in responses {
            let code: u16 = status.parse().unwrap();
            if code >= 400 {
                assert_eq!(
                    resp["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
        let security = op["security"].to_string();
        if path.starts_with("/client") {
            assert!(
                security.contains("admin") && responses.contains_key("403"),
                "{path}"
            );
        } else if ["/send", "/notify", "/receive", "/stream"].contains(&path.as_str()) {
            assert!(
                security.contains("bearer") && responses.contains_key("401"),
                "{path}"
            );
        }
    }

    // Every listed route is served (not the fallback), and an unlisted one is not.
    let fallback = |status: StatusCode, body: &Value| {
        status == StatusCode::METHOD_NOT_ALLOWED
            || (status == StatusCode::NOT_FOUND && body["detail"] == "no such endpoint")
    };
    for (path, method) in &listed {
        let url = format!("{}{}", api.base, path.replace("{id}", "nobody"));
        let r = api
            .http
            .request(method.to_uppercase().parse().unwrap(), url)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(!fallback(status, &body), "{method} {path}: {status} {body}");
    }
    let r = api
        .http
        .get(format!("{}/unlisted", api.base))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(fallback(status, &r.json().await.unwrap()));
    api.stop().await;
}

/// What the schemathesis run (scripts/check-backbone-api) found, one check per finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_check_findings_stay_fixed() {
    let api = start(Duration::from_secs(3600)).await;
    let (http, base) = (&api.http, &api.base);
    let w = unique_name("f").replace(['-', '.'], "_");
    let id = unique_name("findings");
    let secret = api.create(&id, &format!("{w}.#")).await;
    let token = api.bearer(&id, &secret).await;

    // Finding 1: well-formed JSON of the wrong shape was axum's 422, undocumented; it is a 400.
    let cases = [
        (
            reqwest::Method::POST,
            "/client".to_owned(),
            ADMIN,
            json!({"client_id": "x", "client_name": "x", "subscription": "x", "extra": 42}),
        ),
        (
            reqwest::Method::PUT,
            format!("/client/{id}"),
            ADMIN,
            json!({"client_name": null, "extra": 42}),
        ),
        (
            reqwest::Method::POST,
            "/send".to_owned(),
            &token,
            json!({"topic": {}, "message": null}),
        ),
        (
            reqwest::Method::POST,
            "/notify".to_owned(),
            &token,
            json!({}),
        ),
    ];
    for (method, path, auth, body) in cases {
        let r = http
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(auth)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(r, StatusCode::BAD_REQUEST).await,
            "bad request",
            "{method} {path}"
        );
    }

    // Finding 2: /receive said its items were objects, but a message is any JSON.
    let sent = [
        json!(null),
        json!([1, "two"]),
        json!("text"),
        json!(5),
        json!({}),
    ];
    for m in &sent {
        let r = http
            .post(format!("{base}/send"))
            .bearer_auth(&token)
            .json(&json!({"topic": format!("{w}.any"), "message": m}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    assert_eq!(api.receive_all(&token, sent.len()).await, sent.to_vec());
    let doc: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = &doc["paths"]["/receive"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["items"];
    assert!(items.is_object() && items.get("type").is_none(), "{items}");

    // Found by hand: a path id that is not UTF-8 was a plain-text 400.
    let r = http
        .get(format!("{base}/client/%FF"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r, StatusCode::BAD_REQUEST).await, "bad request");

    // Admin calls are checked against the argon2 hash once, then by digest: a wrong token is
    // still refused after the right one was seen.
    for (auth, status) in [
        (ADMIN, StatusCode::OK),
        ("admin-token-for-testz", StatusCode::FORBIDDEN),
        (ADMIN, StatusCode::OK),
    ] {
        let r = http
            .get(format!("{base}/client/{id}"))
            .bearer_auth(auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{auth}");
    }
    api.stop().await;
}

/// `backbone --listen 127.0.0.1:0` logs the port it was given, and answers there.
#[tokio::test]
async fn the_binary_on_port_zero_logs_the_port_it_listens_on() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let mut child = common::Reaped(
        Command::new(env!("CARGO_BIN_EXE_backbone"))
            .args(["--url", &amqp_url(), "--listen", "127.0.0.1:0", "-v"])
            .arg("--db")
            .arg(dir.path().join("backbone.db"))
            .env("BACKBONE_ADMIN_TOKEN", "port-zero-admin-token")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let said = tokio::task::spawn_blocking(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some((_, addr)) = line.split_once("listening on ") {
                return addr.trim().to_owned();
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        panic!("the backbone ended without saying where it listens:\n{seen}");
    });
    let base = tokio::time::timeout(Duration::from_secs(30), said)
        .await
        .expect("no \"listening on\" in the backbone's log within 30 s")
        .unwrap();
    let port: u16 = base
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not a loopback address with a port: {base:?}"));
    assert_ne!(port, 0);
    let r = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
