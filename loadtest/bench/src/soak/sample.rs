//! Samples each process of a soak at a steady period until SIGTERM: its resident memory (VmRSS of
//! `/proc/PID/status`) and its open files (the entries of `/proc/PID/fd`), one line each in
//! `samples.tsv` (see [`super::files::Sample`]).
//!
//! A process is named with the file that holds its pid (the first line: a pid file, or
//! PostgreSQL's `postmaster.pid`), read again at each sample, so that a restarted process is
//! followed under its new pid. With `--children-of NAME`, the children of that process are also
//! summed, as `NAME-all`: PostgreSQL's backends, whose memory is given as PSS (proportional set
//! size, from `/proc/PID/smaps_rollup`) since each backend's RSS counts every page of shared
//! buffers it touched, and the sum of those grows with the pages touched, not with a leak.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::files::{now_ms, Sample};

#[derive(clap::Args)]
pub struct Args {
    /// NAME=PIDFILE: a process to sample; repeat for each.
    #[arg(long = "process", required = true, value_parser = name_and_path)]
    processes: Vec<(String, PathBuf)>,
    /// A process (one of the NAMEs) whose children are summed too, as NAME-all.
    #[arg(long)]
    children_of: Option<String>,
    /// Seconds between two samples.
    #[arg(long, default_value_t = 10)]
    every_secs: u64,
    /// Where to write the samples.
    #[arg(long)]
    out: PathBuf,
}

fn name_and_path(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text.split_once('=').ok_or("must be NAME=PIDFILE")?;
    Ok((name.to_string(), PathBuf::from(path)))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut out = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let stop = service_kit::lifecycle::shutdown_signal();
    tokio::pin!(stop);
    let mut every = tokio::time::interval(Duration::from_secs(args.every_secs.max(1)));
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = every.tick() => {}
        }
        let t_ms = now_ms();
        let mut lines = String::new();
        for (name, pidfile) in &args.processes {
            let pid = pid_of(pidfile);
            lines += &sample(t_ms, name, pid).line();
            lines.push('\n');
            if args.children_of.as_deref() == Some(name.as_str()) {
                lines += &children(t_ms, &format!("{name}-all"), pid).line();
                lines.push('\n');
            }
        }
        out.write_all(lines.as_bytes())?;
    }
}

/// The pid in the first line of `pidfile`, if that process runs.
fn pid_of(pidfile: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(pidfile).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    let state = stat(pid)?.state;
    (state != 'Z' && state != 'X').then_some(pid)
}

fn sample(t_ms: i64, name: &str, pid: Option<u32>) -> Sample {
    Sample {
        t_ms,
        name: name.to_string(),
        pid,
        rss_kib: pid.and_then(|pid| kib(&format!("/proc/{pid}/status"), "VmRSS:")),
        fds: pid.and_then(open_files),
    }
}

/// The process `pid` with its children: their PSS and open files, summed.
fn children(t_ms: i64, name: &str, pid: Option<u32>) -> Sample {
    let Some(parent) = pid else {
        return sample(t_ms, name, None);
    };
    let mut family = vec![parent];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        family.extend(
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&p| stat(p).is_some_and(|s| s.ppid == parent)),
        );
    }
    let pss = family
        .iter()
        .filter_map(|p| kib(&format!("/proc/{p}/smaps_rollup"), "Pss:"))
        .sum();
    Sample {
        t_ms,
        name: name.to_string(),
        pid,
        rss_kib: Some(pss),
        fds: Some(family.iter().filter_map(|&p| open_files(p)).sum()),
    }
}

struct Stat {
    state: char,
    ppid: u32,
}

/// The state and parent of `pid`, from `/proc/PID/stat`: "PID (COMMAND) STATE PPID ...", where
/// the command may hold spaces and parentheses.
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = text[text.rfind(')')? + 1..].split_whitespace();
    Some(Stat {
        state: rest.next()?.chars().next()?,
        ppid: rest.next()?.parse().ok()?,
    })
}

/// The value in kB of the line starting with `key` in `path`.
fn kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn open_files(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}
