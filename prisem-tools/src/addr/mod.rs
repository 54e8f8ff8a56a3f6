//! The address engine: finds addresses and names in text, maps them to sites, and rewrites them.
//!
//! - [`scan`](mod@scan): the scanner — IPv4, IPv6, CIDR blocks and DNS names in arbitrary bytes, with
//!   their kind, byte offsets and line ([`Match`]). Its module docs give the exact rules.
//! - [`netmap`]: the network map (`CIDR_or_.domain|SiteID|AnonString` lines, or YAML), with
//!   longest-prefix and most-labels lookups and per-line warnings for broken entries.
//! - [`rewrite`](mod@rewrite): the length-preserving label rule, [`rewrite()`], distinct-host counts per
//!   site, and [`matches_json`] (`{"matches":[{"text","kind","site","line","start","end"}]}`).
//! - [`synth`]: deterministic syslog-like text for benchmarks and tests.
//! - [`pseudonym`]: keyed prefix-preserving pseudonyms (Crypto-PAn) for unmapped addresses.
//!
//! ```
//! use prisem_tools::addr::{rewrite, NetMap};
//!
//! let map = NetMap::parse(b"50.97.148.0/22|ARIN|arin\n").unwrap().map;
//! let out = rewrite(b"login from 50.97.148.210 and 198.51.100.4\n", &map, None);
//! assert_eq!(out.text, b"login from [____arin___] and 198.51.100.4\n");
//! assert_eq!(out.hosts.render(), "Site/host counts\nARIN: 1 (100.00%)\nAll_Sites: 1 (100.00%)\n");
//! ```

pub mod netmap;
pub mod pseudonym;
pub mod rewrite;
pub mod scan;
pub mod synth;

pub use netmap::{Entry, Loaded, NetMap, NetMapError, Warning};
pub use pseudonym::{KeyError, Pseudonymizer};
pub use rewrite::{
    count_hosts, label, matches_json, push_label, rewrite, HostCounts, Rewritten, SiteCount,
};
pub use scan::{scan, Kind, Match, Scanner};
