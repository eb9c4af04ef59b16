//! Readers of /proc: a process's memory and CPU time.

#[allow(unused_imports)]
use super::*;

pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// CPU seconds of PostgreSQL (the postmaster and its children) and of the
/// service process, at one moment.
#[derive(Clone, Copy)]
pub(crate) struct Cpu {
    pub(crate) db: f64,
    pub(crate) service: f64,
    pub(crate) service_pid: Option<u32>,
    pub(crate) postmaster: u32,
}

impl Cpu {
    /// None without an embedded server (no postmaster to read).
    pub(crate) fn read(postmaster: Option<u32>, service_pid: Option<u32>) -> Option<Self> {
        let postmaster = postmaster?;
        Some(Self {
            db: cpu_seconds(postmaster, true).ok()?,
            service: service_pid.map_or(Some(0.0), |p| cpu_seconds(p, false).ok())?,
            service_pid,
            postmaster,
        })
    }

    /// Microseconds of CPU a record since `self`: (PostgreSQL, service).
    pub(crate) fn per_record(self, records: usize) -> (f64, f64) {
        let now = Self::read(Some(self.postmaster), self.service_pid).unwrap_or(self);
        let us = |seconds: f64| seconds * 1e6 / records as f64;
        (us(now.db - self.db), us(now.service - self.service))
    }
}

/// Linux's USER_HZ: /proc reports CPU times in these ticks.
pub(crate) const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user and system) spent so far by process `pid` and, with
/// `children`, by its children: those alive now and those it has reaped.
/// For the postmaster, that is the whole PostgreSQL server.
pub(crate) fn cpu_seconds(pid: u32, children: bool) -> anyhow::Result<f64> {
    // Fields after the command's closing parenthesis, from field 3 (state).
    let fields = |pid: &str| -> anyhow::Result<Vec<u64>> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let rest = stat.rsplit_once(')').context("malformed stat")?.1;
        Ok(rest
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect())
    };
    // Field n of proc(5) at n - 4: ppid 0, utime 10, stime 11, cutime 12, cstime 13.
    let own = fields(&pid.to_string())?;
    let mut ticks = own[10] + own[11];
    if children {
        ticks += own[12] + own[13];
        for entry in std::fs::read_dir("/proc")? {
            let name = entry?.file_name();
            let Some(name) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            // A process may exit between the listing and the read.
            if let Ok(f) = fields(name)
                && f[0] == u64::from(pid)
            {
                ticks += f[10] + f[11];
            }
        }
    }
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

// ---------------------------------------------------------------- setup
