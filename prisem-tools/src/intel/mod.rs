//! A local threat-intelligence store: the engine behind `cifbulk`.
//!
//! A store is a directory of feed files, loaded and indexed at start and reloaded on request
//! (SIGHUP in `cifbulk_server`):
//!
//! - `*.csv`: a header row naming the columns, then one indicator per row;
//! - `*.jsonl` (or `*.json`, one object per line): the same fields as keys.
//!
//! Fields: `indicator` (required), `type` (`ipv4`, `ipv6`, `cidr`, `domain`, `url`, `hash`;
//! inferred when empty or absent), `confidence` (0–100, default 50), `first_seen` and
//! `last_seen` (Unix seconds, RFC 3339, or `YYYY-MM-DD`; an absent one takes the other's value,
//! both absent means "always"), `source`, `description`. A line that cannot be used is reported
//! with its file and line number and skipped; the rest is loaded.
//!
//! Lookups ([`Store::lookup`]): an IP matches its exact indicators and every CIDR indicator
//! that contains it (one hash lookup per prefix length present); a CIDR matches the indicators
//! inside it; a domain matches itself and its parent domains (`a.b.evil.example` matches
//! `evil.example`); a URL matches itself (scheme and host compared in lower case) and its host
//! as a domain; a hash (MD5, SHA-1, SHA-256 hex) matches case-insensitively. A time window keeps
//! the records whose `[first_seen, last_seen]` overlaps it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::Value;

pub mod service;

/// What an indicator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// A network (IPv4 or IPv6).
    Cidr,
    /// A DNS name.
    Domain,
    /// A URL.
    Url,
    /// An MD5, SHA-1 or SHA-256 digest in hex.
    Hash,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "ipv4" | "ip" | "ipv4-addr" => Self::Ipv4,
            "ipv6" | "ipv6-addr" => Self::Ipv6,
            "cidr" | "net" | "netblock" => Self::Cidr,
            "domain" | "fqdn" | "hostname" => Self::Domain,
            "url" => Self::Url,
            "hash" | "md5" | "sha1" | "sha256" => Self::Hash,
            _ => return None,
        })
    }
}

/// A classified search item or indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An address.
    Ip(IpAddr),
    /// A network.
    Net(IpNet),
    /// A DNS name, lower case, without a trailing dot.
    Domain(String),
    /// A URL, scheme and host in lower case; and its host.
    Url(String, String),
    /// A digest, lower case.
    Hash(String),
}

impl Item {
    /// Classifies `text`; `None` if it is none of the kinds.
    pub fn classify(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.is_empty() || t.starts_with('-') || t.contains(char::is_whitespace) || t.contains('\0')
        {
            return None;
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Some(Self::Ip(ip));
        }
        if t.contains('/') && !t.contains("://") {
            return t.parse::<IpNet>().ok().map(|n| Self::Net(n.trunc()));
        }
        if let Some((scheme, rest)) = t.split_once("://") {
            let (host, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            let bare = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
            if scheme.is_empty() || bare.is_empty() {
                return None;
            }
            let url = format!(
                "{}://{}{path}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase()
            );
            return Some(Self::Url(url, bare));
        }
        let hexlen = t.len();
        if matches!(hexlen, 32 | 40 | 64) && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(Self::Hash(t.to_ascii_lowercase()));
        }
        let d = t.trim_end_matches('.').to_ascii_lowercase();
        let labels_ok = d.split('.').count() >= 2
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        // A top-level label is never all digits: `192.0.2.1.` is a mistyped address, not a
        // domain (as a domain it would be stored under a name no address lookup reaches).
        let tld_ok = d
            .rsplit('.')
            .next()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
        (labels_ok && tld_ok).then_some(Self::Domain(d))
    }

    fn kind(&self) -> Kind {
        match self {
            Self::Ip(IpAddr::V4(_)) => Kind::Ipv4,
            Self::Ip(IpAddr::V6(_)) => Kind::Ipv6,
            Self::Net(_) => Kind::Cidr,
            Self::Domain(_) => Kind::Domain,
            Self::Url(..) => Kind::Url,
            Self::Hash(_) => Kind::Hash,
        }
    }
}

/// One indicator of a feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// The indicator as the feed wrote it.
    pub indicator: String,
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Confidence, 0–100.
    pub confidence: u8,
    /// First seen, Unix seconds (`i64::MIN`: always).
    pub first_seen: i64,
    /// Last seen, Unix seconds (`i64::MAX`: always).
    pub last_seen: i64,
    /// The feed's source name.
    pub source: String,
    /// What it is.
    pub description: String,
}

impl Record {
    /// Whether its time span overlaps `[stime, etime]` (each side open when `None`).
    pub fn within(&self, stime: Option<i64>, etime: Option<i64>) -> bool {
        stime.is_none_or(|s| self.last_seen >= s) && etime.is_none_or(|e| self.first_seen <= e)
    }
}

/// A loaded and indexed store.
#[derive(Debug, Default)]
pub struct Store {
    records: Vec<Record>,
    ips: HashMap<IpAddr, Vec<usize>>,
    /// Networks by prefix length, then by network address.
    nets: BTreeMap<(bool, u8), HashMap<IpNet, Vec<usize>>>,
    domains: HashMap<String, Vec<usize>>,
    urls: HashMap<String, Vec<usize>>,
    hashes: HashMap<String, Vec<usize>>,
    /// What was skipped while loading (file:line: why).
    pub warnings: Vec<String>,
}

/// Parses a feed time: Unix seconds, RFC 3339, `YYYY-MM-DD[ HH:MM:SS]`.
pub fn parse_time(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Some(n);
    }
    if let Ok(f) = t.parse::<f64>() {
        return f.is_finite().then_some(f as i64);
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp());
    }
    if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S") {
        return Some(d.and_utc().timestamp());
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

/// Builds a record from named fields; the error says which field is wrong.
fn record(get: &dyn Fn(&str) -> Option<String>) -> Result<Record, String> {
    let indicator = get("indicator")
        .filter(|s| !s.trim().is_empty())
        .ok_or("no indicator")?
        .trim()
        .to_owned();
    let item = Item::classify(&indicator)
        .ok_or_else(|| format!("indicator {indicator:?} is no IP, CIDR, domain, URL or hash"))?;
    let kind = match get("type").filter(|t| !t.trim().is_empty()) {
        None => item.kind(),
        Some(t) => Kind::parse(&t).ok_or_else(|| format!("unknown type {t:?}"))?,
    };
    let compatible = kind == item.kind()
        || (kind == Kind::Cidr && matches!(item, Item::Ip(_)))
        || (kind == Kind::Domain && matches!(item, Item::Domain(_)));
    if !compatible {
        return Err(format!("indicator {indicator:?} is not of type {kind:?}"));
    }
    let confidence = match get("confidence").filter(|c| !c.trim().is_empty()) {
        None => 50,
        Some(c) => c
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| (0.0..=100.0).contains(v))
            .map(|v| v.round() as u8)
            .ok_or_else(|| format!("confidence {c:?} is not 0-100"))?,
    };
    let time = |name: &str| -> Result<Option<i64>, String> {
        match get(name).filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(v) => parse_time(&v)
                .map(Some)
                .ok_or_else(|| format!("{name} {v:?} is not a time")),
        }
    };
    let (first, last) = (time("first_seen")?, time("last_seen")?);
    let first_seen = first.or(last).unwrap_or(i64::MIN);
    let last_seen = last.or(first).unwrap_or(i64::MAX);
    if first_seen > last_seen {
        return Err("first_seen is after last_seen".into());
    }
    Ok(Record {
        indicator,
        kind,
        confidence,
        first_seen,
        last_seen,
        source: get("source").unwrap_or_default(),
        description: get("description").unwrap_or_default(),
    })
}

impl Store {
    /// Loads every feed file of `dir` (sorted by name; other files are left alone).
    pub fn load(dir: &Path) -> Result<Self, String> {
        let mut store = Self::default();
        for file in crate::reload::sorted_files(dir)? {
            let ext = file
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            match ext.as_str() {
                "csv" => store.add_csv(&file, &bytes),
                "jsonl" | "json" | "ndjson" => store.add_jsonl(&file, &bytes),
                _ => continue,
            }
        }
        Ok(store)
    }

    /// Adds the rows of a CSV feed.
    pub fn add_csv(&mut self, file: &Path, bytes: &[u8]) {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(bytes);
        let headers: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(|h| h.to_ascii_lowercase()).collect(),
            Err(e) => {
                self.warnings
                    .push(format!("{}: no header row: {e}", file.display()));
                return;
            }
        };
        for row in reader.records() {
            let line = row
                .as_ref()
                .ok()
                .and_then(|r| r.position())
                .map_or(0, csv::Position::line);
            let result = row.map_err(|e| e.to_string()).and_then(|row| {
                let get = |name: &str| {
                    headers
                        .iter()
                        .position(|h| h == name)
                        .and_then(|i| row.get(i))
                        .map(str::to_owned)
                };
                record(&get)
            });
            self.push(file, line, result);
        }
    }

    /// Adds the objects of a JSON-lines feed.
    pub fn add_jsonl(&mut self, file: &Path, bytes: &[u8]) {
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let text = String::from_utf8_lossy(line);
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let result = match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => {
                    let get = |name: &str| match map.get(name) {
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(Value::Number(v)) => Some(v.to_string()),
                        _ => None,
                    };
                    record(&get)
                }
                Ok(_) => Err("not a JSON object".into()),
                Err(e) => Err(format!("not JSON: {e}")),
            };
            self.push(file, n as u64 + 1, result);
        }
    }

    fn push(&mut self, file: &Path, line: u64, result: Result<Record, String>) {
        match result {
            Ok(r) => self.index(r),
            Err(e) => self
                .warnings
                .push(format!("{}:{line}: {e}; skipped", file.display())),
        }
    }

    fn index(&mut self, r: Record) {
        let i = self.records.len();
        match Item::classify(&r.indicator) {
            Some(Item::Ip(ip)) if r.kind == Kind::Cidr => {
                let net = IpNet::from(ip);
                self.nets
                    .entry((net.addr().is_ipv4(), net.prefix_len()))
                    .or_default()
                    .entry(net)
                    .or_default()
                    .push(i);
            }
            Some(Item::Ip(ip)) => self.ips.entry(ip).or_default().push(i),
            Some(Item::Net(net)) => self
                .nets
                .entry((net.addr().is_ipv4(), net.prefix_len()))
                .or_default()
                .entry(net)
                .or_default()
                .push(i),
            Some(Item::Domain(d)) => self.domains.entry(d).or_default().push(i),
            Some(Item::Url(u, _)) => self.urls.entry(u).or_default().push(i),
            Some(Item::Hash(h)) => self.hashes.entry(h).or_default().push(i),
            None => return,
        }
        self.records.push(r);
    }

    /// How many indicators are loaded.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records matching `item` within `[stime, etime]`, each once, in load order.
    pub fn lookup(&self, item: &Item, stime: Option<i64>, etime: Option<i64>) -> Vec<&Record> {
        let mut hits: Vec<usize> = Vec::new();
        let mut add = |v: Option<&Vec<usize>>| hits.extend(v.into_iter().flatten().copied());
        match item {
            Item::Ip(ip) => {
                add(self.ips.get(ip));
                for (&(v4, len), nets) in &self.nets {
                    if v4 == ip.is_ipv4() {
                        if let Ok(net) = IpNet::new(*ip, len) {
                            add(nets.get(&net.trunc()));
                        }
                    }
                }
            }
            Item::Net(query) => {
                for (ip, v) in &self.ips {
                    if query.contains(ip) {
                        add(Some(v));
                    }
                }
                for nets in self.nets.values() {
                    for (net, v) in nets {
                        if query.contains(net) || net.contains(query) {
                            add(Some(v));
                        }
                    }
                }
            }
            Item::Domain(d) => self.add_domain(d, &mut add),
            Item::Url(u, host) => {
                add(self.urls.get(u));
                match host.parse::<IpAddr>() {
                    Ok(ip) => add(self.ips.get(&ip)),
                    Err(_) => self.add_domain(host, &mut add),
                }
            }
            Item::Hash(h) => add(self.hashes.get(h)),
        }
        hits.sort_unstable();
        hits.dedup();
        hits.into_iter()
            .filter_map(|i| self.records.get(i))
            .filter(|r| r.within(stime, etime))
            .collect()
    }

    fn add_domain(&self, d: &str, add: &mut impl FnMut(Option<&Vec<usize>>)) {
        let mut name = d;
        loop {
            add(self.domains.get(name));
            match name.split_once('.') {
                Some((_, parent)) if parent.contains('.') => name = parent,
                _ => break,
            }
        }
    }
}

/// The intelligence store, reloadable.
pub type SharedStore = crate::reload::SharedStore<Store>;

impl crate::reload::LoadDir for Store {
    fn load_dir(dir: &Path) -> Result<Self, String> {
        Self::load(dir)
    }

    fn entries(&self) -> usize {
        self.len()
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(csv: &str, jsonl: &str) -> Store {
        let mut s = Store::default();
        s.add_csv(Path::new("feed.csv"), csv.as_bytes());
        s.add_jsonl(Path::new("feed.jsonl"), jsonl.as_bytes());
        s
    }

    const CSV: &str = "indicator,type,confidence,first_seen,last_seen,source,description\n\
        203.0.113.200,,85,2014-01-01,2014-02-01,feed-a,ssh scanner\n\
        198.51.100.0/24,cidr,60,1388534400,1391212800,feed-a,\"bulletproof hosting, rented\"\n\
        evil.example,domain,70,,,feed-a,phishing\n\
        http://Evil.Example/dropper.bin,,90,2014-01-02,2014-01-03,feed-a,dropper\n\
        not an indicator,,,,,feed-a,broken\n\
        192.0.2.9,ipv4,250,,,feed-a,bad confidence\n";
    const JSONL: &str = "{\"indicator\":\"d41d8cd98f00b204e9800998ecf8427e\",\"confidence\":40,\"source\":\"feed-b\"}\n\
        {\"indicator\":\"2001:db8:bad::/48\",\"first_seen\":\"2014-01-03T00:00:00Z\"}\n\
        [1,2]\n\
        {not json\n";

    #[test]
    fn a_numeric_top_label_is_no_domain() {
        // Caught by the intel_feed fuzz target (an item reclassifies to itself): "192.0.2.1." was
        // the domain "192.0.2.1", which classifies as an address, so no lookup could reach it.
        assert_eq!(Item::classify("192.0.2.1."), None);
        assert_eq!(Item::classify("198.51.100.300"), None);
        assert_eq!(
            Item::classify("host1.example."),
            Some(Item::Domain("host1.example".into()))
        );
        assert_eq!(
            Item::classify("7.example"),
            Some(Item::Domain("7.example".into()))
        );
        let mut s = Store::default();
        s.add_jsonl(Path::new("f.jsonl"), b"{\"indicator\":\"192.0.2.1.\"}\n");
        assert!(s.is_empty());
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    }

    #[test]
    fn loads_both_forms_and_reports_broken_lines() {
        let s = store(CSV, JSONL);
        assert_eq!(s.len(), 6);
        assert_eq!(s.warnings.len(), 4, "{:#?}", s.warnings);
        assert!(
            s.warnings[0].starts_with("feed.csv:6: indicator \"not an indicator\""),
            "{:?}",
            s.warnings
        );
        assert!(s.warnings[1].contains("feed.csv:7: confidence \"250\""));
        assert!(s.warnings[2].starts_with("feed.jsonl:3: not a JSON object"));
        assert!(s.warnings[3].starts_with("feed.jsonl:4: not JSON"));
    }

    #[test]
    fn ips_match_exact_and_containing_networks() {
        let s = store(CSV, JSONL);
        let ip = Item::classify("198.51.100.77").unwrap();
        let hits = s.lookup(&ip, None, None);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].description, "bulletproof hosting, rented");
        let v6 = Item::classify("2001:db8:bad:1::5").unwrap();
        assert_eq!(s.lookup(&v6, None, None)[0].indicator, "2001:db8:bad::/48");
        assert!(s
            .lookup(&Item::classify("192.0.2.1").unwrap(), None, None)
            .is_empty());
        // A CIDR query finds what is inside it, and the networks around it.
        let q = Item::classify("203.0.113.0/24").unwrap();
        assert_eq!(s.lookup(&q, None, None)[0].indicator, "203.0.113.200");
        let q = Item::classify("198.51.100.128/25").unwrap();
        assert_eq!(s.lookup(&q, None, None).len(), 1);
    }

    #[test]
    fn domains_urls_and_hashes() {
        let s = store(CSV, JSONL);
        let sub = Item::classify("a.b.EVIL.example.").unwrap();
        assert_eq!(s.lookup(&sub, None, None)[0].description, "phishing");
        assert!(s
            .lookup(&Item::classify("notevil.example").unwrap(), None, None)
            .is_empty());
        let url = Item::classify("HTTP://evil.example/dropper.bin").unwrap();
        let hits = s.lookup(&url, None, None);
        assert_eq!(hits.len(), 2, "the URL itself and its host as a domain");
        let h = Item::classify("D41D8CD98F00B204E9800998ECF8427E").unwrap();
        assert_eq!(s.lookup(&h, None, None)[0].source, "feed-b");
    }

    #[test]
    fn the_window_keeps_overlapping_records() {
        let s = store(CSV, JSONL);
        let ip = Item::classify("203.0.113.200").unwrap();
        let jan = parse_time("2014-01-15").unwrap();
        let mar = parse_time("2014-03-01").unwrap();
        assert_eq!(s.lookup(&ip, Some(jan), Some(jan + 1)).len(), 1);
        assert!(s.lookup(&ip, Some(mar), None).is_empty());
        assert!(s.lookup(&ip, None, Some(jan - 86_400 * 30)).is_empty());
        // Without times a record is always current.
        let d = Item::classify("evil.example").unwrap();
        assert_eq!(s.lookup(&d, Some(mar), Some(mar)).len(), 1);
    }

    #[test]
    fn classify_refuses_what_is_no_indicator() {
        for bad in ["", "-n", "a b", "localhost", "1.2.3.4/99", "x\0y", "://"] {
            assert_eq!(Item::classify(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reload_keeps_the_old_store_on_failure() {
        let dir = std::env::temp_dir().join(format!("intel-reload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.csv"), "indicator\n192.0.2.1\n").unwrap();
        let shared = SharedStore::open(&dir).unwrap();
        assert_eq!(shared.get().len(), 1);
        std::fs::write(dir.join("b.jsonl"), "{\"indicator\":\"192.0.2.2\"}\n").unwrap();
        assert_eq!(shared.reload().unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(shared.reload().is_err());
        assert_eq!(shared.get().len(), 2, "the old store stays");
    }
}
