//! The sample data in prisem-tools/data/ through the address engine and the services: the two
//! map forms agree, the report is rewritten in place, and the counts are what the report holds.

use prisem_tools::addr::{rewrite, scan, NetMap};
use prisem_tools::rpc::AppData;
use prisem_tools::services::anon::Anon;
use prisem_tools::services::crosscor::Crosscor;

const NETMAP_TXT: &[u8] = include_bytes!("../data/netmap.txt");
const NETMAP_YML: &[u8] = include_bytes!("../data/netmap.yml");
const REPORT: &[u8] = include_bytes!("../data/report.txt");

#[test]
fn both_maps_load_cleanly_and_agree_on_the_report() {
    let txt = NetMap::parse(NETMAP_TXT).unwrap();
    let yml = NetMap::parse(NETMAP_YML).unwrap();
    assert_eq!(txt.warnings, []);
    assert_eq!(yml.warnings, []);
    let mut mapped = 0;
    for m in scan(REPORT) {
        let a = txt.map.lookup_match(&m, REPORT).map(|e| (&e.site, &e.anon));
        let b = yml.map.lookup_match(&m, REPORT).map(|e| (&e.site, &e.anon));
        assert_eq!(a, b, "{} on line {}", m.as_str(REPORT), m.line);
        mapped += usize::from(a.is_some());
    }
    assert!(mapped > 20, "{mapped}");
}

#[test]
fn the_report_is_rewritten_in_place() {
    let map = NetMap::parse(NETMAP_TXT).unwrap().map;
    let out = String::from_utf8(rewrite(REPORT, &map, None).text).unwrap();
    assert_eq!(out.len(), REPORT.len());
    assert!(
        out.contains("  - [_CTYSEA_]      [_______CTYSEA______]   sshd, login accepted"),
        "{out}"
    );
    // The nested /26 wins over the city's /24.
    assert!(
        out.contains("  - [___port__]     [__________CTYSEA_________] (port authority"),
        "{out}"
    );
    assert!(
        out.contains("  - [_____uwmed____]  [_____uwmed_____]\n"),
        "{out}"
    );
    assert!(out.contains("from 203.0.113.200 port 52144"));
    assert!(out.contains("client ::ffff:203.0.113.200#53125"));
    assert!(out.contains("openssh 7.4.1.2.3"));
    assert!(out.contains("firewalls: 203.0.113.128/25."));
    assert!(out.contains("county block [_____kc_____] was"));
    assert!(
        out.contains("IPv6 range ([_____uwmed_____]) and probing [______partner_____] on port 25")
    );
    assert!(out.contains("<ops@[______partner_____]>"), "{out}");
    assert!(out.contains("www.partner.example"));
    for hidden in [
        "192.0.2.",
        "198.51.100.",
        "2001:db8:200:",
        "seattle.example",
        "uwmed.example",
    ] {
        assert!(!out.contains(hidden), "{hidden} left in the output");
    }
}

#[test]
fn anon_stats_count_distinct_hosts() {
    let request = AppData::new()
        .with_file("data", REPORT)
        .with_file("netmap", NETMAP_TXT)
        .with_flag("stats", true);
    let reply = Anon::new().process(request).unwrap();
    assert_eq!((reply.retcode, reply.stderr.as_slice()), (0, &b""[..]));
    let text = String::from_utf8(reply.stdout).unwrap();
    let stats = &text[REPORT.len()..];
    assert_eq!(
        stats,
        "\nSite/host counts\nCTYSEA: 5 (38.46%)\nUWMED: 5 (38.46%)\nKCNET: 1 (7.69%)\n\
         PARTNER: 1 (7.69%)\nSEAPORT: 1 (7.69%)\nAll_Sites: 13 (100.00%)\n"
    );
}

#[test]
fn crosscor_on_the_report() {
    let request = AppData::new()
        .with_file("data", REPORT)
        .with_file("netmap", NETMAP_YML)
        .with("iff", "foe");
    let reply = Crosscor.process_at(request, 1_391_323_200).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&reply.stdout).unwrap();
    assert_eq!(v["date"], "Sun, 02 Feb 2014 06:40:00 +0000");
    assert_eq!(
        v["nonmatching"],
        serde_json::json!([
            {"ip4": "203.0.113.200", "site": "UNKNOWN"},
            {"ip6": "2001:db8:9::44", "site": "UNKNOWN"}
        ])
    );
    let rendered = prisem_tools::cumdist::render(&reply.stdout).unwrap();
    assert_eq!(
        rendered,
        "UWMED 3 42.86 42.86\nCTYSEA 2 28.57 71.43\nKCNET 1 14.29 85.71\nSEAPORT 1 14.29 100.00\n\
         ALLSITES 7 100.00\n"
    );
}
