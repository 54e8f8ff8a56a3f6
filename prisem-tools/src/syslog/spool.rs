//! The on-disk spool: append-only segment files holding the messages that did not fit in the
//! in-memory buffer while the broker was away or slow, and whatever the broker had not
//! confirmed when the bridge stopped. Records are read back in order; a segment is deleted
//! only once the broker confirmed every record in it.
//!
//! Every message carries an id, increasing across restarts, in the order it was received:
//! publishing and confirming follow that order, so "every id up to N is confirmed" is one
//! number, kept in the file `confirmed` so that a restart does not publish again what the
//! broker already had.
//!
//! Segments are `spool-<first id, 20 digits>.seg`, one JSON object a line
//! (`{"i": id, "k": routing key, "h": [[name, value], …], "b": body}`), each record written
//! with one `write` call. Durability (the fsync policy): the segment being written is
//! fdatasynced when it is closed (it reached its size, the spool was read to its end, or the
//! bridge stops) and otherwise by [`Spool::sync_handle`] at the caller's interval (the bridge
//! does it every second); a new segment's directory entry is fsynced when the file is made.
//! So a crash of the bridge loses nothing already written, and a crash of the machine loses
//! at most the records of the last interval. A torn last line (a crash during its write) is
//! skipped when the spool is opened.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::parse::Outgoing;

/// One spooled message and its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The message's id (its place in the order of reception).
    pub id: u64,
    /// The message.
    pub msg: Outgoing,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    last_id: u64,
    bytes: u64,
    /// Records in the file.
    records: u64,
    /// Records read back.
    read: u64,
    reader: Option<BufReader<fs::File>>,
    /// Open for appending (the newest segment only).
    writer: Option<fs::File>,
}

/// The spool directory: its segments, oldest first, the write position and the read position.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limit: u64,
    segment_max: u64,
    segments: VecDeque<Segment>,
    bytes: u64,
    unread: u64,
    /// Every id up to this one is confirmed.
    confirmed: u64,
    confirmed_saved: u64,
    dirty: bool,
    last_id: u64,
}

fn encode(id: u64, m: &Outgoing) -> io::Result<Vec<u8>> {
    let rec = json!({
        "i": id,
        "k": m.routing_key,
        "h": m.headers,
        "b": String::from_utf8_lossy(&m.body),
    });
    let mut line = serde_json::to_vec(&rec)?;
    line.push(b'\n');
    Ok(line)
}

fn decode(line: &str) -> Option<Record> {
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
    Some(Record {
        id: v.get("i")?.as_u64()?,
        msg: Outgoing {
            routing_key: v.get("k")?.as_str()?.to_string(),
            headers,
            body: v.get("b")?.as_str()?.as_bytes().to_vec(),
        },
    })
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Spool {
    /// Opens (creating it if missing) the spool in `dir`, holding at most `limit` bytes. The
    /// existing segments are checked: a record that cannot be read is an error naming the file
    /// and line, except a torn last line, which is skipped. Records the `confirmed` file says
    /// the broker already has are not read again.
    pub fn open(dir: &Path, limit: u64) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let confirmed = match fs::read_to_string(dir.join("confirmed")) {
            Ok(s) => s.trim().parse().map_err(|_| {
                invalid(format!(
                    "{}: not a message id",
                    dir.join("confirmed").display()
                ))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("spool-") && n.ends_with(".seg"))
            })
            .collect();
        paths.sort();
        let mut spool = Self {
            dir: dir.to_path_buf(),
            limit,
            segment_max: (limit / 8).clamp(4096, 32 << 20),
            segments: VecDeque::new(),
            bytes: 0,
            unread: 0,
            confirmed,
            confirmed_saved: confirmed,
            dirty: false,
            last_id: confirmed,
        };
        for path in paths {
            let data = fs::read(&path)?;
            let text = String::from_utf8_lossy(&data);
            let mut records = 0;
            let mut skip = 0;
            let mut last_id = 0;
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            for (i, line) in lines.iter().enumerate() {
                match decode(line) {
                    Some(r) => {
                        records += 1;
                        if r.id <= confirmed {
                            skip += 1;
                        }
                        last_id = last_id.max(r.id);
                    }
                    None if i + 1 == lines.len() && !line.ends_with('\n') => {
                        tracing::warn!("{}: skipping a torn last record", path.display());
                    }
                    None => {
                        return Err(invalid(format!(
                            "{} line {}: not a spool record",
                            path.display(),
                            i + 1
                        )))
                    }
                }
            }
            if records == skip {
                // Confirmed already (or empty): only the deletion was missed.
                let _ = fs::remove_file(&path);
                continue;
            }
            spool.bytes += data.len() as u64;
            spool.unread += records - skip;
            spool.last_id = spool.last_id.max(last_id);
            let mut reader = BufReader::new(fs::File::open(&path)?);
            let mut line = String::new();
            for _ in 0..skip {
                line.clear();
                reader.read_line(&mut line)?;
            }
            spool.segments.push_back(Segment {
                path,
                last_id,
                bytes: data.len() as u64,
                records,
                read: skip,
                reader: Some(reader),
                writer: None,
            });
        }
        Ok(spool)
    }

    /// The highest id in the spool (or confirmed before): new ids must be above it.
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// Bytes of the segment files.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records not yet read back.
    pub fn unread(&self) -> u64 {
        self.unread
    }

    /// Segment files.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    fn new_segment(&mut self, first_id: u64) -> io::Result<()> {
        let path = self.dir.join(format!("spool-{first_id:020}.seg"));
        let f = fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        sync_dir(&self.dir)?;
        self.segments.push_back(Segment {
            path,
            last_id: first_id,
            bytes: 0,
            records: 0,
            read: 0,
            reader: None,
            writer: Some(f),
        });
        Ok(())
    }

    /// Appends one record; `false` (nothing written) when it would take the spool past its
    /// limit. Ids must increase.
    pub fn append(&mut self, id: u64, msg: &Outgoing) -> io::Result<bool> {
        let line = encode(id, msg)?;
        let len = line.len() as u64;
        if self.bytes + len > self.limit {
            return Ok(false);
        }
        let rotate = match self.segments.back() {
            Some(s) => s.writer.is_none() || s.bytes + len > self.segment_max,
            None => true,
        };
        if rotate {
            self.seal()?;
            self.new_segment(id)?;
        }
        let seg = self
            .segments
            .back_mut()
            .ok_or_else(|| io::Error::other("no open segment"))?;
        let w = seg
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("no open segment"))?;
        w.write_all(&line)?;
        seg.bytes += len;
        seg.records += 1;
        seg.last_id = id;
        self.bytes += len;
        self.unread += 1;
        self.last_id = self.last_id.max(id);
        self.dirty = true;
        Ok(true)
    }

    /// Closes the segment being written (after an fdatasync), so the next record starts a new
    /// one.
    pub fn seal(&mut self) -> io::Result<()> {
        if let Some(seg) = self.segments.back_mut() {
            if let Some(w) = seg.writer.take() {
                w.sync_data()?;
            }
        }
        self.dirty = false;
        Ok(())
    }

    /// A handle to fdatasync for the segment written since the last call (`None` if nothing
    /// was), so the caller can sync without holding the spool.
    pub fn sync_handle(&mut self) -> io::Result<Option<fs::File>> {
        if !std::mem::take(&mut self.dirty) {
            return Ok(None);
        }
        match self.segments.back().and_then(|s| s.writer.as_ref()) {
            Some(w) => Ok(Some(w.try_clone()?)),
            None => Ok(None),
        }
    }

    /// The next record not yet read, oldest first.
    pub fn read_next(&mut self) -> io::Result<Option<Record>> {
        let Some(seg) = self.segments.iter_mut().find(|s| s.read < s.records) else {
            return Ok(None);
        };
        if seg.reader.is_none() {
            seg.reader = Some(BufReader::new(fs::File::open(&seg.path)?));
        }
        let reader = seg
            .reader
            .as_mut()
            .ok_or_else(|| io::Error::other("no reader"))?;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        seg.read += 1;
        self.unread -= 1;
        if seg.read == seg.records && seg.writer.is_none() {
            seg.reader = None;
        }
        decode(&line).map(Some).ok_or_else(|| {
            invalid(format!(
                "{} record {}: not a spool record",
                seg.path.display(),
                seg.read
            ))
        })
    }

    /// Every record up to `id` is confirmed by the broker: deletes the closed segments that
    /// hold nothing else.
    pub fn confirm(&mut self, id: u64) {
        self.confirmed = self.confirmed.max(id);
        while let Some(seg) = self.segments.front() {
            if seg.writer.is_some() || seg.read < seg.records || seg.last_id > self.confirmed {
                break;
            }
            if let Err(e) = fs::remove_file(&seg.path) {
                tracing::warn!("cannot remove spool segment {}: {e}", seg.path.display());
            }
            self.bytes -= seg.bytes;
            self.segments.pop_front();
        }
    }

    /// Writes the confirmed id to the `confirmed` file if it moved (written to a temporary
    /// file, synced and renamed).
    pub fn save_confirmed(&mut self) -> io::Result<()> {
        if self.confirmed == self.confirmed_saved {
            return Ok(());
        }
        let tmp = self.dir.join(".confirmed.tmp");
        let mut f = fs::File::create(&tmp)?;
        writeln!(f, "{}", self.confirmed)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join("confirmed"))?;
        self.confirmed_saved = self.confirmed;
        Ok(())
    }

    /// Writes `records` (older than everything still unread in the spool, and newer than
    /// everything already read) as a closed segment of their own, whatever the limit: these
    /// are the messages in memory when the bridge stops.
    pub fn keep(&mut self, records: &[Record]) -> io::Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let name = format!("spool-{:020}.seg", first.id);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut bytes = 0;
        {
            let mut f = io::BufWriter::new(fs::File::create(&tmp)?);
            for r in records {
                let line = encode(r.id, &r.msg)?;
                bytes += line.len() as u64;
                f.write_all(&line)?;
            }
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(&name))?;
        sync_dir(&self.dir)?;
        self.bytes += bytes;
        Ok(())
    }
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

    fn seg_files(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".seg")
            })
            .count()
    }

    #[test]
    fn append_read_confirm_delete() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.segment_max, 4096 * 32);
        s.segment_max = 300; // a few records a segment
        for i in 1..=10 {
            assert!(s.append(i, &msg(i as usize)).unwrap());
        }
        assert!(s.segments() > 2, "{}", s.segments());
        assert_eq!(s.unread(), 10);
        let mut got = vec![];
        while let Some(r) = s.read_next().unwrap() {
            got.push(r);
            // Reading the open segment while it grows.
            if got.len() == 9 {
                assert!(s.append(11, &msg(11)).unwrap());
            }
        }
        assert_eq!(
            got.iter().map(|r| r.id).collect::<Vec<_>>(),
            (1..=11).collect::<Vec<_>>()
        );
        assert_eq!(got[3].msg, msg(4));
        let before = s.bytes();
        s.confirm(5);
        assert!(s.bytes() < before);
        s.seal().unwrap();
        s.confirm(11);
        assert_eq!(s.bytes(), 0);
        assert_eq!(seg_files(dir.path()), 0);
    }

    #[test]
    fn limit_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 150).unwrap();
        assert!(s.append(1, &msg(1)).unwrap());
        assert!(!s.append(2, &msg(2)).unwrap());
        assert_eq!(s.unread(), 1);
    }

    #[test]
    fn reopen_skips_confirmed_and_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
            for i in 1..=4 {
                s.append(i, &msg(i as usize)).unwrap();
            }
            s.read_next().unwrap();
            s.read_next().unwrap();
            s.confirm(2);
            s.save_confirmed().unwrap();
            s.seal().unwrap();
            s.keep(&[Record { id: 7, msg: msg(7) }]).unwrap();
        }
        // A crash while writing a record.
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(format!("spool-{:020}.seg", 7)))
            .unwrap();
        f.write_all(b"{\"i\":8,\"k\":").unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.unread(), 3);
        assert_eq!(s.last_id(), 7);
        let ids: Vec<u64> = std::iter::from_fn(|| s.read_next().unwrap())
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![3, 4, 7]);
    }

    #[test]
    fn bad_record_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("spool-1-1.seg"),
            "{\"i\":1,\"k\":\"a\",\"h\":[],\"b\":\"x\"}\nnope\n",
        )
        .unwrap();
        let e = Spool::open(dir.path(), 1 << 20).unwrap_err().to_string();
        assert!(e.contains("spool-1-1.seg line 2"), "{e}");
    }
}
