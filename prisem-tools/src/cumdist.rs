//! cumdist: the cumulative distribution of matching addresses per site, from crosscor's output.
//!
//! Reads either form:
//!
//! - crosscor's JSON: `"matching_stats": [{"site": "SEA", "count": "2", "percent": "…"}, …,
//!   {"site": "All_Sites", "count": "3", …}]` (counts as strings or numbers);
//! - the old dict form `{"matchingstats": {"SEA": 2, "ALLSITES": 3}}`.
//!
//! and prints one line per site by descending count (then name),
//! `SITE count pct_of_total cum_pct` with two decimals, then `ALLSITES total 100.00`. The total
//! is the `All_Sites`/`ALLSITES` entry when present, else the sum of the sites.
//!
//! ```
//! let out = prisem_tools::cumdist::render(
//!     br#"{"matchingstats": {"SEA": 1, "ARIN": 3, "ALLSITES": 4}}"#,
//! ).unwrap();
//! assert_eq!(out, "ARIN 3 75.00 75.00\nSEA 1 25.00 100.00\nALLSITES 4 100.00\n");
//! ```

use core::fmt;

use serde_json::{Map, Value};

/// Why the input cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CumdistError {
    /// The input is not JSON.
    NotJson(String),
    /// The JSON has neither `matching_stats` nor `matchingstats`.
    NoStats,
    /// An entry of the statistics is malformed.
    BadEntry {
        /// Which entry (its site, or its position).
        which: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl fmt::Display for CumdistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson(e) => write!(f, "input is not JSON: {e}"),
            Self::NoStats => f.write_str(
                "input is neither crosscor output (a \"matching_stats\" list) nor a \
                 \"matchingstats\" object",
            ),
            Self::BadEntry { which, problem } => write!(f, "statistics entry {which}: {problem}"),
        }
    }
}

impl std::error::Error for CumdistError {}

/// Per-site counts and the total read from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The sites and their counts, in input order.
    pub sites: Vec<(String, u64)>,
    /// The `All_Sites`/`ALLSITES` count, when the input has one.
    pub total: Option<u64>,
}

fn count_of(value: &Value, which: impl Fn() -> String) -> Result<u64, CumdistError> {
    let bad = |problem: String| CumdistError::BadEntry {
        which: which(),
        problem,
    };
    match value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| bad(format!("count {n} is not a whole number ≥ 0"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| bad(format!("count {s:?} is not a whole number ≥ 0"))),
        Value::Null => Err(bad("has no count".to_owned())),
        _ => Err(bad(
            "count is neither a number nor a numeric string".to_owned()
        )),
    }
}

fn is_total(site: &str) -> bool {
    site == "All_Sites" || site == "ALLSITES"
}

/// Reads the statistics from crosscor's output or the dict form.
pub fn parse(input: &[u8]) -> Result<Stats, CumdistError> {
    let doc: Value =
        serde_json::from_slice(input).map_err(|e| CumdistError::NotJson(e.to_string()))?;
    let mut stats = Stats {
        sites: Vec::new(),
        total: None,
    };
    if let Some(list) = doc.get("matching_stats") {
        let Value::Array(list) = list else {
            return Err(CumdistError::BadEntry {
                which: "matching_stats".to_owned(),
                problem: "is not a list".to_owned(),
            });
        };
        for (i, row) in list.iter().enumerate() {
            let Some(site) = row.get("site").and_then(Value::as_str) else {
                return Err(CumdistError::BadEntry {
                    which: format!("#{}", i + 1),
                    problem: "has no \"site\" string".to_owned(),
                });
            };
            let count = count_of(row.get("count").unwrap_or(&Value::Null), || {
                format!("{site:?}")
            })?;
            if is_total(site) {
                stats.total = Some(count);
            } else {
                stats.sites.push((site.to_owned(), count));
            }
        }
        return Ok(stats);
    }
    if let Some(dict) = doc.get("matchingstats") {
        let Value::Object(dict): &Value = dict else {
            return Err(CumdistError::BadEntry {
                which: "matchingstats".to_owned(),
                problem: "is not an object".to_owned(),
            });
        };
        let dict: &Map<String, Value> = dict;
        for (site, value) in dict {
            let count = count_of(value, || format!("{site:?}"))?;
            if is_total(site) {
                stats.total = Some(count);
            } else {
                stats.sites.push((site.clone(), count));
            }
        }
        return Ok(stats);
    }
    Err(CumdistError::NoStats)
}

/// The cumulative distribution text for `input` (see the module docs).
pub fn render(input: &[u8]) -> Result<String, CumdistError> {
    let stats = parse(input)?;
    let mut sites = stats.sites;
    sites.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total = stats
        .total
        .unwrap_or_else(|| sites.iter().map(|(_, n)| n).sum());
    let pct = |n: u64| {
        if total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / total as f64
        }
    };
    let mut out = String::new();
    let mut running = 0u64;
    for (site, count) in &sites {
        running += count;
        out.push_str(&format!(
            "{site} {count} {:.2} {:.2}\n",
            pct(*count),
            pct(running)
        ));
    }
    out.push_str(&format!("ALLSITES {total} 100.00\n"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_crosscor_output() {
        let input = br#"{"program":"crosscor","date":"Sun, 02 Feb 2014 06:09:34 +0000","iff":"foe",
            "matching":[],"nonmatching":[],
            "matching_stats":[{"site":"SEA","count":"3","percent":"50.00"},
                              {"site":"ARIN","count":"2","percent":"33.33"},
                              {"site":"DOC","count":1,"percent":"16.67"},
                              {"site":"All_Sites","count":"6","percent":"100.00"}]}"#;
        assert_eq!(
            render(input).unwrap(),
            "SEA 3 50.00 50.00\nARIN 2 33.33 83.33\nDOC 1 16.67 100.00\nALLSITES 6 100.00\n"
        );
    }

    #[test]
    fn reads_the_dict_form_and_orders_ties_by_name() {
        let input = br#"{"matchingstats": {"B": 1, "A": 1, "C": 2, "ALLSITES": 4}}"#;
        assert_eq!(
            render(input).unwrap(),
            "C 2 50.00 50.00\nA 1 25.00 75.00\nB 1 25.00 100.00\nALLSITES 4 100.00\n"
        );
    }

    #[test]
    fn total_defaults_to_the_sum_and_zero_is_safe() {
        let input = br#"{"matching_stats":[{"site":"A","count":"1"},{"site":"B","count":"3"}]}"#;
        assert_eq!(
            render(input).unwrap(),
            "B 3 75.00 75.00\nA 1 25.00 100.00\nALLSITES 4 100.00\n"
        );
        let empty = br#"{"matching_stats":[{"site":"All_Sites","count":"0","percent":"100.00"}]}"#;
        assert_eq!(render(empty).unwrap(), "ALLSITES 0 100.00\n");
    }

    #[test]
    fn clear_errors() {
        let e = render(b"not json").unwrap_err();
        assert!(e.to_string().starts_with("input is not JSON"), "{e}");
        let e = render(br#"{"matching": []}"#).unwrap_err();
        assert_eq!(e, CumdistError::NoStats);
        assert!(e.to_string().contains("neither crosscor output"));
        let e = render(br#"{"matching_stats":[{"site":"A","count":"many"}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "statistics entry \"A\": count \"many\" is not a whole number ≥ 0"
        );
        let e = render(br#"{"matching_stats":[{"count":"1"}]}"#).unwrap_err();
        assert_eq!(e.to_string(), "statistics entry #1: has no \"site\" string");
        let e = render(br#"{"matchingstats":[1]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "statistics entry matchingstats: is not an object"
        );
        let e = render(br#"{"matchingstats":{"A":-1}}"#).unwrap_err();
        assert!(e.to_string().contains("\"A\""), "{e}");
    }

    #[test]
    fn reads_what_crosscor_writes() {
        use crate::addr::NetMap;
        use crate::services::crosscor::{report, Iff};
        let map = NetMap::parse(b"192.0.2.0/24|SEA|sea\n198.51.100.0/24|ARIN|arin\n")
            .unwrap()
            .map;
        let json = report(
            b"192.0.2.1 192.0.2.2 198.51.100.3 203.0.113.4",
            &map,
            Iff::Foe,
            0,
        );
        assert_eq!(
            render(json.as_bytes()).unwrap(),
            "SEA 2 66.67 66.67\nARIN 1 33.33 100.00\nALLSITES 3 100.00\n"
        );
    }
}
