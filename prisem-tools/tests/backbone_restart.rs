//! The backbone rides through a broker restart: while the broker is away `/send` answers 503,
//! afterwards it answers 2xx again without a restart of the API, and every message accepted
//! with 2xx reaches the inbox. A `/stream` open at the time is closed with 1013 and what it
//! held unacknowledged is delivered again. The only test in this binary, so restarting the shared test
//! broker disturbs no other test.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use amqp_test_support::{broker_script, unique_name};
use common::{serve_backbone, ws_request, Ws};
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn next_text(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a frame within 30 s")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("no text frame: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_503_while_the_broker_is_away_and_loses_no_accepted_message() {
    let admin = "restart-admin-token";
    let api = serve_backbone(admin, Duration::from_secs(3600)).await;
    let (base, http) = (api.base.clone(), api.http.clone());

    let w = unique_name("r").replace(['-', '.'], "_");
    let id = unique_name("restart");
    let created: Value = http
        .post(format!("{base}/client"))
        .bearer_auth(admin)
        .json(&json!({"client_id": id, "client_name": "restart", "subscription": format!("{w}.#")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap();
    let tok: Value = http
        .get(format!("{base}/token"))
        .query(&[("client_id", id.as_str()), ("secret", secret)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["token"].as_str().unwrap().to_owned();
    let ws_req = || ws_request(&api, "?prefetch=2", Some(&token));
    // A stream that holds messages without acknowledging them.
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_req()).await.unwrap();

    let sender = {
        let (http, base, token, topic) =
            (http.clone(), base.clone(), token.clone(), format!("{w}.x"));
        tokio::spawn(async move {
            let mut accepted = BTreeSet::new();
            let mut saw_503 = false;
            let mut accepted_after_503 = 0;
            let deadline = Instant::now() + Duration::from_secs(120);
            for n in 0u64.. {
                let r = http
                    .post(format!("{base}/send"))
                    .bearer_auth(&token)
                    .json(&json!({"topic": topic, "message": {"n": n}}))
                    .send()
                    .await
                    .unwrap();
                match r.status() {
                    StatusCode::ACCEPTED => {
                        accepted.insert(n);
                        if saw_503 {
                            accepted_after_503 += 1;
                        }
                    }
                    StatusCode::SERVICE_UNAVAILABLE => saw_503 = true,
                    other => panic!("unexpected status {other}"),
                }
                if accepted_after_503 >= 20 || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (accepted, saw_503, accepted_after_503)
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = next_text(&mut ws).await;
    assert_eq!(first["id"], 1);
    broker_script(&["kill"]);
    // The stream is closed with "try again later"; its messages go back to the inbox.
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("the stream closed within 30 s of the broker going away")
        {
            Some(Ok(Message::Close(c))) => break c,
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1013));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["error"], "broker unavailable", "{body}");
    assert!(body["detail"].is_string(), "{body}");
    broker_script(&["start"]);
    let (accepted, saw_503, after) = sender.await.unwrap();
    assert!(
        saw_503,
        "the API never answered 503 while the broker was away"
    );
    assert!(
        after >= 20,
        "the API did not recover ({after} accepted after the restart)"
    );

    // A new stream works again once the broker is back, and gets what the first one held.
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_req()).await.unwrap();
    let again = next_text(&mut ws).await;
    assert_eq!(again["id"], 1);
    assert_eq!(again["message"], first["message"]);
    drop(ws);

    let mut received = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !accepted.is_subset(&received) {
        let r = http
            .get(format!("{base}/receive?max_messages=100"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            let msgs: Vec<Value> = r.json().await.unwrap();
            received.extend(msgs.iter().filter_map(|m| m["n"].as_u64()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lost: Vec<_> = accepted.difference(&received).collect();
    assert!(lost.is_empty(), "accepted but lost: {lost:?}");

    let r = http
        .delete(format!("{base}/client/{id}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    api.stop().await;
}
