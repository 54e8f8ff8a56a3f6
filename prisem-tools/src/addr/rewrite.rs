//! Rewriting mapped addresses into length-preserving labels, counting hosts per site, and the
//! JSON form of the matches.
//!
//! # The label rule
//!
//! A match of `w` bytes mapped to AnonString `s` becomes
//! `[` + `_`×⌈p/2⌉ + `s` + `_`×⌊p/2⌋ + `]` with `p = w − 2 − len(s)`: with `arin`,
//! `50.97.148.210` → `[____arin___]`. When the label cannot fit (`p < 0`) the AnonString is
//! truncated to `w − 2` bytes (`1.2.3.4` with `CTYSEA` → `[CTYSE]`), so the text keeps its length
//! byte for byte; every match is at least 3 bytes (`::1`), so `[` and `]` always fit.
//!
//! What is rewritten: addresses inside a mapped network, CIDR blocks whose whole network lies
//! inside a mapped one (`192.0.2.0/25` under `192.0.2.0/24`: the whole `a.b.c.d/n` text is
//! replaced; `192.0.0.0/16` is not), and names inside mapped domains. Everything else is copied
//! unchanged, including bytes that are not UTF-8.
//!
//! With a [`Pseudonymizer`], unmapped addresses are replaced by their pseudonyms
//! (`198.51.100.7` → e.g. `93.17.210.44`) and unmapped CIDR blocks by the pseudonym of their
//! network, cut to the same prefix length. Pseudonyms do **not** keep the text's length.
//!
//! # Host counts
//!
//! A host is a mapped address (IPv4-mapped IPv6 counts as its IPv4 address) or a mapped name
//! (case-insensitive), counted once per site however often it appears. CIDR blocks are not
//! hosts. Sites are listed by descending count, then by name.
//!
//! # JSON
//!
//! [`matches_json`] writes one line:
//! `{"matches":[{"text":"192.0.2.7","kind":"ipv4","site":"SEA","line":3,"start":57,"end":66}, …]}`
//! — every match in text order, `kind` as in [`Kind::as_str`], `site` `null` when unmapped,
//! `line` 1-based, `start`/`end` byte offsets. With host counts it adds
//! `"stats":[{"site":"SEA","count":2,"percent":"66.67"}, …, {"site":"All_Sites","count":3,"percent":"100.00"}]`.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::netmap::{Entry, NetMap};
use super::pseudonym::Pseudonymizer;
use super::scan::{scan, Kind, Match};

/// Appends the label that replaces `width` bytes, for AnonString `anon` (see the module docs).
pub fn push_label(out: &mut Vec<u8>, width: usize, anon: &[u8]) {
    if width < 2 {
        out.extend(std::iter::repeat_n(b'_', width));
        return;
    }
    let room = width - 2;
    out.push(b'[');
    if anon.len() <= room {
        let p = room - anon.len();
        out.extend(std::iter::repeat_n(b'_', p.div_ceil(2)));
        out.extend_from_slice(anon);
        out.extend(std::iter::repeat_n(b'_', p / 2));
    } else {
        out.extend_from_slice(anon.get(..room).unwrap_or(anon));
    }
    out.push(b']');
}

/// The label that replaces `width` bytes, for AnonString `anon`.
pub fn label(width: usize, anon: &str) -> String {
    let mut out = Vec::with_capacity(width);
    push_label(&mut out, width, anon.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// A distinct host: an address or a lower-cased name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Host {
    Ip(IpAddr),
    Name(Box<str>),
}

/// Distinct hosts per site.
#[derive(Debug, Clone, Default)]
pub struct HostCounts<'m> {
    sites: HashMap<&'m str, HashSet<Host>>,
}

/// One site's line in the statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteCount<'m> {
    /// The site id.
    pub site: &'m str,
    /// Its distinct hosts.
    pub count: usize,
    /// Its share of all mapped hosts, two decimals (`"66.67"`).
    pub percent: String,
}

/// `part / total` as a percentage with two decimals (`0.00` when `total` is 0).
pub fn percent(part: usize, total: usize) -> String {
    if total == 0 {
        return "0.00".to_owned();
    }
    format!("{:.2}", part as f64 * 100.0 / total as f64)
}

impl<'m> HostCounts<'m> {
    /// No hosts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts the host of match `m` (found in `haystack`) for `site`; CIDR blocks are ignored.
    pub fn add(&mut self, site: &'m str, m: &Match, haystack: &[u8]) {
        let host = match (m.kind, m.ip) {
            (Kind::Ipv4 | Kind::Ipv6, Some(ip)) => Host::Ip(ip.to_canonical()),
            (Kind::Domain, _) => Host::Name(m.as_str(haystack).to_ascii_lowercase().into()),
            _ => return,
        };
        self.sites.entry(site).or_default().insert(host);
    }

    /// All distinct mapped hosts (each host belongs to one site).
    pub fn total(&self) -> usize {
        self.sites.values().map(HashSet::len).sum()
    }

    /// The sites by descending count, then name, with their share of the total.
    pub fn by_site(&self) -> Vec<SiteCount<'m>> {
        let total = self.total();
        let mut counts: Vec<(&'m str, usize)> = self
            .sites
            .iter()
            .map(|(site, hosts)| (*site, hosts.len()))
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        counts
            .into_iter()
            .map(|(site, count)| SiteCount {
                site,
                count,
                percent: percent(count, total),
            })
            .collect()
    }

    /// The text block anon's `stats` appends (after a blank line the caller writes):
    /// `Site/host counts`, `SITE: n (pp.pp%)` per site, `All_Sites: n (100.00%)`.
    pub fn render(&self) -> String {
        let mut out = String::from("Site/host counts\n");
        for s in self.by_site() {
            out.push_str(&format!("{}: {} ({}%)\n", s.site, s.count, s.percent));
        }
        out.push_str(&format!("All_Sites: {} (100.00%)\n", self.total()));
        out
    }

    /// The JSON form of the statistics, `All_Sites` last.
    fn json_rows(&self) -> Vec<SiteCount<'m>> {
        let mut rows = self.by_site();
        rows.push(SiteCount {
            site: "All_Sites",
            count: self.total(),
            percent: "100.00".to_owned(),
        });
        rows
    }
}

/// The result of [`rewrite`].
#[derive(Debug, Clone)]
pub struct Rewritten<'m> {
    /// The rewritten text.
    pub text: Vec<u8>,
    /// The distinct mapped hosts per site.
    pub hosts: HostCounts<'m>,
}

/// Rewrites every mapped match of `text` into its label (and, with `pseudo`, every unmapped
/// address into its pseudonym), counting the mapped hosts. One pass; the output is allocated
/// once at the input's size.
pub fn rewrite<'m>(text: &[u8], map: &'m NetMap, pseudo: Option<&Pseudonymizer>) -> Rewritten<'m> {
    let mut out = Vec::with_capacity(text.len());
    let mut hosts = HostCounts::new();
    let mut copied = 0;
    let mut cache: HashMap<IpAddr, IpAddr> = HashMap::new();
    let replace = |out: &mut Vec<u8>, copied: &mut usize, m: &Match, with: &[u8]| {
        out.extend_from_slice(text.get(*copied..m.start).unwrap_or_default());
        out.extend_from_slice(with);
        *copied = m.end;
    };
    let mut scratch = Vec::new();
    for m in scan(text) {
        if let Some(entry) = map.lookup_match(&m, text) {
            hosts.add(&entry.site, &m, text);
            scratch.clear();
            push_label(&mut scratch, m.len(), entry.anon.as_bytes());
            replace(&mut out, &mut copied, &m, &scratch);
        } else if let (Some(p), Some(ip)) = (pseudo, m.ip) {
            let pseudonym = *cache.entry(ip).or_insert_with(|| p.ip(ip));
            let replacement = match m.kind {
                Kind::Cidr4 | Kind::Cidr6 => IpNet::new(pseudonym, m.prefix)
                    .map(|n| n.trunc().to_string())
                    .unwrap_or_else(|_| pseudonym.to_string()),
                _ => pseudonym.to_string(),
            };
            replace(&mut out, &mut copied, &m, replacement.as_bytes());
        }
    }
    out.extend_from_slice(text.get(copied..).unwrap_or_default());
    Rewritten { text: out, hosts }
}

/// Counts the distinct mapped hosts of `text` per site without rewriting it.
pub fn count_hosts<'m>(text: &[u8], map: &'m NetMap) -> HostCounts<'m> {
    let mut hosts = HostCounts::new();
    for m in scan(text) {
        if let Some(entry) = map.lookup_match(&m, text) {
            hosts.add(&entry.site, &m, text);
        }
    }
    hosts
}

#[derive(Serialize)]
struct JsonMatch<'a> {
    text: &'a str,
    kind: &'static str,
    site: Option<&'a str>,
    line: usize,
    start: usize,
    end: usize,
}

/// The matches of `text` as JSON (see the module docs), followed by a newline; with
/// `stats`, the host counts too. Written as it scans: no list of matches is kept.
pub fn matches_json(text: &[u8], map: &NetMap, stats: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + text.len() / 4);
    let mut hosts = HostCounts::new();
    out.extend_from_slice(b"{\"matches\":[");
    for (i, m) in scan(text).enumerate() {
        let entry: Option<&Entry> = map.lookup_match(&m, text);
        if let Some(e) = entry {
            hosts.add(&e.site, &m, text);
        }
        if i > 0 {
            out.push(b',');
        }
        let row = JsonMatch {
            text: m.as_str(text),
            kind: m.kind.as_str(),
            site: entry.map(|e| e.site.as_str()),
            line: m.line,
            start: m.start,
            end: m.end,
        };
        // ok: serializing strings and integers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &row);
    }
    out.push(b']');
    if stats {
        out.extend_from_slice(b",\"stats\":");
        let _ = serde_json::to_writer(&mut out, &hosts.json_rows());
    }
    let _ = out.write_all(b"}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn label_examples_from_the_contract() {
        assert_eq!(label("50.97.148.210".len(), "arin"), "[____arin___]");
        assert_eq!(label("156.74.100.200".len(), "CTYSEA"), "[___CTYSEA___]");
    }

    #[test]
    fn label_fits_every_address_length() {
        // Every length from 1.2.3.4 (7) to a full IPv6 text (39).
        for width in 7..=39 {
            for anon in [
                "a",
                "arin",
                "CTYSEA",
                "ALongerSiteLabel-01",
                "x".repeat(40).as_str(),
            ] {
                let l = label(width, anon);
                assert_eq!(l.len(), width, "{width} {anon}");
                assert!(l.starts_with('[') && l.ends_with(']'));
                let inner = &l[1..width - 1];
                if anon.len() + 2 <= width {
                    let p = width - 2 - anon.len();
                    let lead = inner.len() - inner.trim_start_matches('_').len();
                    let trail = inner.len() - inner.trim_end_matches('_').len();
                    assert_eq!((lead, trail), (p.div_ceil(2), p / 2), "{l}");
                    assert_eq!(&inner[lead..inner.len() - trail], anon);
                } else {
                    assert_eq!(inner, &anon[..width - 2]);
                }
            }
        }
        assert_eq!(label(7, "CTYSEA"), "[CTYSE]");
        assert_eq!(label(8, "CTYSEA"), "[CTYSEA]");
        assert_eq!(label(9, "CTYSEA"), "[_CTYSEA]");
        assert_eq!(label(2, "x"), "[]");
        assert_eq!(label(1, "x"), "_");
    }

    fn map(text: &str) -> NetMap {
        let loaded = NetMap::parse(text.as_bytes()).unwrap();
        assert_eq!(loaded.warnings, []);
        loaded.map
    }

    #[test]
    fn rewrites_mapped_addresses_names_and_blocks() {
        let m = map(
            "50.97.148.0/22|ARIN|arin\n156.74.0.0/16|CTYSEA|CTYSEA\n2001:db8:5::/48|V6|six\n\
            .corp.example|CORP|corp\n192.0.2.0/24|DOC|doc\n",
        );
        let text = b"a 50.97.148.210 b 156.74.100.200 c 198.51.100.1 d 2001:db8:5::1 \
            e www.corp.example f other.example g 192.0.2.0/25 h 192.0.0.0/16 i ::ffff:192.0.2.9\n";
        let r = rewrite(text, &m, None);
        assert_eq!(
            String::from_utf8(r.text).unwrap(),
            "a [____arin___] b [___CTYSEA___] c 198.51.100.1 d [____six____] \
             e [_____corp_____] f other.example g [____doc___] h 192.0.0.0/16 i [______doc_____]\n"
        );
        let counts: Vec<_> = r
            .hosts
            .by_site()
            .into_iter()
            .map(|s| (s.site, s.count))
            .collect();
        assert_eq!(
            counts,
            [
                ("ARIN", 1),
                ("CORP", 1),
                ("CTYSEA", 1),
                ("DOC", 1),
                ("V6", 1)
            ]
        );
    }

    #[test]
    fn hosts_are_counted_once_per_site() {
        let m = map("192.0.2.0/24|SEA|sea\n198.51.100.0/24|ARIN|arin\n.corp.example|SEA|sea\n");
        let text =
            b"192.0.2.1 192.0.2.1 192.0.2.2 ::ffff:192.0.2.1 WWW.corp.example www.corp.example \
            198.51.100.9 198.51.100.9 192.0.2.0/24 203.0.113.5\n";
        let hosts = count_hosts(text, &m);
        // SEA: 192.0.2.1 (also as ::ffff:192.0.2.1), 192.0.2.2, www.corp.example; the CIDR
        // block is not a host and 203.0.113.5 is unmapped.
        assert_eq!(hosts.total(), 4);
        assert_eq!(
            hosts.render(),
            "Site/host counts\nSEA: 3 (75.00%)\nARIN: 1 (25.00%)\nAll_Sites: 4 (100.00%)\n"
        );
        let r = rewrite(text, &m, None);
        assert_eq!(r.hosts.render(), hosts.render());
        assert_eq!(
            HostCounts::new().render(),
            "Site/host counts\nAll_Sites: 0 (100.00%)\n"
        );
    }

    #[test]
    fn ties_are_ordered_by_name() {
        let m = map("192.0.2.0/25|B|b\n192.0.2.128/25|A|a\n198.51.100.0/24|C|c\n");
        let hosts = count_hosts(b"192.0.2.1 192.0.2.200 198.51.100.1 198.51.100.2", &m);
        assert_eq!(
            hosts.render(),
            "Site/host counts\nC: 2 (50.00%)\nA: 1 (25.00%)\nB: 1 (25.00%)\nAll_Sites: 4 (100.00%)\n"
        );
    }

    #[test]
    fn json_of_matches() {
        let m = map("192.0.2.0/24|SEA|sea\n");
        let text = b"x 192.0.2.7\ny 2001:db8::1 z.example\n";
        let out = matches_json(text, &m, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"matches\":[{\"text\":\"192.0.2.7\",\"kind\":\"ipv4\",\"site\":\"SEA\",\"line\":1,\"start\":2,\"end\":11},\
             {\"text\":\"2001:db8::1\",\"kind\":\"ipv6\",\"site\":null,\"line\":2,\"start\":14,\"end\":25},\
             {\"text\":\"z.example\",\"kind\":\"domain\",\"site\":null,\"line\":2,\"start\":26,\"end\":35}]}\n"
        );
        let with_stats: serde_json::Value =
            serde_json::from_slice(&matches_json(text, &m, true)).unwrap();
        assert_eq!(
            with_stats["stats"],
            serde_json::json!([{"site":"SEA","count":1,"percent":"100.00"},{"site":"All_Sites","count":1,"percent":"100.00"}])
        );
        assert_eq!(matches_json(b"nothing", &m, false), b"{\"matches\":[]}\n");
    }

    #[test]
    fn pseudonyms_for_unmapped_addresses_only() {
        let m = map("192.0.2.0/24|SEA|sea\n");
        let p = Pseudonymizer::new(&[3u8; 32]);
        let text = b"192.0.2.7 198.51.100.7 198.51.100.8 2001:db8::1 198.51.100.0/24 z.example";
        let out = String::from_utf8(rewrite(text, &m, Some(&p)).text).unwrap();
        let words: Vec<&str> = out.split(' ').collect();
        assert_eq!(words[0], "[__sea__]");
        let a: std::net::Ipv4Addr = words[1].parse().unwrap();
        let b: std::net::Ipv4Addr = words[2].parse().unwrap();
        assert_ne!(words[1], "198.51.100.7");
        assert_eq!(a.octets()[..3], b.octets()[..3]);
        assert_eq!(a, p.ipv4("198.51.100.7".parse().unwrap()));
        assert_eq!(
            words[3].parse::<std::net::Ipv6Addr>().unwrap(),
            p.ipv6("2001:db8::1".parse().unwrap())
        );
        let net: ipnet::Ipv4Net = words[4].parse().unwrap();
        assert_eq!(net.prefix_len(), 24);
        assert!(net.contains(&a), "{net} {a}");
        assert_eq!(words[5], "z.example");
    }

    #[test]
    fn binary_bytes_pass_through() {
        let m = map("192.0.2.0/24|SEA|sea\n");
        let mut text = vec![0xff, 0x00, 0xc3, b' '];
        text.extend_from_slice(b"192.0.2.44");
        text.extend_from_slice(&[0x80, 0xfe, b'\n']);
        let r = rewrite(&text, &m, None);
        let mut want = vec![0xff, 0x00, 0xc3, b' '];
        want.extend_from_slice(b"[___sea__]");
        want.extend_from_slice(&[0x80, 0xfe, b'\n']);
        assert_eq!(r.text, want);
    }

    fn soup() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"192.0.2.1".to_vec()),
            Just(b"192.0.2.250/28".to_vec()),
            Just(b"2001:db8::7".to_vec()),
            Just(b"www.corp.example".to_vec()),
            Just(b"198.51.100.9".to_vec()),
            Just(b"1.2.3.4.5".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..12),
            "[ .:/a-z0-9-]{0,8}".prop_map(String::into_bytes),
        ];
        proptest::collection::vec(piece, 0..20).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn rewriting_keeps_length_and_every_other_byte(text in soup()) {
            let m = map("192.0.2.0/24|SEA|CTYSEA\n2001:db8::/32|V6|v6\n.corp.example|C|corp\n");
            let out = rewrite(&text, &m, None).text;
            prop_assert_eq!(out.len(), text.len());
            let mut covered = vec![false; text.len()];
            for mt in scan(&text) {
                if m.lookup_match(&mt, &text).is_some() {
                    covered[mt.start..mt.end].iter_mut().for_each(|c| *c = true);
                    prop_assert_eq!(out[mt.start], b'[');
                    prop_assert_eq!(out[mt.end - 1], b']');
                }
            }
            for (i, c) in covered.iter().enumerate() {
                if !c {
                    prop_assert_eq!(out[i], text[i], "byte {} changed", i);
                }
            }
        }
    }
}
