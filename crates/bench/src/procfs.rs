//! What a server process costs, read from Linux's /proc: CPU time and resident memory.

use std::io;
use std::time::Duration;

/// CPU time (user + system) from the text of /proc/<pid>/stat. The command name (field 2)
/// is in parentheses and may itself hold spaces or parentheses, so fields are counted from
/// the last ')'; utime and stime are fields 14 and 15, in clock ticks.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // `fields` starts at field 3 (state), so utime is 11 further on.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A "Key:   1234 kB" line of /proc/<pid>/status, in bytes.
pub fn parse_status_bytes(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.split(':').next() == Some(key))?;
    let mut words = line[key.len() + 1..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => Some(value * 1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// CPU time spent busy by the whole machine (all cores), from the text of /proc/stat: the
/// first line's counters except idle and iowait.
pub fn parse_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields.map(str::parse).collect::<Result<_, _>>().ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0);
    Some(ticks.iter().take(8).sum::<u64>() - idle)
}

/// The machine's busy CPU time so far.
pub fn machine_busy() -> io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let ticks = parse_busy_ticks(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no cpu line in /proc/stat"))?;
    Ok(ticks_to_duration(ticks))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub cpu: Duration,
    /// VmRSS: resident now.
    pub rss: u64,
    /// VmHWM: the highest resident size since the process started or its peak was reset.
    pub peak_rss: u64,
}

pub fn read(pid: u32) -> io::Result<Reading> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("no {what}"));
    let ticks = parse_cpu_ticks(&stat).ok_or_else(|| bad("utime/stime in stat"))?;
    Ok(Reading {
        cpu: ticks_to_duration(ticks),
        rss: parse_status_bytes(&status, "VmRSS").ok_or_else(|| bad("VmRSS"))?,
        peak_rss: parse_status_bytes(&status, "VmHWM").ok_or_else(|| bad("VmHWM"))?,
    })
}

/// Resets VmHWM to the current RSS (writing 5 to clear_refs, Linux ≥ 4.0), so the peak of a
/// scenario is not the peak of whatever ran before it. Needs the right to ptrace the process
/// (our own children qualify); false if refused.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (tem poral) (x)) S 1 4242 4242 0 -1 4194560 51234 0 12 0 \
                        1500 250 0 0 20 0 12 0 987654 1234567890 23456 18446744073709551615";

    #[test]
    fn cpu_ticks_skip_a_command_name_with_spaces_and_parens() {
        assert_eq!(parse_cpu_ticks(STAT), Some(1750));
    }

    #[test]
    fn cpu_ticks_of_garbage() {
        assert_eq!(parse_cpu_ticks("no parens here"), None);
        assert_eq!(parse_cpu_ticks("1 (x) S 1 2"), None);
    }

    const STATUS: &str = "Name:\tchronicle\nVmPeak:\t  300000 kB\nVmHWM:\t   51200 kB\n\
                          VmRSS:\t   40960 kB\nThreads:\t8\n";

    #[test]
    fn status_values_in_bytes() {
        assert_eq!(parse_status_bytes(STATUS, "VmHWM"), Some(51200 * 1024));
        assert_eq!(parse_status_bytes(STATUS, "VmRSS"), Some(40960 * 1024));
        assert_eq!(parse_status_bytes(STATUS, "Threads"), Some(8));
        assert_eq!(parse_status_bytes(STATUS, "VmSwap"), None);
        // a key that is a prefix of another key must not match it
        assert_eq!(parse_status_bytes(STATUS, "Vm"), None);
    }

    #[test]
    fn busy_ticks_leave_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(parse_busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(parse_busy_ticks("intr 1 2 3\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let r = read(std::process::id()).unwrap();
        assert!(r.rss > 0 && r.peak_rss >= r.rss);
    }
}
