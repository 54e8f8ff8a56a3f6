//! Wall time and CPU time of this process from `getrusage(RUSAGE_SELF)`, its peak memory, the
//! CPU time of another process (the broker) from `/proc/<pid>/stat`, and how idle the whole
//! machine was from `/proc/stat`.
//!
//! `RUSAGE_SELF` sums every thread of the process (runtime workers, a library's own I/O
//! thread), so a client's background work counts as its cost. `/proc/<pid>/stat` likewise sums
//! every thread of the broker's process (all of the Erlang VM's schedulers).

use std::io;
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;
use nix::unistd::{sysconf, SysconfVar};

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

/// CPU time (user + system, every thread) that process `pid` has used so far, from
/// `/proc/<pid>/stat`.
pub(crate) fn process_cpu(pid: u32) -> io::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {path}: {e}")))?;
    let ticks = stat_cpu_ticks(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no utime/stime in {path}"),
        )
    })?;
    Ok(ticks_to_duration(ticks, clock_ticks()))
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat`'s times (`getconf CLK_TCK`); 100,
/// Linux's value nearly everywhere, if the system does not say.
fn clock_ticks() -> u64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(n)) if n > 0 => u64::try_from(n).unwrap_or(100),
        _ => 100,
    }
}

fn ticks_to_duration(ticks: u64, per_sec: u64) -> Duration {
    let per_sec = per_sec.max(1);
    Duration::from_secs(ticks / per_sec)
        + Duration::from_nanos((ticks % per_sec) * 1_000_000_000 / per_sec)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks.
///
/// Field 2, the command name, is in parentheses and may hold spaces and parentheses itself,
/// so fields are counted from the last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // The first field after `)` is field 3 (state), so field 14 is the twelfth.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// Idle and total time of all CPUs together, in clock ticks since boot, from `/proc/stat`;
/// `None` where there is no such file.
fn machine_ticks() -> Option<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    cpu_line_ticks(stat.lines().next()?)
}

/// Idle and total clock ticks of all CPUs together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MachineTicks {
    idle: u64,
    total: u64,
}

/// The aggregate `cpu` line of `/proc/stat`: user, nice, system, idle, iowait, irq, softirq,
/// steal. Idle counts idle and iowait; steal (time a hypervisor gave to others) is in the
/// total but not idle, as it was not ours to use.
fn cpu_line_ticks(line: &str) -> Option<MachineTicks> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let (&idle, &iowait) = (ticks.get(3)?, ticks.get(4)?);
    Some(MachineTicks {
        idle: idle.checked_add(iowait)?,
        total: ticks.iter().try_fold(0u64, |a, t| a.checked_add(*t))?,
    })
}

/// The share of the machine's CPU time left idle between two readings, in %.
fn idle_pct(before: MachineTicks, after: MachineTicks) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let idle = after.idle.checked_sub(before.idle)?;
    (total > 0).then(|| idle as f64 * 100.0 / total as f64)
}

/// What one measured interval cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// Wall-clock time.
    pub(crate) elapsed: Duration,
    /// User CPU time of the whole process.
    pub(crate) user: Duration,
    /// System CPU time of the whole process.
    pub(crate) sys: Duration,
    /// User + system CPU time of the broker process, when its pid was given.
    pub(crate) broker: Option<Duration>,
    /// The share of all the machine's CPU time that nobody used, in %: near 0 means every
    /// core was busy (with this run or anything else), so nobody could have gone faster.
    pub(crate) machine_idle_pct: Option<f64>,
}

/// A started measurement; [`Meter::stop`] returns the interval's [`Sample`].
#[derive(Debug)]
pub(crate) struct Meter {
    wall: Instant,
    user: Duration,
    sys: Duration,
    /// The broker's pid and its CPU time at the start.
    broker: Option<(u32, Duration)>,
    machine: Option<MachineTicks>,
}

impl Meter {
    /// Reads the clocks now: this process's, and the broker's when `broker_pid` is given.
    pub(crate) fn start(broker_pid: Option<u32>) -> io::Result<Self> {
        let broker = match broker_pid {
            Some(pid) => Some((pid, process_cpu(pid)?)),
            None => None,
        };
        let machine = machine_ticks();
        let (user, sys) = cpu_now()?;
        Ok(Self {
            wall: Instant::now(),
            user,
            sys,
            broker,
            machine,
        })
    }

    /// Wall and CPU time since [`Meter::start`].
    pub(crate) fn stop(&self) -> io::Result<Sample> {
        let elapsed = self.wall.elapsed();
        let (user, sys) = cpu_now()?;
        let broker = match self.broker {
            Some((pid, before)) => Some(process_cpu(pid)?.saturating_sub(before)),
            None => None,
        };
        let machine_idle_pct = self
            .machine
            .zip(machine_ticks())
            .and_then(|(before, after)| idle_pct(before, after));
        Ok(Sample {
            elapsed,
            user: user.saturating_sub(self.user),
            sys: sys.saturating_sub(self.sys),
            broker,
            machine_idle_pct,
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
    fn parses_proc_stat_cpu_ticks() {
        // A command name with a space and a parenthesis; utime 1234, stime 56.
        let stat = "4242 (beam.smp) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 \
                    30 0 999 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some(1290));
        assert_eq!(stat_cpu_ticks("4242 (beam) S 1 2 3"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
        assert_eq!(ticks_to_duration(3, 1000), Duration::from_millis(3));
    }

    #[test]
    fn parses_the_machine_cpu_line() {
        let before = cpu_line_ticks("cpu  1000 0 200 700 100 0 0 0 0 0").unwrap();
        assert_eq!(
            before,
            MachineTicks {
                idle: 800,
                total: 2000
            }
        );
        let after = cpu_line_ticks("cpu  1300 0 300 1250 150 0 0 0 0 0").unwrap();
        assert_eq!(idle_pct(before, after), Some(60.0));
        assert_eq!(idle_pct(after, before), None);
        assert_eq!(idle_pct(before, before), None);
        assert_eq!(cpu_line_ticks("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(cpu_line_ticks("cpu 1 2 3"), None);
        assert_eq!(cpu_line_ticks("cpu 1 2 x 4 5"), None);
    }

    #[test]
    fn another_process_cpu_is_read_from_proc() {
        let pid = std::process::id();
        let before = process_cpu(pid).unwrap();
        let meter = Meter::start(Some(pid)).unwrap();
        let mut x = 0u64;
        let sample = loop {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            let s = meter.stop().unwrap();
            if s.broker.unwrap() >= Duration::from_millis(30) {
                break s;
            }
        };
        std::hint::black_box(x);
        assert!(process_cpu(pid).unwrap() >= before + Duration::from_millis(30));
        assert!(sample.broker.is_some());
        assert!(Meter::start(Some(u32::MAX)).is_err());
        assert_eq!(Meter::start(None).unwrap().stop().unwrap().broker, None);
    }

    #[test]
    fn busy_loop_costs_user_time_and_rss_is_reported() {
        let meter = Meter::start(None).unwrap();
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
