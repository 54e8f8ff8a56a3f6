//! Turning run results into the summary table (medians over rounds) and its two renderings.

use std::fmt::Write as _;
use std::time::Duration;

use super::stats::{group_thousands, median, min_max, three_sig, Align, Table};
use super::{ClientKind, RunResult, Scenario};

/// The knobs a report states next to its table.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) count: u64,
    pub(crate) rpc_count: u64,
    pub(crate) size: usize,
    pub(crate) rounds: u32,
    pub(crate) prefetch: u16,
    pub(crate) ack_every: u64,
    pub(crate) memory_mib: u64,
    pub(crate) memory_sleep_ms: u64,
    pub(crate) clients: Vec<ClientKind>,
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) wall: Duration,
    /// Product and version the broker announced.
    pub(crate) broker: String,
    /// CPUs available to this process.
    pub(crate) cpus: usize,
    /// One-minute load average before and after the runs.
    pub(crate) load: (Option<f64>, Option<f64>),
}

/// One (scenario, client) row: its runs over all rounds, reduced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) scenario: Scenario,
    pub(crate) client: ClientKind,
    pub(crate) size: usize,
    pub(crate) requested: u64,
    /// Runs that completed without error and got through every message asked for.
    pub(crate) ok_runs: usize,
    pub(crate) runs: usize,
    /// Median msgs/s (calls/s for RPC) over the successful runs.
    pub(crate) rate: Option<f64>,
    pub(crate) rate_range: Option<(f64, f64)>,
    /// Median user+sys CPU µs per message.
    pub(crate) cpu_us: Option<f64>,
    /// Largest peak RSS over the successful runs, MiB.
    pub(crate) rss_mib: Option<f64>,
    /// Medians over rounds of each round's p50 / p99 (RPC).
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    /// This row's median rate over the best median rate of the other clients.
    pub(crate) vs_best_other: Option<f64>,
    /// Distinct reasons for failed runs.
    pub(crate) errors: Vec<String>,
}

fn run_ok(r: &RunResult) -> bool {
    r.error.is_none() && r.count == r.requested
}

/// Reduces results to one row per (scenario, client), in the order given.
pub(crate) fn summarize(
    results: &[RunResult],
    scenarios: &[Scenario],
    clients: &[ClientKind],
) -> Vec<Summary> {
    let mut rows = Vec::new();
    for &scenario in scenarios {
        let first = rows.len();
        for &client in clients {
            let runs: Vec<&RunResult> = results
                .iter()
                .filter(|r| r.scenario == scenario && r.client == client)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let ok: Vec<&RunResult> = runs.iter().copied().filter(|r| run_ok(r)).collect();
            let rates: Vec<f64> = ok.iter().map(|r| r.rate()).collect();
            let cpu: Vec<f64> = ok.iter().map(|r| r.cpu_us_per_msg()).collect();
            let p50: Vec<f64> = ok.iter().filter_map(|r| r.p50_us).collect();
            let p99: Vec<f64> = ok.iter().filter_map(|r| r.p99_us).collect();
            let rss = ok
                .iter()
                .map(|r| r.max_rss_kib)
                .max()
                .map(|k| k as f64 / 1024.0);
            let mut errors: Vec<String> = Vec::new();
            for r in &runs {
                let why = match &r.error {
                    Some(e) => e.clone(),
                    None if r.count != r.requested => {
                        format!("got {} of {}", r.count, r.requested)
                    }
                    None => continue,
                };
                if !errors.contains(&why) {
                    errors.push(why);
                }
            }
            rows.push(Summary {
                scenario,
                client,
                size: runs.first().map_or(0, |r| r.size),
                requested: runs.first().map_or(0, |r| r.requested),
                ok_runs: ok.len(),
                runs: runs.len(),
                rate: median(&rates),
                rate_range: min_max(&rates),
                cpu_us: median(&cpu),
                rss_mib: rss,
                p50_us: median(&p50),
                p99_us: median(&p99),
                vs_best_other: None,
                errors,
            });
        }
        // Throughput ratios mean nothing for the memory scenario, whose pace is the pause.
        if scenario != Scenario::Memory {
            let group: Vec<(ClientKind, Option<f64>)> =
                rows[first..].iter().map(|s| (s.client, s.rate)).collect();
            for row in &mut rows[first..] {
                let best_other = group
                    .iter()
                    .filter(|(c, _)| *c != row.client)
                    .filter_map(|(_, r)| *r)
                    .fold(None, |acc: Option<f64>, r| {
                        Some(acc.map_or(r, |a| a.max(r)))
                    });
                row.vs_best_other = match (row.rate, best_other) {
                    (Some(mine), Some(best)) if best > 0.0 => Some(mine / best),
                    _ => None,
                };
            }
        }
    }
    rows
}

fn size_label(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

fn table(summaries: &[Summary]) -> Table {
    let mut t = Table::new(&[
        ("scenario", Align::Left),
        ("size", Align::Right),
        ("n", Align::Right),
        ("client", Align::Left),
        ("msgs/s", Align::Right),
        ("min–max msgs/s", Align::Right),
        ("CPU µs/msg", Align::Right),
        ("peak RSS MiB", Align::Right),
        ("p50 µs", Align::Right),
        ("p99 µs", Align::Right),
        ("× best other", Align::Right),
        ("runs ok", Align::Right),
    ]);
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_else(|| "—".into());
    for s in summaries {
        t.push(vec![
            s.scenario.name().to_string(),
            size_label(s.size),
            group_thousands(s.requested as f64),
            s.client.name().to_string(),
            opt(s.rate, group_thousands),
            s.rate_range
                .map(|(lo, hi)| format!("{}–{}", group_thousands(lo), group_thousands(hi)))
                .unwrap_or_else(|| "—".into()),
            opt(s.cpu_us, three_sig),
            opt(s.rss_mib, |m| format!("{m:.1}")),
            if s.scenario == Scenario::Rpc {
                opt(s.p50_us, three_sig)
            } else {
                String::new()
            },
            if s.scenario == Scenario::Rpc {
                opt(s.p99_us, three_sig)
            } else {
                String::new()
            },
            s.vs_best_other
                .map(|x| format!("{x:.2}×"))
                .unwrap_or_default(),
            format!("{}/{}", s.ok_runs, s.runs),
        ]);
    }
    t
}

fn failures(summaries: &[Summary]) -> Vec<String> {
    summaries
        .iter()
        .flat_map(|s| {
            s.errors
                .iter()
                .map(move |e| format!("{} / {}: {e}", s.scenario.name(), s.client.name()))
        })
        .collect()
}

fn settings_line(s: &Settings) -> String {
    let clients: Vec<&str> = s.clients.iter().map(|c| c.name()).collect();
    let scenarios: Vec<&str> = s.scenarios.iter().map(|c| c.name()).collect();
    let load = |l: Option<f64>| l.map_or_else(|| "?".to_string(), |l| format!("{l:.1}"));
    format!(
        "N={} (rpc {}), size {} B, {} round(s) alternating {}, scenarios {}, prefetch {}, \
         ack every {} (multiple), memory {} MiB of 1 MiB messages with a {} ms pause; \
         {:.0} s in all.\nBroker {}; {} CPUs, load average {} before and {} after.",
        s.count,
        s.rpc_count,
        s.size,
        s.rounds,
        clients.join(" "),
        scenarios.join(","),
        s.prefetch,
        s.ack_every,
        s.memory_mib,
        s.memory_sleep_ms,
        s.wall.as_secs_f64(),
        s.broker,
        s.cpus,
        load(s.load.0),
        load(s.load.1),
    )
}

/// The table for a terminal, with the settings above it and failures below.
pub(crate) fn render_text(settings: &Settings, summaries: &[Summary]) -> String {
    let mut out = format!(
        "{}\n\n{}",
        settings_line(settings),
        table(summaries).render_text()
    );
    let fails = failures(summaries);
    if !fails.is_empty() {
        out.push_str("\nfailed runs:\n");
        for f in fails {
            let _ = writeln!(out, "  {f}");
        }
    }
    out
}

/// The Markdown copy: heading, settings, table, how it was measured, failures.
pub(crate) fn render_markdown(settings: &Settings, summaries: &[Summary]) -> String {
    let mut out = String::from("# End-to-end client benchmark\n\n");
    let _ = writeln!(out, "{}\n", settings_line(settings).replace('\n', "\n\n"));
    out.push_str(&table(summaries).render_markdown());
    out.push_str(
        "\n- Each (scenario, round, client) ran in its own process; msgs/s, CPU and p50/p99 \
         are medians over rounds, peak RSS is the largest high-water mark (`VmHWM`) of the worker process.\n\
         - CPU µs/msg is user+sys time of the whole worker process (`getrusage(RUSAGE_SELF)`) \
         over the measured interval, divided by the messages (calls) it got through.\n\
         - publish: until a passive `queue.declare` reports N ready; confirm: until every \
         confirm is in; consume: from `basic.consume` to the N-th delivery's ack; rpc: N \
         sequential calls through one echo server (amqprs, in the parent process) after 100 \
         warm-up calls; memory: pre-filled queue, consumer pauses after every delivery.\n\
         - × best other: this client's msgs/s over the best of the other clients in the \
         same run.\n",
    );
    let fails = failures(summaries);
    if !fails.is_empty() {
        out.push_str("\n## Failed runs\n\n");
        for f in fails {
            let _ = writeln!(out, "- {}", f.replace('|', "\\|"));
        }
    }
    out
}

/// One line per finished run, for the progress log on stderr.
pub(crate) fn progress_line(r: &RunResult) -> String {
    let head = format!(
        "{:<8} r{} {:<6}",
        r.scenario.name(),
        r.round,
        r.client.name()
    );
    match &r.error {
        Some(e) => format!("{head} FAILED: {e}"),
        None => {
            let mut line = format!(
                "{head} {:>10} msgs/s  {:>6} µs/msg CPU  {:>7.1} MiB peak  {}/{}",
                group_thousands(r.rate()),
                three_sig(r.cpu_us_per_msg()),
                r.max_rss_kib as f64 / 1024.0,
                r.count,
                r.requested
            );
            if let (Some(p50), Some(p99)) = (r.p50_us, r.p99_us) {
                let _ = write!(
                    line,
                    "  p50 {} µs  p99 {} µs",
                    three_sig(p50),
                    three_sig(p99)
                );
            }
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(client: ClientKind, scenario: Scenario, count: u64, secs: f64, rss: u64) -> RunResult {
        RunResult {
            client,
            scenario,
            round: 1,
            requested: 1000,
            count,
            size: 100,
            bytes: count * 100,
            elapsed_s: secs,
            cpu_user_s: secs / 2.0,
            cpu_sys_s: 0.0,
            max_rss_kib: rss,
            p50_us: (scenario == Scenario::Rpc).then_some(secs * 1000.0),
            p99_us: (scenario == Scenario::Rpc).then_some(secs * 2000.0),
            error: None,
        }
    }

    #[test]
    fn medians_ratios_and_failures() {
        use ClientKind::{Amqprs, Lapin, Ours};
        let mut failed = run(Lapin, Scenario::Publish, 0, 0.0, 0);
        failed.error = Some("boom".into());
        let results = vec![
            run(Ours, Scenario::Publish, 1000, 0.1, 2048),
            run(Ours, Scenario::Publish, 1000, 0.2, 4096),
            run(Ours, Scenario::Publish, 1000, 0.4, 1024),
            run(Lapin, Scenario::Publish, 1000, 0.5, 8192),
            failed,
            run(Lapin, Scenario::Publish, 500, 0.1, 8192),
            run(Amqprs, Scenario::Publish, 1000, 1.0, 1024),
            run(Ours, Scenario::Rpc, 1000, 1.0, 1024),
            run(Ours, Scenario::Rpc, 1000, 3.0, 1024),
        ];
        let rows = summarize(
            &results,
            &[Scenario::Publish, Scenario::Rpc, Scenario::Memory],
            &[Ours, Lapin, Amqprs],
        );
        assert_eq!(rows.len(), 4);
        let ours = &rows[0];
        assert_eq!((ours.ok_runs, ours.runs), (3, 3));
        assert_eq!(ours.rate, Some(5000.0));
        assert_eq!(ours.rate_range, Some((2500.0, 10_000.0)));
        assert_eq!(ours.cpu_us, Some(100.0));
        assert_eq!(ours.rss_mib, Some(4.0));
        assert_eq!(ours.vs_best_other, Some(2.5));
        let lapin = &rows[1];
        assert_eq!((lapin.ok_runs, lapin.runs), (1, 3));
        assert_eq!(lapin.rate, Some(2000.0));
        assert_eq!(
            lapin.errors,
            vec!["boom".to_string(), "got 500 of 1000".to_string()]
        );
        assert_eq!(lapin.vs_best_other, Some(0.4));
        assert_eq!(rows[2].vs_best_other, Some(0.2));
        let rpc = &rows[3];
        assert_eq!(rpc.scenario, Scenario::Rpc);
        assert_eq!((rpc.p50_us, rpc.p99_us), (Some(2000.0), Some(4000.0)));
        assert_eq!(rpc.vs_best_other, None);
    }

    #[test]
    fn rendered_tables_carry_the_numbers() {
        let results = vec![
            run(ClientKind::Ours, Scenario::Rpc, 1000, 0.5, 3072),
            run(ClientKind::Lapin, Scenario::Rpc, 1000, 1.0, 2048),
        ];
        let rows = summarize(
            &results,
            &[Scenario::Rpc],
            &[ClientKind::Ours, ClientKind::Lapin],
        );
        let settings = Settings {
            count: 1000,
            rpc_count: 1000,
            size: 100,
            rounds: 1,
            prefetch: 1000,
            ack_every: 100,
            memory_mib: 4,
            memory_sleep_ms: 5,
            clients: vec![ClientKind::Ours, ClientKind::Lapin],
            scenarios: vec![Scenario::Rpc],
            wall: Duration::from_secs(2),
            broker: "RabbitMQ 4.0.0".into(),
            cpus: 2,
            load: (Some(0.5), None),
        };
        let text = render_text(&settings, &rows);
        let ours_line = text
            .lines()
            .find(|l| l.starts_with("rpc") && l.contains("ours"))
            .unwrap();
        for want in ["100 B", "1 000", "2 000", "3.0", "500", "2.00×", "1/1"] {
            assert!(
                ours_line.contains(want),
                "{want:?} missing from {ours_line:?}"
            );
        }
        let md = render_markdown(&settings, &rows);
        assert!(md.starts_with("# End-to-end client benchmark\n"));
        assert!(md.contains("Broker RabbitMQ 4.0.0; 2 CPUs, load average 0.5 before and ? after."));
        assert!(md.contains("| rpc | 100 B | 1 000 | lapin | 1 000 | 1 000–1 000 | 500 | 2.0 | 1000 | 2000 | 0.50× | 1/1 |"));
        assert!(!md.contains("Failed runs"));
        assert_eq!(size_label(1 << 20), "1 MiB");
        assert_eq!(size_label(4096), "4 KiB");
        assert_eq!(size_label(100), "100 B");
    }
}
