//! The anon service on a 100 MiB request: it completes, keeps the text's length, and the
//! process's peak memory stays within a few times the data's size. Alone in its own test binary
//! so the peak it reads from /proc is its own.

use prisem_tools::addr::synth;
use prisem_tools::rpc::AppData;
use prisem_tools::services::anon::Anon;

const SIZE: usize = 100 << 20;

/// The process's peak resident set, in bytes (Linux `VmHWM`).
fn peak_rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_100_mib_request_stays_within_a_few_times_its_size() {
    // 1 MiB of syslog text, repeated; the request holds it as base64, as it arrives.
    let block = synth::syslog(1 << 20, 7);
    let mut data = Vec::with_capacity(SIZE + block.len());
    while data.len() < SIZE {
        data.extend_from_slice(&block);
    }
    let size = data.len();
    let request = AppData::new()
        .with_file("data", &data)
        .with_file(
            "netmap",
            b"192.0.2.0/24|SEA|CTYSEA\n2001:db8:3::/48|V6|six\n.corp.example|CORP|corp\n",
        )
        .with_flag("stats", true);
    drop(data);

    let reply = Anon::new().process(request).unwrap();
    assert_eq!(reply.retcode, 0);
    let stats_at = reply
        .stdout
        .windows(18)
        .rposition(|w| w == b"\nSite/host counts\n")
        .expect("stats block");
    // The text keeps its length; the stats block follows the blank line.
    assert_eq!(stats_at, size);
    let stats = String::from_utf8_lossy(&reply.stdout[stats_at..]);
    assert!(stats.contains("SEA: 256 ("), "{stats}");
    assert!(stats.contains("CORP: 2 ("), "{stats}");
    let head = String::from_utf8_lossy(&reply.stdout[..4096]);
    assert!(
        !head.contains("192.0.2."),
        "mapped addresses left in {head}"
    );

    if let Some(peak) = peak_rss() {
        // Request (base64, 4/3 × size) + decoded data + rewritten text ≈ 3.4 × size at worst.
        assert!(
            peak < 5 * size,
            "peak RSS {} MiB for {} MiB of data",
            peak >> 20,
            size >> 20
        );
        eprintln!("peak RSS {} MiB for {} MiB of data", peak >> 20, size >> 20);
    }
}
