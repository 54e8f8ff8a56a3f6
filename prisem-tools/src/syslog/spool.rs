//! The on-disk spool: messages the broker had not confirmed when the bridge stopped (or lost
//! the broker for good) are written to a segment file, and replayed first, in order, at the
//! next start. A segment is deleted only once the broker confirmed every message in it.
//!
//! Segments are `spool-<unix nanoseconds>-<pid>.seg`, one JSON object a line
//! (`{"k": routing key, "h": [[name, value], …], "b": body}`), written to a temporary file,
//! fsynced, renamed into place and the directory fsynced: a segment is either whole or absent.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::parse::Outgoing;

/// Writes `msgs` to a new segment in `dir` (created if missing); `None` if there was nothing
/// to write.
pub fn save(dir: &Path, msgs: &[Outgoing]) -> io::Result<Option<PathBuf>> {
    if msgs.is_empty() {
        return Ok(None);
    }
    fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("spool-{nanos:024}-{}.seg", std::process::id());
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = io::BufWriter::new(fs::File::create(&tmp)?);
        for m in msgs {
            let rec = json!({
                "k": m.routing_key,
                "h": m.headers,
                "b": String::from_utf8_lossy(&m.body),
            });
            serde_json::to_writer(&mut f, &rec)?;
            f.write_all(b"\n")?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    let path = dir.join(name);
    fs::rename(&tmp, &path)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(Some(path))
}

fn record(line: &str) -> Option<Outgoing> {
    let v: Value = serde_json::from_str(line).ok()?;
    let headers = v
        .get("h")?
        .as_array()?
        .iter()
        .map(|p| {
            let p = p.as_array()?;
            Some((
                p.first()?.as_str()?.to_string(),
                p.get(1)?.as_str()?.to_string(),
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Outgoing {
        routing_key: v.get("k")?.as_str()?.to_string(),
        headers,
        body: v.get("b")?.as_str()?.as_bytes().to_vec(),
    })
}

/// The segments in `dir`, oldest first, with their messages. A line that cannot be read is an
/// error naming the file and line (the file is left alone for an operator).
pub fn load(dir: &Path) -> io::Result<Vec<(PathBuf, Vec<Outgoing>)>> {
    let mut paths: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("spool-") && n.ends_with(".seg"))
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    paths.sort();
    let mut out = vec![];
    for p in paths {
        let mut msgs = vec![];
        for (i, line) in BufReader::new(fs::File::open(&p)?).lines().enumerate() {
            let line = line?;
            let m = record(&line).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} line {}: not a spool record", p.display(), i + 1),
                )
            })?;
            msgs.push(m);
        }
        out.push((p, msgs));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize) -> Outgoing {
        Outgoing {
            routing_key: format!("k{i}"),
            headers: vec![("program".into(), "p".into()), ("peer".into(), "x".into())],
            body: format!("{{\"raw\":\"line {i}\\nnext\"}}").into_bytes(),
        }
    }

    #[test]
    fn segments_round_trip_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<_> = (0..3).map(msg).collect();
        let b: Vec<_> = (3..5).map(msg).collect();
        save(dir.path(), &a).unwrap().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        save(dir.path(), &b).unwrap().unwrap();
        assert!(save(dir.path(), &[]).unwrap().is_none());
        let got = load(dir.path()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, a);
        assert_eq!(got[1].1, b);
    }

    #[test]
    fn bad_record_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("spool-1-1.seg"),
            "{\"k\":\"a\",\"h\":[],\"b\":\"x\"}\nnope\n",
        )
        .unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("spool-1-1.seg line 2"), "{e}");
        assert!(load(&dir.path().join("missing")).unwrap().is_empty());
    }
}
