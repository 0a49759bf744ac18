//! Measurements around a run: CPU and peak RSS of a server's whole process tree (sampled
//! from /proc by process group), the CPU oha itself used, and the machine's description.

use nix::sys::resource::{getrusage, UsageWho};
use nix::unistd::{sysconf, SysconfVar};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// CPU ticks and resident bytes of every process in group `pgid`.
fn group_usage(pgid: i32) -> (u64, u64) {
    let page = sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let mut ticks = 0;
    let mut rss = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may hold spaces.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields[0] is the state (field 3); pgrp is field 5, utime 14, stime 15, rss 24.
        let field = |n: usize| {
            fields
                .get(n - 3)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        if field(5) as i32 != pgid {
            continue;
        }
        ticks += (field(14) + field(15)) as u64;
        rss += field(24).max(0) as u64 * page;
    }
    (ticks, rss)
}

/// Samples a process group's CPU use and peak RSS while a run goes on.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(f64, u64)>,
}

impl Sampler {
    pub fn start(pgid: i32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let hz = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
            let started = Instant::now();
            let (ticks0, mut peak) = group_usage(pgid);
            let mut ticks = ticks0;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let (t, rss) = group_usage(pgid);
                ticks = t.max(ticks);
                peak = peak.max(rss);
            }
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            (((ticks - ticks0) as f64 / hz) / seconds * 100.0, peak)
        });
        Sampler { stop, thread }
    }

    /// CPU % (100 = one core) and peak RSS in bytes.
    pub fn finish(self) -> (f64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or((0.0, 0))
    }
}

/// CPU seconds used by waited-for children (oha) so far.
pub fn children_cpu_seconds() -> f64 {
    cpu_seconds(UsageWho::RUSAGE_CHILDREN)
}

/// CPU seconds used by this process (its own load clients) so far.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(UsageWho::RUSAGE_SELF)
}

fn cpu_seconds(who: UsageWho) -> f64 {
    getrusage(who)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

/// The machine, the revision and the tools, recorded with every result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub kernel: String,
    pub git_sha: String,
    pub git_dirty: bool,
    pub oha_version: String,
}

fn read_field(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .map(|v| {
            v.trim_start_matches([':', '=', ' ', '\t'])
                .trim()
                .trim_matches('"')
                .to_owned()
        })
}

pub fn machine(oha_version: &str) -> Machine {
    let git = |args: &[&str]| {
        duct::cmd("git", args)
            .stderr_null()
            .read()
            .unwrap_or_default()
    };
    let memory_kib: f64 = read_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0.0);
    Machine {
        cpu_model: read_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        os: read_field("/etc/os-release", "PRETTY_NAME").unwrap_or_else(|| "unknown".into()),
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        git_sha: git(&["rev-parse", "--short=12", "HEAD"]),
        git_dirty: !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty(),
        oha_version: oha_version.to_owned(),
    }
}
