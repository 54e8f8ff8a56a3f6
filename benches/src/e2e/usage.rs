//! Wall time and CPU time of this process from `getrusage(RUSAGE_SELF)`, and its peak memory.
//!
//! `RUSAGE_SELF` sums every thread of the process (runtime workers, a library's own I/O
//! thread), so a client's background work counts as its cost.

use std::io;
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;

fn to_duration(tv: TimeVal) -> Duration {
    let secs = u64::try_from(tv.tv_sec()).unwrap_or(0);
    let micros = u64::try_from(tv.tv_usec()).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

fn cpu_now() -> io::Result<(Duration, Duration)> {
    let u = getrusage(UsageWho::RUSAGE_SELF).map_err(io::Error::from)?;
    Ok((to_duration(u.user_time()), to_duration(u.system_time())))
}

/// Peak resident set size of this process so far, in KiB.
///
/// Read from `VmHWM` in `/proc/self/status`, the high-water mark of this process's own
/// address space. `ru_maxrss` is not used where `/proc` is there: Linux carries the
/// high-water mark of the address space a process replaced at `execve` into it, so a worker
/// spawned by a large parent would report the parent's size.
pub(crate) fn max_rss_kib() -> io::Result<u64> {
    match std::fs::read_to_string("/proc/self/status") {
        Ok(status) => vm_hwm_kib(&status).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "no VmHWM in /proc/self/status")
        }),
        Err(_) => {
            let u = getrusage(UsageWho::RUSAGE_SELF).map_err(io::Error::from)?;
            Ok(u64::try_from(u.max_rss()).unwrap_or(0))
        }
    }
}

/// The `VmHWM:   1234 kB` line of a `/proc/<pid>/status` text, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

/// What one measured interval cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Wall-clock time.
    pub(crate) elapsed: Duration,
    /// User CPU time of the whole process.
    pub(crate) user: Duration,
    /// System CPU time of the whole process.
    pub(crate) sys: Duration,
}

/// A started measurement; [`Meter::stop`] returns the interval's [`Sample`].
#[derive(Debug)]
pub(crate) struct Meter {
    wall: Instant,
    user: Duration,
    sys: Duration,
}

impl Meter {
    /// Reads the clocks now.
    pub(crate) fn start() -> io::Result<Self> {
        let (user, sys) = cpu_now()?;
        Ok(Self {
            wall: Instant::now(),
            user,
            sys,
        })
    }

    /// Wall and CPU time since [`Meter::start`].
    pub(crate) fn stop(&self) -> io::Result<Sample> {
        let elapsed = self.wall.elapsed();
        let (user, sys) = cpu_now()?;
        Ok(Sample {
            elapsed,
            user: user.saturating_sub(self.user),
            sys: sys.saturating_sub(self.sys),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_hwm() {
        let status = "Name:\te2e\nVmPeak:\t  20000 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(12345));
        assert_eq!(vm_hwm_kib("VmRSS:\t 100 kB\n"), None);
        assert_eq!(vm_hwm_kib("VmHWM:\t 1 MB\n"), None);
        assert_eq!(vm_hwm_kib("VmHWM:\t x kB\n"), None);
    }

    #[test]
    fn busy_loop_costs_user_time_and_rss_is_reported() {
        let meter = Meter::start().unwrap();
        // Spin until the process has used measurable CPU (getrusage ticks at ≤ 4 ms).
        let mut x = 0u64;
        let sample = loop {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            let s = meter.stop().unwrap();
            if s.user + s.sys >= Duration::from_millis(20) {
                break s;
            }
        };
        std::hint::black_box(x);
        assert!(sample.elapsed >= sample.user.min(sample.elapsed));
        assert!(sample.user + sample.sys >= Duration::from_millis(20));
        // A buffer larger than the peak so far, every page touched, must raise the peak.
        let before = max_rss_kib().unwrap();
        assert!(before > 0);
        let len = usize::try_from(before).unwrap() * 1024 + (16 << 20);
        let buf = vec![1u8; len];
        std::hint::black_box(&buf);
        let after = max_rss_kib().unwrap();
        assert!(
            after >= before + 16 * 1024,
            "before {before} KiB, after {after} KiB"
        );
    }
}
