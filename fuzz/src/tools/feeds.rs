//! Indicator feeds (cifbulk) and flow records (rwfind).

use std::collections::BTreeSet;
use std::path::Path;

use ipnet::IpNet;
use prisem_tools::flows::{self, Flow};
use prisem_tools::intel::{self, Item};
use serde_json::Value;

/// The line numbers a store's warnings name (`file:line: …`).
fn warned_lines(warnings: &[String], file: &str) -> BTreeSet<u64> {
    warnings
        .iter()
        .filter_map(|w| {
            w.strip_prefix(file)?
                .strip_prefix(':')?
                .split(':')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// An indicator feed: octet 0 bit 0 picks CSV (set) or JSON lines; the rest is the file.
///
/// Checks that a classified item classifies again the same from its canonical text; that every
/// JSON line the store did not report is loaded and found again by looking its indicator up,
/// within its own time span; that every line is either loaded or reported; and that lookups of
/// every field of every line answer records inside the window asked for.
pub fn check_intel_feed(data: &[u8]) {
    let Some((&selector, feed)) = data.split_first() else {
        return;
    };
    let mut store = intel::Store::default();
    let text = String::from_utf8_lossy(feed);
    if selector & 1 == 1 {
        store.add_csv(Path::new("feed.csv"), feed);
    } else {
        store.add_jsonl(Path::new("feed.jsonl"), feed);
        let warned = warned_lines(&store.warnings, "feed.jsonl");
        let mut loaded = 0;
        for (n, line) in feed.split(|&b| b == b'\n').enumerate() {
            let line_text = String::from_utf8_lossy(line);
            let line_text = line_text.trim();
            if line_text.is_empty()
                || line_text.starts_with('#')
                || warned.contains(&(n as u64 + 1))
            {
                continue;
            }
            loaded += 1;
            let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line_text) else {
                panic!("line {} loaded but is no JSON object", n + 1);
            };
            let indicator = match obj.get("indicator") {
                Some(Value::String(s)) => s.trim().to_owned(),
                Some(Value::Number(v)) => v.to_string(),
                _ => panic!("line {} loaded without an indicator", n + 1),
            };
            let item = Item::classify(&indicator)
                .unwrap_or_else(|| panic!("loaded indicator {indicator:?} does not classify"));
            let hits = store.lookup(&item, None, None);
            let Some(record) = hits.iter().find(|r| r.indicator == indicator) else {
                panic!("indicator {indicator:?} of line {} not found", n + 1);
            };
            assert!(record.first_seen <= record.last_seen);
            let windowed = store.lookup(&item, Some(record.first_seen), Some(record.last_seen));
            assert!(
                windowed.iter().any(|r| r.indicator == indicator),
                "not found in its own span"
            );
        }
        assert_eq!(loaded, store.len(), "loaded lines and records disagree");
    }
    for word in text.split(|c: char| c == ',' || c == '"' || c.is_whitespace()) {
        let Some(item) = Item::classify(word) else {
            continue;
        };
        check_classify_stable(&item);
        let (stime, etime) = (Some(1_400_000_000), Some(1_500_000_000));
        for r in store.lookup(&item, stime, etime) {
            assert!(r.within(stime, etime), "record outside the window: {r:?}");
        }
        let _ = store.lookup(&item, None, None);
    }
    let _ = intel::parse_time(&text);
}

/// An item's canonical text classifies to the same item.
fn check_classify_stable(item: &Item) {
    let canonical = match item {
        Item::Ip(ip) => ip.to_string(),
        Item::Net(net) => net.to_string(),
        Item::Domain(d) | Item::Hash(d) | Item::Url(d, _) => d.clone(),
    };
    assert_eq!(
        Item::classify(&canonical).as_ref(),
        Some(item),
        "{canonical:?} reclassified"
    );
}

/// Flows written as `rwcut --delimited='|'` would write them.
pub(crate) fn rwcut(flows: &[&Flow]) -> String {
    let mut out = String::from("sIP|dIP|sPort|dPort|protocol|packets|bytes|flags|sTime|duration\n");
    for f in flows {
        out.push_str(&format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}\n",
            f.sip,
            f.dip,
            f.sport,
            f.dport,
            f.proto,
            f.packets,
            f.bytes,
            f.flags,
            f.stime_text(),
            f.dur_text()
        ));
    }
    out
}

/// A flow file (rwcut text or nfdump CSV, told apart by its header).
///
/// Checks that every line after the header is loaded or reported; that the sorted store's span
/// covers every flow, so a search of the whole span for every address finds them all; and that
/// the flows written back as rwcut text load to the same flows.
pub fn check_flow_records(data: &[u8]) {
    let mut store = flows::Store::default();
    store.add(Path::new("flows.txt"), data);
    store.sort();
    let all: Vec<IpNet> = ["0.0.0.0/0", "::/0"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    let Some((first, last)) = store.span() else {
        assert!(store.is_empty());
        return;
    };
    assert!(first <= last);
    let found = store.search(&all, first, last);
    assert_eq!(
        found.len(),
        store.len(),
        "a search of the whole span missed flows"
    );
    assert!(
        found.windows(2).all(|w| w[0].stime_ms <= w[1].stime_ms),
        "flows out of order"
    );
    let text = rwcut(&found);
    let mut again = flows::Store::default();
    again.add(Path::new("again.txt"), text.as_bytes());
    again.sort();
    assert!(
        again.warnings.is_empty(),
        "written flows do not load: {:?}",
        again.warnings
    );
    let span = again.span().unwrap_or((first, last));
    let reloaded = again.search(&all, span.0, span.1);
    assert_eq!(reloaded, found, "flows changed through rwcut text");
}
