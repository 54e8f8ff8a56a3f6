//! The network map: which networks and domains belong to which site, and how to label them.
//!
//! # Text form
//!
//! One entry per line, `KEY|SiteID|AnonString`; `#` starts a comment (whole line or trailing),
//! blank lines are ignored and whitespace around fields is trimmed. KEY is one of:
//!
//! - a CIDR block, IPv4 or IPv6; host bits may be set (`176.31.1.3/16` is `176.31.0.0/16`);
//! - a bare address, which is a `/32` or `/128`;
//! - `.domain` — that domain **and** every name under it (`.corp.example` maps `corp.example`,
//!   `www.corp.example`, `a.b.corp.example`);
//! - `domain` without the leading dot — that exact name only.
//!
//! The AnonString may be left out (`192.0.2.0/24|SITE`): the site id is used. It must be
//! printable ASCII (labels must keep the text's length byte for byte).
//!
//! The most specific entry wins: the longest prefix for addresses, the most labels for names
//! (an exact-name entry beats a `.domain` entry for the same name). When two lines give the same
//! key, the later one wins and a warning says so. Domain names are compared case-insensitively.
//! An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is looked up in the IPv6 entries first, then
//! as the IPv4 address it carries.
//!
//! A broken line is skipped with a [`Warning`] naming its line number; the other lines are used.
//!
//! # YAML form
//!
//! A map whose first meaningful line is `sites:` (or `---`) is YAML:
//!
//! ```yaml
//! sites:
//!   CTYSEA:
//!     cidr: [192.0.2.0/24, "2001:db8:1::/48"]
//!     domain: [.seattle.example, city.example]
//!   ARIN:
//!     anon: arin
//!     cidr: 198.51.100.0/24
//! ```
//!
//! The AnonString is the site id unless the site has an `anon` key. Every `domain` entry covers
//! the name and its subdomains, with or without a leading dot. `cidr` and `domain` may be a
//! single string or a list. A bad entry is skipped with a warning naming the site, the entry and
//! (where it can be found) its line; a document that is not YAML at all is an error.
//!
//! ```
//! use prisem_tools::addr::NetMap;
//!
//! let loaded = NetMap::parse(b"192.0.2.0/24|SEA|CTYSEA\n192.0.2.128/25|SEA-DC|dc\nbroken\n").unwrap();
//! assert_eq!(loaded.warnings.len(), 1);
//! assert_eq!(loaded.warnings[0].line, Some(3));
//! let map = loaded.map;
//! assert_eq!(map.lookup_ip("192.0.2.7".parse().unwrap()).unwrap().site, "SEA");
//! assert_eq!(map.lookup_ip("192.0.2.200".parse().unwrap()).unwrap().site, "SEA-DC");
//! assert!(map.lookup_ip("198.51.100.1".parse().unwrap()).is_none());
//! ```

use core::fmt;
use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_yaml_ng::Value as Yaml;

use super::scan::{Kind, Match};

/// What a map entry says about the addresses or names it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The site the addresses belong to.
    pub site: String,
    /// The text put inside rewritten labels.
    pub anon: String,
    /// The map line the entry came from (where known).
    pub line: Option<usize>,
}

/// A map line (or YAML entry) that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The 1-based line number, where known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "netmap line {line}: {}", self.message),
            None => write!(f, "netmap: {}", self.message),
        }
    }
}

/// A map that cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetMapError {
    /// The map looks like YAML but does not parse.
    Yaml {
        /// Where the parser stopped, if it knows.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// The YAML document has no `sites` mapping.
    NoSites,
}

impl fmt::Display for NetMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Yaml {
                line: Some(line),
                message,
            } => write!(f, "netmap line {line}: not valid YAML: {message}"),
            Self::Yaml {
                line: None,
                message,
            } => write!(f, "netmap is not valid YAML: {message}"),
            Self::NoSites => f.write_str("netmap YAML has no 'sites' mapping"),
        }
    }
}

impl std::error::Error for NetMapError {}

/// A parsed map and the warnings about the lines that were skipped.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The usable entries.
    pub map: NetMap,
    /// One warning per skipped line or entry, in line order.
    pub warnings: Vec<Warning>,
}

/// Longest-prefix tables for one address family: one hash lookup per prefix length in use.
#[derive(Debug, Clone, Default)]
struct PrefixTable {
    /// The prefix lengths present, longest first.
    lens: Vec<u8>,
    /// (length, address bits left-aligned in a u128 and masked) → entry index.
    nets: HashMap<(u8, u128), usize>,
}

fn mask(bits: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(len.min(128))))
    }
}

impl PrefixTable {
    fn insert(&mut self, bits: u128, len: u8, entry: usize) -> Option<usize> {
        if let Err(at) = self.lens.binary_search_by(|l| len.cmp(l)) {
            self.lens.insert(at, len);
        }
        self.nets.insert((len, mask(bits, len)), entry)
    }

    fn lookup(&self, bits: u128, max_len: u8) -> Option<usize> {
        self.lens
            .iter()
            .filter(|&&len| len <= max_len)
            .find_map(|&len| self.nets.get(&(len, mask(bits, len))).copied())
    }
}

fn v4_bits(a: std::net::Ipv4Addr) -> u128 {
    u128::from(u32::from(a)) << 96
}

/// The network map; see the [module docs](self) for both file forms.
#[derive(Debug, Clone, Default)]
pub struct NetMap {
    entries: Vec<Entry>,
    v4: PrefixTable,
    v6: PrefixTable,
    /// Exact names (lower case) → entry.
    names: HashMap<String, usize>,
    /// `.domain` suffixes (lower case, without the dot) → entry.
    suffixes: HashMap<String, usize>,
}

/// What a map key names.
enum Key {
    Net(IpNet),
    Name(String),
    Suffix(String),
}

/// A DNS name as the scanner would find it, lower-cased; a single label is allowed (`.example`).
fn valid_name(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld = labels.last()?;
    if !labels.iter().all(label_ok)
        || tld.len() < 2
        || !tld.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

fn parse_key(key: &str, suffix_always: bool) -> Result<Key, String> {
    if key.contains('/') {
        return key
            .parse::<IpNet>()
            .map(|n| Key::Net(n.trunc()))
            .map_err(|_| format!("{key:?} is not a valid CIDR block"));
    }
    if let Ok(ip) = key.parse::<IpAddr>() {
        return Ok(Key::Net(IpNet::from(ip)));
    }
    let (dotted, name) = match key.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, key),
    };
    match valid_name(name) {
        Some(n) if dotted || suffix_always => Ok(Key::Suffix(n)),
        Some(n) => Ok(Key::Name(n)),
        None => Err(format!(
            "{key:?} is not a CIDR block, an address or a domain name"
        )),
    }
}

impl NetMap {
    /// An empty map (nothing is mapped).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a map in either form (YAML when the first meaningful line is `sites:` or `---`).
    ///
    /// Only a YAML document that does not parse is an error; broken lines and entries are
    /// skipped and reported in [`Loaded::warnings`].
    pub fn parse(bytes: &[u8]) -> Result<Loaded, NetMapError> {
        let first = bytes
            .split(|&b| b == b'\n')
            .map(|l| l.trim_ascii())
            .find(|l| !l.is_empty() && !l.starts_with(b"#"));
        match first {
            Some(l) if l.starts_with(b"sites:") || l.starts_with(b"---") => Self::parse_yaml(bytes),
            _ => Ok(Self::parse_text(bytes)),
        }
    }

    /// Parses the text form (`KEY|SiteID|AnonString` lines).
    pub fn parse_text(bytes: &[u8]) -> Loaded {
        let mut loaded = Loaded::default();
        let mut origin: HashMap<String, usize> = HashMap::new();
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = index + 1;
            let mut warn = |message: String| {
                loaded.warnings.push(Warning {
                    line: Some(line),
                    message,
                })
            };
            let Ok(text) = core::str::from_utf8(raw) else {
                warn("not valid UTF-8".to_owned());
                continue;
            };
            let text = text.split('#').next().unwrap_or_default().trim();
            if text.is_empty() {
                continue;
            }
            let fields: Vec<&str> = text.split('|').map(str::trim).collect();
            let (key, site, anon) = match fields.as_slice() {
                [key, site] => (*key, *site, *site),
                [key, site, anon] => (*key, *site, *anon),
                _ => {
                    warn(format!(
                        "expected CIDR_or_.domain|SiteID|AnonString, found {} field{}",
                        fields.len(),
                        if fields.len() == 1 { "" } else { "s" }
                    ));
                    continue;
                }
            };
            let key = match check_entry(site, anon).and_then(|()| parse_key(key, false)) {
                Ok(k) => k,
                Err(e) => {
                    warn(e);
                    continue;
                }
            };
            let entry = Entry {
                site: site.to_owned(),
                anon: anon.to_owned(),
                line: Some(line),
            };
            let id = key_id(&key);
            if let Some(previous) = origin.insert(id.clone(), line) {
                warn(format!(
                    "{id} was already mapped on line {previous}; this line wins"
                ));
            }
            loaded.map.insert(key, entry);
        }
        loaded
    }

    /// Parses the YAML form `sites: {SITE: {cidr: [...], domain: [...], anon: ...}}`.
    pub fn parse_yaml(bytes: &[u8]) -> Result<Loaded, NetMapError> {
        let doc: Yaml = serde_yaml_ng::from_slice(bytes).map_err(|e| NetMapError::Yaml {
            line: e.location().map(|l| l.line()),
            message: e.to_string(),
        })?;
        let Some(Yaml::Mapping(sites)) = doc.get("sites") else {
            return Err(NetMapError::NoSites);
        };
        let text = String::from_utf8_lossy(bytes);
        let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
        let mut loaded = Loaded::default();
        for (name, body) in sites {
            let Some(site) = scalar(name) else {
                loaded.warnings.push(Warning {
                    line: None,
                    message: "a site name is not a string".to_owned(),
                });
                continue;
            };
            let site_line = line_of(&format!("{site}:"));
            let Yaml::Mapping(body) = body else {
                loaded.warnings.push(Warning {
                    line: site_line,
                    message: format!("site {site:?} is not a mapping of cidr/domain lists"),
                });
                continue;
            };
            let anon = match body.get("anon") {
                None => site.clone(),
                Some(v) => match scalar(v) {
                    Some(a) => a,
                    None => {
                        loaded.warnings.push(Warning {
                            line: site_line,
                            message: format!("site {site:?}: 'anon' is not a string"),
                        });
                        continue;
                    }
                },
            };
            if let Err(e) = check_entry(&site, &anon) {
                loaded.warnings.push(Warning {
                    line: site_line,
                    message: format!("site {site:?}: {e}"),
                });
                continue;
            }
            for (key, _) in body {
                let known = matches!(key.as_str(), Some("cidr" | "domain" | "anon"));
                if !known {
                    loaded.warnings.push(Warning {
                        line: site_line,
                        message: format!(
                            "site {site:?}: unknown key {:?} (expected cidr, domain, anon)",
                            scalar(key).unwrap_or_default()
                        ),
                    });
                }
            }
            for field in ["cidr", "domain"] {
                let items: Vec<&Yaml> = match body.get(field) {
                    None | Some(Yaml::Null) => Vec::new(),
                    Some(Yaml::Sequence(s)) => s.iter().collect(),
                    Some(other) => vec![other],
                };
                for item in items {
                    let Some(value) = scalar(item) else {
                        loaded.warnings.push(Warning {
                            line: site_line,
                            message: format!("site {site:?}: a {field} entry is not a string"),
                        });
                        continue;
                    };
                    let line = line_of(&value);
                    let key = match parse_key(&value, true) {
                        Ok(Key::Net(_)) if field == "domain" => {
                            Err(format!("{value:?} is an address, not a domain"))
                        }
                        Ok(Key::Suffix(_)) if field == "cidr" => {
                            Err(format!("{value:?} is a domain, not a CIDR block"))
                        }
                        other => other,
                    };
                    match key {
                        Ok(key) => loaded.map.insert(
                            key,
                            Entry {
                                site: site.clone(),
                                anon: anon.clone(),
                                line,
                            },
                        ),
                        Err(e) => loaded.warnings.push(Warning {
                            line,
                            message: format!("site {site:?}: {e}"),
                        }),
                    }
                }
            }
        }
        Ok(loaded)
    }

    fn insert(&mut self, key: Key, entry: Entry) {
        let index = self.entries.len();
        self.entries.push(entry);
        match key {
            Key::Net(IpNet::V4(n)) => {
                self.v4.insert(v4_bits(n.network()), n.prefix_len(), index);
            }
            Key::Net(IpNet::V6(n)) => {
                self.v6
                    .insert(u128::from(n.network()), n.prefix_len(), index);
            }
            Key::Name(n) => {
                self.names.insert(n, index);
            }
            Key::Suffix(n) => {
                self.suffixes.insert(n, index);
            }
        }
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of entries (networks and names), counting overridden duplicates.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The most specific entry covering an address.
    pub fn lookup_ip(&self, ip: IpAddr) -> Option<&Entry> {
        let index = match ip {
            IpAddr::V4(a) => self.v4.lookup(v4_bits(a), 32),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a), 128).or_else(|| {
                a.to_ipv4_mapped()
                    .and_then(|v4| self.v4.lookup(v4_bits(v4), 32))
            }),
        };
        self.entries.get(index?)
    }

    /// The most specific entry whose network contains all of `net` (its prefix is no longer
    /// than `net`'s).
    pub fn lookup_net(&self, net: IpNet) -> Option<&Entry> {
        let index = match net.trunc() {
            IpNet::V4(n) => self.v4.lookup(v4_bits(n.network()), n.prefix_len()),
            IpNet::V6(n) => self
                .v6
                .lookup(u128::from(n.network()), n.prefix_len())
                .or_else(|| {
                    let v4 = n.network().to_ipv4_mapped()?;
                    let len = n.prefix_len().checked_sub(96)?;
                    self.v4.lookup(v4_bits(v4), len)
                }),
        };
        self.entries.get(index?)
    }

    /// The most specific entry covering a DNS name (compared case-insensitively).
    pub fn lookup_domain(&self, name: &str) -> Option<&Entry> {
        if self.names.is_empty() && self.suffixes.is_empty() {
            return None;
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(&i) = self.names.get(&name) {
            return self.entries.get(i);
        }
        let mut rest = name.as_str();
        loop {
            if let Some(&i) = self.suffixes.get(rest) {
                return self.entries.get(i);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// The entry covering a scanner match found in `haystack`: addresses by
    /// [`lookup_ip`](Self::lookup_ip), CIDR blocks by [`lookup_net`](Self::lookup_net) (the
    /// whole block must lie inside a mapped network), names by
    /// [`lookup_domain`](Self::lookup_domain).
    pub fn lookup_match(&self, m: &Match, haystack: &[u8]) -> Option<&Entry> {
        match m.kind {
            Kind::Ipv4 | Kind::Ipv6 => self.lookup_ip(m.ip?),
            Kind::Cidr4 | Kind::Cidr6 => self.lookup_net(m.net()?),
            Kind::Domain => self.lookup_domain(m.as_str(haystack)),
        }
    }
}

fn key_id(key: &Key) -> String {
    match key {
        Key::Net(n) => n.to_string(),
        Key::Name(n) => n.clone(),
        Key::Suffix(n) => format!(".{n}"),
    }
}

/// A YAML scalar as text (sites named by numbers are allowed).
fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.trim().to_owned()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn check_entry(site: &str, anon: &str) -> Result<(), String> {
    if site.is_empty() {
        return Err("the site id is empty".to_owned());
    }
    if anon.is_empty() {
        return Err("the AnonString is empty".to_owned());
    }
    if !anon.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "AnonString {anon:?} must be printable ASCII without spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn site<'m>(map: &'m NetMap, s: &str) -> Option<&'m str> {
        map.lookup_ip(ip(s)).map(|e| e.site.as_str())
    }

    #[test]
    fn text_map_with_comments_host_bits_and_nesting() {
        let text =
            b"# sites\n\n176.31.1.3/16|OVH|ovh   # host bits set\n176.31.7.0/24|OVH-7|seven\n\
            192.0.2.9|ONE|one\n2001:db8::/32|V6|six\n2001:db8:5::/48|V6-5|five\n";
        let loaded = NetMap::parse(text).unwrap();
        assert_eq!(loaded.warnings, []);
        let map = loaded.map;
        assert_eq!(map.len(), 5);
        assert_eq!(site(&map, "176.31.0.1"), Some("OVH"));
        assert_eq!(site(&map, "176.31.255.255"), Some("OVH"));
        assert_eq!(site(&map, "176.31.7.200"), Some("OVH-7"));
        assert_eq!(site(&map, "176.32.0.1"), None);
        assert_eq!(site(&map, "192.0.2.9"), Some("ONE"));
        assert_eq!(site(&map, "192.0.2.10"), None);
        assert_eq!(site(&map, "2001:db8::1"), Some("V6"));
        assert_eq!(site(&map, "2001:db8:5::1"), Some("V6-5"));
        assert_eq!(site(&map, "2001:db9::1"), None);
        let e = map.lookup_ip(ip("176.31.7.1")).unwrap();
        assert_eq!((e.anon.as_str(), e.line), ("seven", Some(4)));
    }

    #[test]
    fn broken_lines_are_reported_and_good_lines_kept() {
        let text = "192.0.2.0/24|A|a\nnot a line\n198.51.100.0/33|B|b\n203.0.113.0/24||x\n\
            203.0.113.0/24|C|has space\n.exa_mple|D|d\n203.0.113.0/24|C|c\n192.0.2.0/24|A2|a2\n\
            x|y|z|w\n";
        let loaded = NetMap::parse(text.as_bytes()).unwrap();
        let lines: Vec<_> = loaded.warnings.iter().map(|w| w.line.unwrap()).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 8, 9]);
        let shown: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown[0],
            "netmap line 2: expected CIDR_or_.domain|SiteID|AnonString, found 1 field"
        );
        assert!(
            shown[1].contains("\"198.51.100.0/33\" is not a valid CIDR block"),
            "{}",
            shown[1]
        );
        assert!(shown[2].contains("site id is empty"));
        assert!(shown[3].contains("printable ASCII"));
        assert!(shown[4].contains("not a CIDR block, an address or a domain name"));
        assert_eq!(
            shown[5],
            "netmap line 8: 192.0.2.0/24 was already mapped on line 1; this line wins"
        );
        assert!(shown[6].contains("found 4 fields"));
        assert_eq!(site(&loaded.map, "203.0.113.5"), Some("C"));
        assert_eq!(site(&loaded.map, "192.0.2.5"), Some("A2"));
    }

    #[test]
    fn non_utf8_and_crlf_lines() {
        let loaded = NetMap::parse(b"192.0.2.0/24|A|a\r\n\xff\xfe|B|b\r\n").unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].line, Some(2));
        assert_eq!(site(&loaded.map, "192.0.2.1"), Some("A"));
        assert_eq!(loaded.map.lookup_ip(ip("192.0.2.1")).unwrap().anon, "a");
    }

    #[test]
    fn anon_string_defaults_to_site() {
        let map = NetMap::parse(b"192.0.2.0/24|SEA\n").unwrap().map;
        assert_eq!(map.lookup_ip(ip("192.0.2.1")).unwrap().anon, "SEA");
    }

    #[test]
    fn domains_suffix_and_exact() {
        let text = b".corp.example|CORP|corp\n.lab.corp.example|LAB|lab\nhost.other.example|H|h\n";
        let map = NetMap::parse(text).unwrap().map;
        let d = |n: &str| map.lookup_domain(n).map(|e| e.site.as_str());
        assert_eq!(d("corp.example"), Some("CORP"));
        assert_eq!(d("WWW.Corp.Example"), Some("CORP"));
        assert_eq!(d("a.b.corp.example"), Some("CORP"));
        assert_eq!(d("lab.corp.example"), Some("LAB"));
        assert_eq!(d("x.lab.corp.example"), Some("LAB"));
        assert_eq!(d("notcorp.example"), None);
        assert_eq!(d("host.other.example"), Some("H"));
        assert_eq!(d("a.host.other.example"), None);
        assert_eq!(d("other.example"), None);
    }

    #[test]
    fn ipv4_mapped_addresses_and_nets() {
        let map = NetMap::parse(b"192.0.2.0/24|A|a\n").unwrap().map;
        assert_eq!(site(&map, "::ffff:192.0.2.7"), Some("A"));
        let net: IpNet = "::ffff:192.0.2.0/120".parse().unwrap();
        assert_eq!(map.lookup_net(net).unwrap().site, "A");
        let wide: IpNet = "192.0.0.0/16".parse().unwrap();
        assert!(map.lookup_net(wide).is_none());
        let narrow: IpNet = "192.0.2.128/25".parse().unwrap();
        assert_eq!(map.lookup_net(narrow).unwrap().site, "A");
    }

    #[test]
    fn yaml_form() {
        let yaml = b"sites:\n  CTYSEA:\n    cidr: [192.0.2.0/24, \"2001:db8:1::/48\"]\n    \
            domain: [.seattle.example, city.example]\n  ARIN:\n    anon: arin\n    cidr: 198.51.100.7/24\n  \
            BAD:\n    cidr: [not-a-net]\n    color: blue\n";
        let loaded = NetMap::parse(yaml).unwrap();
        let map = &loaded.map;
        let e = map.lookup_ip(ip("192.0.2.3")).unwrap();
        assert_eq!((e.site.as_str(), e.anon.as_str()), ("CTYSEA", "CTYSEA"));
        assert_eq!(site(map, "2001:db8:1::9"), Some("CTYSEA"));
        assert_eq!(map.lookup_ip(ip("198.51.100.200")).unwrap().anon, "arin");
        assert_eq!(
            map.lookup_domain("www.city.example").unwrap().site,
            "CTYSEA"
        );
        assert_eq!(map.lookup_domain("seattle.example").unwrap().site, "CTYSEA");
        let shown: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown.iter().any(|w| w.contains("unknown key \"color\"")));
        assert!(
            shown
                .iter()
                .any(|w| w.starts_with("netmap line 9: site \"BAD\": \"not-a-net\"")),
            "{shown:?}"
        );
    }

    #[test]
    fn broken_yaml_is_an_error() {
        let e = NetMap::parse(b"sites:\n  A: [unclosed\n").unwrap_err();
        assert!(
            matches!(e, NetMapError::Yaml { line: Some(_), .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("not valid YAML"));
        assert_eq!(
            NetMap::parse(b"---\nother: 1\n").unwrap_err(),
            NetMapError::NoSites
        );
    }

    #[test]
    fn empty_map_maps_nothing() {
        let loaded = NetMap::parse(b"").unwrap();
        assert!(loaded.map.is_empty() && loaded.warnings.is_empty());
        assert!(loaded.map.lookup_ip(ip("192.0.2.1")).is_none());
        assert!(loaded.map.lookup_domain("a.example").is_none());
    }
}
