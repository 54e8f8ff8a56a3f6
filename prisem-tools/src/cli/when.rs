//! The date options of the cifbulk and rwfind clients: `-D DAYS`, `-S/-E DATE`,
//! `--stime/--etime SECONDS`, turned into the request's `stime` and `etime`.
//!
//! The originals mixed these up (a start date without an end, days counted from the wrong end,
//! local and UTC dates confused). Here: `-D DAYS` is the last DAYS days up to now; `-S` and `-E`
//! take a date (`2014-01-03`, `2014/01/03`, `2014/01/03:13`, `2014-01-03T13:22:00Z`, or Unix
//! seconds), read in UTC, and `-E` of a bare date means the *end* of that day; `--stime` and
//! `--etime` are Unix seconds. A start without an end runs to now; an end without a start has
//! no start. A start after the end is refused before anything is sent. `-D` cannot be combined
//! with the others.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// The window options as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowArgs {
    /// `-D`: the last N days.
    pub days: Option<u32>,
    /// `-S`: start date.
    pub start_date: Option<String>,
    /// `-E`: end date.
    pub end_date: Option<String>,
    /// `--stime`: start, Unix seconds.
    pub stime: Option<i64>,
    /// `--etime`: end, Unix seconds.
    pub etime: Option<i64>,
}

/// A time window in Unix seconds; `None` is unbounded on that side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Start.
    pub stime: Option<i64>,
    /// End.
    pub etime: Option<i64>,
}

/// Which end of a day a bare date stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    Start,
    End,
}

/// Parses a date option (see the module docs for the forms).
fn parse_date(text: &str, edge: Edge) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && t.len() > 8 {
        return t.parse().map_err(|_| format!("{text:?} is out of range"));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y/%m/%d:%H:%M:%S",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(Utc.from_utc_datetime(&dt).timestamp());
        }
    }
    // SiLK's hour form: YYYY/MM/DD:HH covers that hour.
    if let Some((day, hour)) = t.split_once(':') {
        if let (Ok(date), Ok(h)) = (
            NaiveDate::parse_from_str(day, "%Y/%m/%d"),
            hour.parse::<u32>(),
        ) {
            if let Some(dt) = date.and_hms_opt(h, 0, 0) {
                let start = Utc.from_utc_datetime(&dt).timestamp();
                return Ok(if edge == Edge::End {
                    start + 3599
                } else {
                    start
                });
            }
        }
    }
    for fmt in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(date) = NaiveDate::parse_from_str(t, fmt) {
            let Some(midnight) = date.and_hms_opt(0, 0, 0) else {
                break;
            };
            let start = Utc.from_utc_datetime(&midnight).timestamp();
            return Ok(if edge == Edge::End {
                start + 86_399
            } else {
                start
            });
        }
    }
    Err(format!(
        "{text:?} is not a date (use 2014-01-03, 2014/01/03:13, 2014-01-03T13:22:00Z or Unix seconds)"
    ))
}

impl WindowArgs {
    /// The window these options describe, with `now` as the end of `-D` and of an open start.
    pub fn window(&self, now: i64) -> Result<Window, String> {
        if let Some(days) = self.days {
            if self.start_date.is_some()
                || self.end_date.is_some()
                || self.stime.is_some()
                || self.etime.is_some()
            {
                return Err("-D cannot be combined with -S, -E, --stime or --etime".into());
            }
            if days == 0 {
                return Err("-D needs at least 1 day".into());
            }
            return Ok(Window {
                stime: Some(now - i64::from(days) * 86_400),
                etime: Some(now),
            });
        }
        if self.start_date.is_some() && self.stime.is_some() {
            return Err("give the start once: -S or --stime".into());
        }
        if self.end_date.is_some() && self.etime.is_some() {
            return Err("give the end once: -E or --etime".into());
        }
        let stime = match &self.start_date {
            Some(d) => Some(parse_date(d, Edge::Start).map_err(|e| format!("-S: {e}"))?),
            None => self.stime,
        };
        let mut etime = match &self.end_date {
            Some(d) => Some(parse_date(d, Edge::End).map_err(|e| format!("-E: {e}"))?),
            None => self.etime,
        };
        if stime.is_some() && etime.is_none() {
            etime = Some(now);
        }
        if let (Some(s), Some(e)) = (stime, etime) {
            if s > e {
                return Err(format!("the start ({s}) is after the end ({e})"));
            }
        }
        Ok(Window { stime, etime })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_391_321_374; // 2014-02-02T06:09:34Z

    fn w(args: WindowArgs) -> Result<Window, String> {
        args.window(NOW)
    }

    #[test]
    fn days_count_back_from_now() {
        let got = w(WindowArgs {
            days: Some(2),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(got.stime, Some(NOW - 172_800));
        assert_eq!(got.etime, Some(NOW));
        assert!(w(WindowArgs {
            days: Some(1),
            stime: Some(1),
            ..Default::default()
        })
        .unwrap_err()
        .contains("cannot be combined"));
    }

    #[test]
    fn dates_in_every_form() {
        let got = w(WindowArgs {
            start_date: Some("2014-01-03".into()),
            end_date: Some("2014/01/03".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(got.stime, Some(1_388_707_200));
        assert_eq!(
            got.etime,
            Some(1_388_707_200 + 86_399),
            "an end date covers its day"
        );
        let got = w(WindowArgs {
            start_date: Some("2014/01/03:13".into()),
            end_date: Some("2014-01-04T00:00:00Z".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(got.stime, Some(1_388_707_200 + 13 * 3600));
        assert_eq!(got.etime, Some(1_388_793_600));
        let got = w(WindowArgs {
            start_date: Some("1388707200".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            got,
            Window {
                stime: Some(1_388_707_200),
                etime: Some(NOW)
            }
        );
    }

    #[test]
    fn bad_and_backwards_windows_are_refused() {
        let e = w(WindowArgs {
            start_date: Some("yesterday".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.starts_with("-S:") && e.contains("not a date"), "{e}");
        let e = w(WindowArgs {
            stime: Some(200),
            etime: Some(100),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("after the end"), "{e}");
        let e = w(WindowArgs {
            start_date: Some("2014-01-03".into()),
            stime: Some(1),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("once"), "{e}");
        assert_eq!(w(WindowArgs::default()).unwrap(), Window::default());
        let only_end = w(WindowArgs {
            etime: Some(5),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            only_end,
            Window {
                stime: None,
                etime: Some(5)
            }
        );
    }
}
