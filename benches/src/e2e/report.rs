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
    /// The broker process whose CPU time was measured, if any.
    pub(crate) broker_pid: Option<u32>,
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
    /// Median broker CPU µs per message (only with a broker pid).
    pub(crate) broker_us: Option<f64>,
    /// Median broker CPU use over the interval, % of one core (only with a broker pid).
    pub(crate) broker_pct: Option<f64>,
    /// Median share of the machine's CPU time left idle over the interval, %.
    pub(crate) idle_pct: Option<f64>,
    /// Largest peak RSS over the successful runs, MiB.
    pub(crate) rss_mib: Option<f64>,
    /// Medians over rounds of each round's p50 / p99 (RPC).
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    /// This row's median rate over the best median rate of the other competing clients (the
    /// ceiling is neither compared nor compared with).
    pub(crate) vs_best_other: Option<f64>,
    /// This row's median rate in % of the ceiling client's in the same scenario.
    pub(crate) pct_of_ceiling: Option<f64>,
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
            let broker_us: Vec<f64> = ok.iter().filter_map(|r| r.broker_us_per_msg()).collect();
            let broker_pct: Vec<f64> = ok.iter().filter_map(|r| r.broker_core_pct()).collect();
            let idle: Vec<f64> = ok.iter().filter_map(|r| r.machine_idle_pct).collect();
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
                broker_us: median(&broker_us),
                broker_pct: median(&broker_pct),
                idle_pct: median(&idle),
                rss_mib: rss,
                p50_us: median(&p50),
                p99_us: median(&p99),
                vs_best_other: None,
                pct_of_ceiling: None,
                errors,
            });
        }
        // Throughput ratios mean nothing for the memory scenario, whose pace is the pause.
        if scenario != Scenario::Memory {
            let group: Vec<(ClientKind, Option<f64>)> =
                rows[first..].iter().map(|s| (s.client, s.rate)).collect();
            let ceiling = group
                .iter()
                .find(|(c, _)| !c.competes())
                .and_then(|(_, r)| *r)
                .filter(|r| *r > 0.0);
            for row in rows[first..].iter_mut().filter(|r| r.client.competes()) {
                let best_other = group
                    .iter()
                    .filter(|(c, _)| *c != row.client && c.competes())
                    .filter_map(|(_, r)| *r)
                    .fold(None, |acc: Option<f64>, r| {
                        Some(acc.map_or(r, |a| a.max(r)))
                    });
                row.vs_best_other = match (row.rate, best_other) {
                    (Some(mine), Some(best)) if best > 0.0 => Some(mine / best),
                    _ => None,
                };
                row.pct_of_ceiling = row.rate.zip(ceiling).map(|(mine, c)| mine * 100.0 / c);
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
        ("broker CPU µs/msg", Align::Right),
        ("broker CPU % core", Align::Right),
        ("machine idle %", Align::Right),
        ("peak RSS MiB", Align::Right),
        ("p50 µs", Align::Right),
        ("p99 µs", Align::Right),
        ("× best other", Align::Right),
        ("% of ceiling", Align::Right),
        ("runs ok", Align::Right),
    ]);
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_else(|| "—".into());
    // Empty, not "—", when there is nothing to show: no broker pid, or a row not compared.
    let blank = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_default();
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
            blank(s.broker_us, three_sig),
            blank(s.broker_pct, |p| format!("{p:.0} %")),
            blank(s.idle_pct, |p| format!("{p:.0} %")),
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
            blank(s.vs_best_other, |x| format!("{x:.2}×")),
            blank(s.pct_of_ceiling, |p| format!("{p:.0} %")),
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
         {:.0} s in all.\nBroker {}{}; {} CPUs, load average {} before and {} after.",
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
        s.broker_pid
            .map(|pid| format!(" (pid {pid}, CPU measured)"))
            .unwrap_or_default(),
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
    if settings.clients.iter().any(|c| !c.competes()) {
        out.push_str(
            "ceiling: reference client (bare socket, pre-encoded publishes), not in × best \
             other; rpc and memory are not run for it.\n",
        );
    }
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
         same run (the ceiling is not one of them).\n\
         - broker CPU: user+sys time of the broker process (`/proc/<pid>/stat`, every thread) \
         over the same interval, per message and as average use in % of one core; empty when \
         no broker pid was given.\n\
         - machine idle: the share of all CPUs' time (`/proc/stat`) nobody used over the same \
         interval; near 0 % means every core was busy, with the run or with anything else.\n",
    );
    if settings.clients.iter().any(|c| !c.competes()) {
        out.push_str(
            "- ceiling: a reference, not a competitor: a bare socket and the codec, one publish \
             encoded once and written in batches of about 256 KiB, confirms counted and \
             deliveries acked as the others do. Its msgs/s is what the broker sustains here; \
             % of ceiling is each client's msgs/s over it. It runs publish, confirm and consume \
             only (rpc and memory measure the client, not the broker).\n",
        );
    }
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
            if let (Some(us), Some(pct)) = (r.broker_us_per_msg(), r.broker_core_pct()) {
                let _ = write!(line, "  broker {} µs/msg {pct:.0} %", three_sig(us));
            }
            if let Some(idle) = r.machine_idle_pct {
                let _ = write!(line, "  idle {idle:.0} %");
            }
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
            broker_cpu_s: None,
            machine_idle_pct: None,
            max_rss_kib: rss,
            p50_us: (scenario == Scenario::Rpc).then_some(secs * 1000.0),
            p99_us: (scenario == Scenario::Rpc).then_some(secs * 2000.0),
            error: None,
        }
    }

    /// Settings for rendering: 1000 messages of 100 B, one round, two CPUs, a known broker.
    fn settings(
        clients: &[ClientKind],
        scenarios: Vec<Scenario>,
        broker_pid: Option<u32>,
    ) -> Settings {
        Settings {
            count: 1000,
            rpc_count: 1000,
            size: 100,
            rounds: 1,
            prefetch: 1000,
            ack_every: 100,
            memory_mib: 4,
            memory_sleep_ms: 5,
            clients: clients.to_vec(),
            scenarios,
            wall: Duration::from_secs(2),
            broker: "RabbitMQ 4.0.0".into(),
            cpus: 2,
            load: (Some(0.5), None),
            broker_pid,
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
        assert!(rows.iter().all(|r| r.pct_of_ceiling.is_none()));
        assert!(rows
            .iter()
            .all(|r| r.broker_us.is_none() && r.broker_pct.is_none()));
    }

    #[test]
    fn ceiling_is_a_reference_and_broker_cpu_is_reported() {
        use ClientKind::{Ceiling, Lapin, Ours};
        let with_broker = |mut r: RunResult, cpu: f64| {
            r.broker_cpu_s = Some(cpu);
            r.machine_idle_pct = Some(cpu * 10.0);
            r
        };
        let results = vec![
            with_broker(run(Ours, Scenario::Publish, 1000, 0.2, 1024), 0.3),
            with_broker(run(Lapin, Scenario::Publish, 1000, 0.4, 1024), 0.4),
            with_broker(run(Ceiling, Scenario::Publish, 1000, 0.1, 512), 0.15),
            with_broker(run(Ours, Scenario::Rpc, 1000, 1.0, 1024), 0.5),
        ];
        let clients = [Ours, Lapin, Ceiling];
        let rows = summarize(&results, &[Scenario::Publish, Scenario::Rpc], &clients);
        assert_eq!(rows.len(), 4, "{rows:#?}");
        let (ours, lapin, ceiling) = (&rows[0], &rows[1], &rows[2]);
        // The ceiling (10 000 msgs/s) is faster than both, yet ours is compared with lapin.
        assert_eq!(ours.vs_best_other, Some(2.0));
        assert_eq!(lapin.vs_best_other, Some(0.5));
        assert_eq!(ceiling.vs_best_other, None);
        assert_eq!(ours.pct_of_ceiling, Some(50.0));
        assert_eq!(lapin.pct_of_ceiling, Some(25.0));
        assert_eq!(ceiling.pct_of_ceiling, None);
        assert_eq!(ours.broker_us, Some(300.0));
        assert_eq!(ours.broker_pct, Some(150.0));
        assert_eq!(ours.idle_pct, Some(3.0));
        assert_eq!(ceiling.broker_us, Some(150.0));
        // No ceiling ran RPC: nothing to compare with there.
        assert_eq!(rows[3].pct_of_ceiling, None);
        assert_eq!(rows[3].broker_us, Some(500.0));

        let mut settings = settings(&clients, vec![Scenario::Publish, Scenario::Rpc], Some(4242));
        settings.load.1 = Some(0.7);
        let md = render_markdown(&settings, &rows);
        assert!(
            md.contains("| broker CPU µs/msg | broker CPU % core |"),
            "{md}"
        );
        assert!(md.contains("| % of ceiling |"), "{md}");
        assert!(md.contains("Broker RabbitMQ 4.0.0 (pid 4242, CPU measured); 2 CPUs"));
        assert!(md.contains("| publish | 100 B | 1 000 | ours | 5 000 | 5 000–5 000 | 100 | 300 | 150 % | 3 % | 1.0 |  |  | 2.00× | 50 % | 1/1 |"), "{md}");
        assert!(md.contains("| publish | 100 B | 1 000 | ceiling | 10 000 | 10 000–10 000 | 50.0 | 150 | 150 % | 2 % | 0.5 |  |  |  |  | 1/1 |"), "{md}");
        assert!(md.contains("- ceiling: a reference, not a competitor"));
        let text = render_text(&settings, &rows);
        assert!(text.contains("ceiling: reference client"));
        assert!(text
            .lines()
            .any(|l| l.starts_with("publish") && l.contains("ours") && l.contains("50 %")));
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
        let settings = settings(
            &[ClientKind::Ours, ClientKind::Lapin],
            vec![Scenario::Rpc],
            None,
        );
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
        assert!(md.contains("| rpc | 100 B | 1 000 | lapin | 1 000 | 1 000–1 000 | 500 |  |  |  | 2.0 | 1000 | 2000 | 0.50× |  | 1/1 |"));
        assert!(!md.contains("- ceiling:"));
        assert!(!md.contains("Failed runs"));
        assert_eq!(size_label(1 << 20), "1 MiB");
        assert_eq!(size_label(4096), "4 KiB");
        assert_eq!(size_label(100), "100 B");
    }
}
