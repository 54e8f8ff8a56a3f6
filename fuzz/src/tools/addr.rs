//! The address engine: network maps, the scanner and the label rewriter.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use ipnet::IpNet;
use prisem_tools::addr::{
    count_hosts, matches_json, rewrite, scan, Kind, Match, NetMap, Pseudonymizer,
};
use serde_json::Value;

/// A network map file in either form.
///
/// Checks, for the text form, that warnings come in line order; that every line that parses as
/// an entry can be found again: an address or network key by an exact lookup (the entry found
/// comes from that line or a later one giving the same key, with that line's site and
/// AnonString when it is that line), a name by a domain lookup. For the YAML form (and the
/// automatic choice), that parsing and every message do not panic.
pub fn check_netmap(data: &[u8]) {
    match NetMap::parse(data) {
        Ok(loaded) => loaded.warnings.iter().for_each(|w| drop(w.to_string())),
        Err(e) => drop(e.to_string()),
    }
    if let Err(e) = NetMap::parse_yaml(data) {
        drop(e.to_string());
    }
    let loaded = NetMap::parse_text(data);
    let warned: BTreeSet<usize> = loaded.warnings.iter().filter_map(|w| w.line).collect();
    let lines: Vec<Option<usize>> = loaded.warnings.iter().map(|w| w.line).collect();
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "warnings out of line order"
    );
    let map = &loaded.map;
    for (index, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let Ok(text) = std::str::from_utf8(raw) else {
            assert!(
                warned.contains(&line),
                "line {line} is not UTF-8 and was not reported"
            );
            continue;
        };
        let text = text.split('#').next().unwrap_or_default().trim();
        let fields: Vec<&str> = text.split('|').map(str::trim).collect();
        let (key, site, anon) = match fields.as_slice() {
            [k, s] => (*k, *s, *s),
            [k, s, a] => (*k, *s, *a),
            _ => continue,
        };
        if site.is_empty() || anon.is_empty() || !anon.bytes().all(|b| b.is_ascii_graphic()) {
            continue;
        }
        let found = if key.contains('/') {
            match key.parse::<IpNet>() {
                Ok(net) => map.lookup_net(net.trunc()),
                Err(_) => continue,
            }
        } else if let Ok(ip) = key.parse::<IpAddr>() {
            map.lookup_ip(ip)
        } else {
            let name = key.strip_prefix('.').unwrap_or(key);
            if warned.contains(&line) && !warned_duplicate(&loaded.warnings, line) {
                continue; // not a valid name
            }
            let entry = map.lookup_domain(name);
            assert!(entry.is_some(), "line {line}: name {name:?} not found");
            continue;
        };
        let Some(entry) = found else {
            panic!("line {line}: key {key:?} not found");
        };
        let from = entry.line.unwrap_or(0);
        assert!(
            from >= line,
            "line {line}: key {key:?} found from earlier line {from}"
        );
        if from == line {
            assert_eq!((entry.site.as_str(), entry.anon.as_str()), (site, anon));
        }
    }
}

fn warned_duplicate(warnings: &[prisem_tools::addr::Warning], line: usize) -> bool {
    warnings
        .iter()
        .any(|w| w.line == Some(line) && w.message.contains("already mapped"))
}

/// The map every `addr_scan` input is rewritten with (besides the one made from its matches).
fn sample_map() -> &'static NetMap {
    static MAP: OnceLock<NetMap> = OnceLock::new();
    MAP.get_or_init(|| {
        NetMap::parse_text(
            b"192.0.2.0/24|SEA|CTYSEA\n\
              192.0.2.128/25|SEA-DC|dc\n\
              198.51.100.7|ARIN|arin\n\
              2001:db8::/32|V6|v6-site-with-a-long-anon-string\n\
              ::ffff:203.0.113.0/120|MAPPED|m\n\
              .corp.example|CORP|corp\n\
              exact.example|EXACT|e\n",
        )
        .map
    })
}

fn pseudonymizer() -> &'static Pseudonymizer {
    static P: OnceLock<Pseudonymizer> = OnceLock::new();
    P.get_or_init(|| Pseudonymizer::new(&[7; 32]))
}

/// Whether `name` is a DNS name as the scanner documents it.
fn is_domain(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    let tld = labels.last().copied().unwrap_or_default();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && (2..=63).contains(&tld.len())
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Checks one scanner match against its text.
fn check_match(m: &Match, text: &[u8]) {
    assert!(
        m.start < m.end && m.end <= text.len(),
        "match out of bounds: {m:?}"
    );
    assert!(m.len() >= 3, "match shorter than 3 octets: {m:?}");
    let found = m.text(text);
    assert!(found.is_ascii(), "non-ASCII match {m:?}");
    let s = m.as_str(text);
    let lines = 1 + text[..m.start].iter().filter(|&&b| b == b'\n').count();
    assert_eq!(m.line, lines, "wrong line for {s:?}");
    match m.kind {
        Kind::Ipv4 => {
            assert_eq!(
                s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
                m.ip,
                "{s:?} as ipv4"
            );
            assert_eq!(m.prefix, 32);
        }
        Kind::Ipv6 => {
            assert_eq!(
                s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
                m.ip,
                "{s:?} as ipv6"
            );
            assert_eq!(m.prefix, 128);
        }
        Kind::Cidr4 | Kind::Cidr6 => {
            let (addr, len) = s
                .split_once('/')
                .unwrap_or_else(|| panic!("{s:?} has no '/'"));
            let ip: Option<IpAddr> = match m.kind {
                Kind::Cidr4 => addr.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
                _ => addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            };
            assert_eq!(ip, m.ip, "{s:?} address");
            assert_eq!(len.parse::<u8>().ok(), Some(m.prefix), "{s:?} prefix");
            assert!(
                !len.starts_with('0') || len == "0",
                "{s:?} prefix with a leading zero"
            );
            assert!(s.parse::<IpNet>().is_ok(), "{s:?} is no CIDR block");
            assert!(m.net().is_some());
        }
        Kind::Domain => {
            assert!(m.ip.is_none());
            assert!(is_domain(s), "{s:?} is not a domain name");
            assert!(
                s.parse::<IpAddr>().is_err(),
                "address {s:?} taken as a domain"
            );
        }
        _ => {}
    }
}

/// Text to scan and rewrite: octet 0 bit 0 adds a map made from the text's own matches (so
/// every match is mapped), bit 1 a pseudonymizer; the rest is the text.
///
/// Checks that the scanner's matches are in order, never overlap, lie inside the text, are
/// ASCII, carry the right line number and parse as what they claim to be (the address or
/// network they report; a domain is a valid name and no address); that the label rewrite keeps
/// the text's length and every byte outside a mapped match, and labels every mapped match; that
/// host counts agree between `rewrite` and `count_hosts`; that the JSON form is valid JSON
/// listing every match; and that the pseudonym rewrite keeps the line count.
pub fn check_addr_scan(data: &[u8]) {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let matches: Vec<Match> = scan(text).collect();
    let mut previous_end = 0;
    for m in &matches {
        assert!(
            m.start >= previous_end,
            "overlapping or unordered matches: {m:?}"
        );
        previous_end = m.end;
        check_match(m, text);
    }
    let own;
    let map = if selector & 1 == 1 {
        let mut lines = Vec::new();
        for (i, m) in matches.iter().enumerate() {
            lines.extend_from_slice(m.text(text));
            lines.extend_from_slice(format!("|S{}|a{}\n", i % 5, i % 7).as_bytes());
        }
        own = NetMap::parse_text(&lines).map;
        &own
    } else {
        sample_map()
    };
    let out = rewrite(text, map, None);
    assert_eq!(
        out.text.len(),
        text.len(),
        "label rewrite changed the length"
    );
    let mut at = 0;
    for m in &matches {
        let mapped = map.lookup_match(m, text).is_some();
        if selector & 1 == 1 {
            assert!(
                mapped,
                "match {:?} of the map made from it is unmapped",
                m.as_str(text)
            );
        }
        assert_eq!(
            out.text[at..m.start],
            text[at..m.start],
            "unmapped text changed"
        );
        let span = &out.text[m.start..m.end];
        if mapped {
            assert!(
                span.first() == Some(&b'[') && span.last() == Some(&b']'),
                "bad label"
            );
        } else {
            assert_eq!(span, &text[m.start..m.end], "unmapped match changed");
        }
        at = m.end;
    }
    assert_eq!(
        out.text[at..],
        text[at..],
        "text after the last match changed"
    );
    let counted = count_hosts(text, map);
    assert_eq!(counted.total(), out.hosts.total());
    let _ = counted.render();
    let json = matches_json(text, map, selector & 4 != 0);
    let value: Value = match serde_json::from_slice(&json) {
        Ok(v) => v,
        Err(e) => panic!("matches JSON does not parse: {e}"),
    };
    let listed = value.get("matches").and_then(Value::as_array).map(Vec::len);
    assert_eq!(listed, Some(matches.len()));
    if selector & 2 != 0 {
        let pseudo = rewrite(text, map, Some(pseudonymizer()));
        let newlines = |t: &[u8]| t.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(
            newlines(&pseudo.text),
            newlines(text),
            "pseudonyms changed the lines"
        );
    }
}
