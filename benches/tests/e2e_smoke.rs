//! Runs the end-to-end benchmark binary at a tiny size against the test broker and checks that
//! every scenario, for every client, got through exactly what it was asked for.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

const CLIENTS: [&str; 3] = ["ours", "lapin", "amqprs"];

#[test]
fn every_scenario_reports_the_counts_it_was_asked_for() {
    let url = amqp_test_support::amqp_url();
    let dir = std::env::temp_dir().join(amqp_test_support::unique_name("e2e-smoke"));
    std::fs::create_dir_all(&dir).unwrap();
    let md = dir.join("e2e.md");
    let json = dir.join("e2e.json");
    let out = Command::new(env!("CARGO_BIN_EXE_e2e"))
        .args(["--url", &url])
        .args([
            "--count",
            "30",
            "--rpc-count",
            "20",
            "--size",
            "16",
            "--rounds",
            "1",
        ])
        .args([
            "--memory-mib",
            "3",
            "--memory-sleep-ms",
            "1",
            "--timeout-secs",
            "60",
        ])
        .args(["--clients", &CLIENTS.join(",")])
        .arg("--markdown")
        .arg(&md)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "e2e failed\n{stdout}\n{stderr}");

    let results: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let expected: HashMap<&str, u64> = [
        ("publish", 30),
        ("confirm", 30),
        ("consume", 30),
        ("rpc", 20),
        ("memory", 3),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        results.len(),
        expected.len() * CLIENTS.len(),
        "{results:#?}"
    );
    for (scenario, want) in &expected {
        for client in CLIENTS {
            let r = results
                .iter()
                .find(|r| r["scenario"] == *scenario && r["client"] == client)
                .unwrap_or_else(|| panic!("no result for {scenario}/{client}"));
            let what = format!("{scenario}/{client}: {r}");
            assert_eq!(r["error"], Value::Null, "{what}");
            assert_eq!(r["requested"].as_u64(), Some(*want), "{what}");
            assert_eq!(r["count"].as_u64(), Some(*want), "{what}");
            let size = if *scenario == "memory" { 1 << 20 } else { 16 };
            assert_eq!(r["bytes"].as_u64(), Some(want * size), "{what}");
            assert!(r["elapsed_s"].as_f64().unwrap() > 0.0, "{what}");
            assert!(r["max_rss_kib"].as_u64().unwrap() > 0, "{what}");
            if *scenario == "rpc" {
                let p50 = r["p50_us"].as_f64().unwrap();
                let p99 = r["p99_us"].as_f64().unwrap();
                assert!(p50 > 0.0 && p50 <= p99, "{what}");
            } else {
                assert_eq!(r["p50_us"], Value::Null, "{what}");
            }
        }
    }

    // Both renderings carry one row per (scenario, client).
    let markdown = std::fs::read_to_string(&md).unwrap();
    for scenario in expected.keys() {
        for client in CLIENTS {
            let row = format!("| {scenario} |");
            let hits = markdown
                .lines()
                .filter(|l| l.starts_with(&row) && l.contains(&format!("| {client} |")))
                .count();
            assert_eq!(hits, 1, "{scenario}/{client} row in\n{markdown}");
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with(*scenario) && l.contains(client)),
                "{scenario}/{client} row in\n{stdout}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
