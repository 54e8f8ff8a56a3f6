//! Seeds for the PRISEM tools' targets, written with the tools' own encoders and sample data
//! (documentation address ranges, `.example` names), so the fuzzer starts from well-formed
//! input of every shape.

use chrono::{FixedOffset, NaiveDate, TimeZone, Utc};
use prisem_tools::addr::synth;
use prisem_tools::backbone::token::{Claims, Signer};
use prisem_tools::dimslog::{FullLine, Level, LogLine, Timestamp};
use prisem_tools::flows::Flow;
use prisem_tools::rpc::{AppData, Envelope, Reply};
use prisem_tools::syslog::parse::{to_outgoing, Received, RoutingRule, Transport};

use crate::seeds::Seed;

fn seed(target: &'static str, name: &'static str, bytes: impl Into<Vec<u8>>) -> Seed {
    Seed {
        target,
        name,
        bytes: bytes.into(),
    }
}

fn with_selector(selector: u8, rest: &[u8]) -> Vec<u8> {
    [&[selector][..], rest].concat()
}

const RFC3164: &str =
    "<38>Mar  4 12:00:01 gw sshd[4711]: Failed password for root from 203.0.113.5 port 4711 ssh2";
const RFC5424: &str = "<165>1 2026-03-04T12:00:01.123456+01:00 mail.example evntslog 8710 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"][origin ip=\"192.0.2.10\"] An application event";
const LOCAL: &str =
    "<86>Mar  4 12:00:02 sshd-session[99]: Invalid user admin from 2001:db8::7 port 50022";

fn syslog_seeds(out: &mut Vec<Seed>) {
    let lines = [RFC3164, RFC5424, LOCAL];
    let mut counted = Vec::new();
    for l in lines {
        counted.extend_from_slice(format!("{} {l}", l.len()).as_bytes());
    }
    out.push(seed(
        "syslog_framing",
        "octet-counted",
        with_selector(0x80, &[&[3u8][..], &counted].concat()),
    ));
    let lf = lines.join("\n") + "\n";
    out.push(seed(
        "syslog_framing",
        "lf",
        [&[0xc0u8, 0][..], lf.as_bytes()].concat(),
    ));
    let mixed = format!("{}\r\n{} {}\0{}", RFC3164, RFC5424.len(), RFC5424, LOCAL);
    out.push(seed(
        "syslog_framing",
        "mixed-tiny-max",
        [&[0x1fu8, 1][..], mixed.as_bytes()].concat(),
    ));

    out.push(seed(
        "syslog_parse",
        "rfc3164-udp",
        with_selector(0, RFC3164.as_bytes()),
    ));
    out.push(seed(
        "syslog_parse",
        "rfc5424-tcp-template",
        with_selector(9, RFC5424.as_bytes()),
    ));
    out.push(seed(
        "syslog_parse",
        "local-unix",
        with_selector(2, LOCAL.as_bytes()),
    ));
    out.push(seed(
        "syslog_parse",
        "iso-without-zone",
        with_selector(
            0,
            b"<38>2026-12-05T01:32:00.25 gw prg00000[1234]: seq: 0000000007, thread: 0000",
        ),
    ));
    out.push(seed(
        "syslog_parse",
        "unparsed",
        with_selector(4, b"no header at all \xff\xfe"),
    ));

    let mut spooled = with_selector(0, &[]);
    for (i, l) in lines.iter().enumerate() {
        spooled.push(i as u8 * 3);
        spooled.extend_from_slice(l.as_bytes());
        spooled.push(b'\n');
    }
    out.push(seed("syslog_spool", "lines", spooled));
    // RFC 3164 times are read in local time: only zone-independent lines in the segment.
    let segment = segment(&[RFC5424, "no header \"quoted\" \\ at all"]);
    out.push(seed("syslog_spool", "segment", with_selector(1, &segment)));
}

/// A spool segment as the bridge writes it, for `lines`.
fn segment(lines: &[&str]) -> Vec<u8> {
    let Some(received_at) = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).single() else {
        return Vec::new();
    };
    let rule = RoutingRule {
        template: None,
        aliases: Vec::new(),
        local_host: "loghost".into(),
    };
    let msgs: Vec<_> = lines
        .iter()
        .map(|l| {
            let rec = Received {
                raw: l.as_bytes().to_vec(),
                peer: "192.0.2.10:514".into(),
                transport: Transport::Tcp,
                received_at,
                truncated: false,
            };
            to_outgoing(&rec, &rule)
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("prisem-fuzz-seeds-{}", std::process::id()));
    let written = super::syslog::spool_save(&dir, &msgs)
        .ok()
        .and_then(|()| std::fs::read(dir.join("spool-00000000000000000001.seg")).ok())
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    written
}

const GUID: &str = "7f3c2a10-5b4e-4c1d-9a8b-0123456789ab";

fn dimslog_seeds(out: &mut Vec<Seed>) {
    let zoned = FixedOffset::west_opt(8 * 3600)
        .and_then(|z| z.with_ymd_and_hms(2014, 11, 5, 17, 1, 53).single());
    let Some(zoned) = zoned else { return };
    let full = LogLine::Full(FullLine {
        timestamp: Timestamp::Zoned(zoned),
        host: "dims.example".into(),
        guid: GUID.into(),
        component: "anon_server".into(),
        submodule: None,
        pid: None,
        level: Level::Warning,
        message: "request from 192.0.2.7 took 3.2 s".into(),
    });
    out.push(seed("dimslog_line", "full", full.to_string()));
    let naive =
        NaiveDate::from_ymd_opt(2014, 1, 3).and_then(|d| d.and_hms_micro_opt(23, 22, 13, 994_000));
    if let Some(naive) = naive {
        let client = LogLine::Full(FullLine {
            timestamp: Timestamp::Naive(naive),
            host: "client.example".into(),
            guid: GUID.into(),
            component: "logmon".into(),
            submodule: Some("amqp".into()),
            pid: Some("4242".into()),
            level: Level::Debug,
            message: String::new(),
        });
        out.push(seed("dimslog_line", "client-shape", client.to_string()));
    }
    let bare = LogLine::Bare {
        guid: GUID.into(),
        message: "started".into(),
    };
    out.push(seed("dimslog_line", "bare", bare.to_string() + "\n"));
    out.push(seed("dimslog_line", "raw", "free text without a shape"));
}

fn envelope(appdata: AppData) -> Vec<u8> {
    Envelope {
        appdata,
        hostname: "dims.localdomain".into(),
        name: "anon".into(),
        pid: 4242,
        pika_version: "amqp-client 0.1.0".into(),
        platform: "Linux-6.1.0-x86_64".into(),
        protocolver: "0.5.5".into(),
        release: "0.1.0".into(),
        time: 1_700_000_000,
    }
    .to_json()
}

fn rpc_seeds(out: &mut Vec<Seed>) {
    let request = AppData::new()
        .with_file("file", b"Jan  1 host sshd[7]: from 192.0.2.7 port 22\n")
        .with_flag("stats", true)
        .with("stime", "1388790133")
        .with("etime", 1_388_876_533)
        .with("searchitems", "192.0.2.7,bad.example");
    out.push(seed("rpc_envelope", "request", envelope(request)));
    out.push(seed(
        "rpc_envelope",
        "reply",
        envelope(Reply::ok(&b"done\n"[..]).to_appdata()),
    ));
    out.push(seed(
        "rpc_envelope",
        "error-reply",
        envelope(Reply::error(2, "no such file").to_appdata()),
    ));
    out.push(seed("rpc_envelope", "old-peer", &br#"{"appdata":{"retcode":"0","stdout":"ZG9u\nZQo=","stderr":""},"protocolver":"0.5","pid":"12","time":1.4e9}"#[..]));
}

const NETMAP_TEXT: &str = "# sites\n192.0.2.0/24|SEA|CTYSEA\n192.0.2.128/25|SEA-DC|dc  # the data centre\n2001:db8:1::/48|SEA\n198.51.100.7|ARIN|arin\n.corp.example|CORP|corp\nexact.example|EXACT|e\nbroken line\n192.0.2.0/24|SEA2|again\n";
const NETMAP_YAML: &str = "sites:\n  CTYSEA:\n    cidr: [192.0.2.0/24, \"2001:db8:1::/48\"]\n    domain: [.seattle.example, city.example]\n  ARIN:\n    anon: arin\n    cidr: 198.51.100.0/24\n  7:\n    domain: seven.example\n";

fn addr_seeds(out: &mut Vec<Seed>) {
    out.push(seed("netmap", "text", NETMAP_TEXT));
    out.push(seed("netmap", "yaml", NETMAP_YAML));
    let log = synth::syslog(1500, 1);
    out.push(seed("addr_scan", "syslog", with_selector(0, &log)));
    out.push(seed(
        "addr_scan",
        "syslog-own-map-pseudonyms",
        with_selector(7, &synth::syslog(800, 2)),
    ));
    let tricky = "1.2.3.4.5 a1.2.3.4 01.2.3.4 192.0.2.1-192.0.2.9 [2001:db8::1]:22 fe80::1%eth0 \
                  ::ffff:192.0.2.1 192.0.2.0/24 192.0.2.0/33 2001:db8::/129 www.corp.example. sshd.service\n\
                  openssh 7.4.1.2.3 dead::beef :: 198.51.100.7:514 exact.EXAMPLE ::ffff:203.0.113.9/120\n";
    out.push(seed(
        "addr_scan",
        "edge-cases",
        with_selector(5, tricky.as_bytes()),
    ));
}

fn record_json(indicator: &str, kind: &str, first: i64, last: i64) -> String {
    serde_json::json!({
        "indicator": indicator,
        "type": kind,
        "confidence": 85,
        "first_seen": first,
        "last_seen": last,
        "source": "feed.example",
        "description": "scanner",
    })
    .to_string()
}

fn feed_seeds(out: &mut Vec<Seed>) {
    let jsonl = [
        record_json("192.0.2.7", "ipv4", 1_388_790_133, 1_388_876_533),
        record_json("2001:db8::7", "ipv6", 1_388_790_133, 1_388_790_133),
        record_json("198.51.100.0/24", "cidr", 0, 2_000_000_000),
        record_json("bad.example", "domain", 1_400_000_000, 1_500_000_000),
        record_json("http://www.bad.example/x?y=1", "url", 1, 2),
        record_json("d41d8cd98f00b204e9800998ecf8427e", "md5", 5, 5),
        r#"{"indicator":"203.0.113.9","first_seen":"2014-01-03","last_seen":"2014-01-03T23:22:13Z"}"#.to_owned(),
        "# comment".to_owned(),
        "not json".to_owned(),
    ]
    .join("\n");
    out.push(seed(
        "intel_feed",
        "jsonl",
        with_selector(0, jsonl.as_bytes()),
    ));
    let csv = "indicator,type,confidence,first_seen,last_seen,source,description\n\
               192.0.2.7,ipv4,90,1388790133,1388876533,feed.example,scanner\n\
               evil.example,,50,2014-01-03 23:22:13,,feed.example,\"phishing, mostly\"\n\
               # a comment\n\
               2001:db8::/32,cidr,,,,feed.example,documentation\n\
               bad row\n";
    out.push(seed("intel_feed", "csv", with_selector(1, csv.as_bytes())));
}

fn flow_seeds(out: &mut Vec<Seed>) {
    let flows = [
        Flow {
            sip: [192, 0, 2, 7].into(),
            dip: [198, 51, 100, 1].into(),
            sport: 51_000,
            dport: 22,
            proto: 6,
            packets: 12,
            bytes: 3_400,
            flags: "FSPA".into(),
            stime_ms: 1_388_791_333_994,
            dur_ms: 1_250,
        },
        Flow {
            sip: "2001:db8::7".parse().unwrap_or([0u16; 8].into()),
            dip: "2001:db8::1".parse().unwrap_or([0u16; 8].into()),
            sport: 53,
            dport: 40_000,
            proto: 17,
            packets: 1,
            bytes: 120,
            flags: String::new(),
            stime_ms: 1_388_790_133_000,
            dur_ms: 0,
        },
    ];
    let rwcut = super::feeds::rwcut(&flows.iter().collect::<Vec<_>>());
    out.push(seed("flow_records", "rwcut", rwcut));
    let nfdump = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt\n\
                  2014-01-03 23:22:13.994,2014-01-03 23:22:15.244,1.250,192.0.2.7,198.51.100.1,51000,22,TCP,.AP.SF,0,0,12,3400\n\
                  2014-01-03 23:02:13.000,2014-01-03 23:02:13.000,0.000,2001:db8::7,2001:db8::1,53,40000,UDP,........,0,0,1,120\n\
                  Summary\n\
                  flows,bytes,packets\n";
    out.push(seed("flow_records", "nfdump", nfdump));
}

fn sshd_seeds(out: &mut Vec<Seed>) {
    for (name, line) in [
        ("failed-password", "Failed password for root from 203.0.113.5 port 4711 ssh2"),
        ("invalid-user", "Invalid user admin from 2001:db8::7 port 50022 [preauth]"),
        ("failed-invalid", "Failed password for invalid user from 192.0.2.1 port 22 from 203.0.113.9 port 23 ssh2"),
        ("keyboard", "error: Failed keyboard-interactive/pam for bob from ::ffff:198.51.100.4 port 22 ssh2"),
        ("max-attempts", "error: maximum authentication attempts exceeded for root from 192.0.2.44 port 2222 ssh2 [preauth]"),
        ("not-allowed", "User eve from 198.51.100.77 not allowed because not listed in AllowUsers"),
        ("zone", "Failed password for root from fe80::1%eth0 port 22 ssh2"),
    ] {
        out.push(seed("sshd_line", name, line));
    }
}

fn backbone_seeds(out: &mut Vec<Seed>) {
    let parts: [(&'static str, u8, &str); 9] = [
        (
            "new-client",
            0,
            r#"{"client_id":"site-a.sea","client_name":"Seattle city","subscription":"alerts.#"}"#,
        ),
        (
            "client-change",
            1,
            r#"{"client_name":"Seattle","subscription":"*.sea"}"#,
        ),
        (
            "send",
            2,
            r#"{"topic":"alerts.sea","message":{"ip":"192.0.2.7"}}"#,
        ),
        (
            "send-destination",
            2,
            r#"{"message":{"header":{"destination":"alerts.all"},"body":[1,2]}}"#,
        ),
        ("notify", 3, r#"{"message":"hello"}"#),
        ("token-query", 4, "client_id=site-a&secret=s3cr%20et"),
        ("receive-query", 5, "max_messages=25"),
        ("authorization", 6, "Bearer abc.def "),
        (
            "claims",
            7,
            r#"{"sub":"site-a","exp":1800000000,"gen":"2026-01-01T00:00:00.000Z"}"#,
        ),
    ];
    for (name, selector, input) in parts {
        out.push(seed(
            "backbone_api",
            name,
            with_selector(selector, input.as_bytes()),
        ));
    }
    let token = Signer::new(b"fuzz key one").sign(&Claims {
        sub: "site-a".into(),
        exp: 1_800_000_000,
        gen: "2026-01-01T00:00:00.000Z".into(),
    });
    out.push(seed(
        "backbone_api",
        "token",
        with_selector(7, token.as_bytes()),
    ));
}

/// Every seed of the PRISEM tools' targets.
pub fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    syslog_seeds(&mut out);
    dimslog_seeds(&mut out);
    rpc_seeds(&mut out);
    addr_seeds(&mut out);
    feed_seeds(&mut out);
    flow_seeds(&mut out);
    sshd_seeds(&mut out);
    backbone_seeds(&mut out);
    out
}
