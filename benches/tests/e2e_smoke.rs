//! Runs the end-to-end benchmark binary at a tiny size against the test broker and checks that
//! every scenario, for every client (the ceiling reference too, in the scenarios it runs), got
//! through exactly what it was asked for, and that the broker's CPU was measured.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

const CLIENTS: [&str; 4] = ["ours", "lapin", "amqprs", "ceiling"];

/// Whether `client` runs `scenario`: the ceiling measures the broker's throughput only.
fn runs(client: &str, scenario: &str) -> bool {
    client != "ceiling" || matches!(scenario, "publish" | "confirm" | "consume")
}

/// The cells of a Markdown table row, trimmed.
fn cells(row: &str) -> Vec<&str> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

#[test]
fn every_scenario_reports_the_counts_it_was_asked_for() {
    let url = amqp_test_support::amqp_url();
    let dir = std::env::temp_dir().join(amqp_test_support::unique_name("e2e-smoke"));
    std::fs::create_dir_all(&dir).unwrap();
    let md = dir.join("e2e.md");
    let json = dir.join("e2e.json");
    let pid_file = amqp_test_support::broker_dir().join("rabbitmq.pid");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()))
        .trim()
        .parse()
        .unwrap();
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
        .args(["--broker-pid", &pid.to_string()])
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
    let runs_expected = expected
        .keys()
        .flat_map(|s| CLIENTS.iter().filter(|c| runs(c, s)))
        .count();
    assert_eq!(runs_expected, 5 * 3 + 3);
    assert_eq!(results.len(), runs_expected, "{results:#?}");
    for (scenario, want) in &expected {
        for client in CLIENTS.into_iter().filter(|c| runs(c, scenario)) {
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
            // Measured, even if a run this small may not last one clock tick of the broker.
            assert!(r["broker_cpu_s"].as_f64().unwrap() >= 0.0, "{what}");
            // A run shorter than a clock tick has no idle share to tell.
            if let Some(idle) = r["machine_idle_pct"].as_f64() {
                assert!((0.0..=100.0).contains(&idle), "{what}");
            }
            if *scenario == "rpc" {
                let p50 = r["p50_us"].as_f64().unwrap();
                let p99 = r["p99_us"].as_f64().unwrap();
                assert!(p50 > 0.0 && p50 <= p99, "{what}");
            } else {
                assert_eq!(r["p50_us"], Value::Null, "{what}");
            }
        }
    }

    // Both renderings carry one row per (scenario, client) that ran, with the broker's CPU;
    // the competitors' throughput rows also carry their share of the ceiling.
    let markdown = std::fs::read_to_string(&md).unwrap();
    let header = markdown
        .lines()
        .find(|l| l.starts_with("| scenario |"))
        .unwrap_or_else(|| panic!("no table header in\n{markdown}"));
    let column = |name: &str| {
        cells(header)
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no {name:?} column in {header:?}"))
    };
    let (broker_us, broker_pct, of_ceiling) = (
        column("broker CPU µs/msg"),
        column("broker CPU % core"),
        column("% of ceiling"),
    );
    column("machine idle %");
    for scenario in expected.keys() {
        for client in CLIENTS {
            let row = format!("| {scenario} |");
            let rows: Vec<&str> = markdown
                .lines()
                .filter(|l| l.starts_with(&row) && l.contains(&format!("| {client} |")))
                .collect();
            let in_text = stdout
                .lines()
                .any(|l| l.starts_with(*scenario) && l.contains(client));
            if !runs(client, scenario) {
                assert!(rows.is_empty() && !in_text, "{scenario}/{client} ran");
                continue;
            }
            assert_eq!(rows.len(), 1, "{scenario}/{client} row in\n{markdown}");
            assert!(in_text, "{scenario}/{client} row in\n{stdout}");
            let row = cells(rows[0]);
            assert!(!row[broker_us].is_empty(), "{scenario}/{client}: {row:?}");
            assert!(
                row[broker_pct].ends_with(" %"),
                "{scenario}/{client}: {row:?}"
            );
            let compared = client != "ceiling" && runs("ceiling", scenario);
            assert_eq!(
                row[of_ceiling].ends_with(" %"),
                compared,
                "{scenario}/{client}: {row:?}"
            );
        }
    }
    assert!(markdown.contains(&format!("(pid {pid}, CPU measured)")));
    assert!(markdown.contains("- ceiling: a reference, not a competitor"));
    std::fs::remove_dir_all(&dir).unwrap();
}
