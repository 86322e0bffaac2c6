//! The CPU each process used in each phase.

use std::fmt::Write as _;

use super::inputs::{read, Cpu, Results};

pub fn write(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results {
        dir,
        machine,
        freshness,
        ..
    } = r;
    writeln!(w, "\n## Where the CPU went\n")?;
    writeln!(
        w,
        "CPU seconds of each process during each phase (user + system, from `/proc`), and the \
         cores they kept busy on average. This machine has {} cores. `loadtest-tools` is what \
         `loadtest/run` starts and waits for: wrk, vegeta, the publisher, `bench` (and, in the \
         warm-up, the api runs that `bench warmup` starts).\n",
        cores(machine)
    )?;
    writeln!(w, "| Phase | Wall s | Process | CPU s | Cores |")?;
    writeln!(w, "|---|---|---|---|---|")?;
    let mut phases = vec!["drain".to_string()];
    phases.extend(
        freshness
            .iter()
            .map(|f| format!("freshness-{}", f.target_rate)),
    );
    phases.extend(
        [
            "wrk-api-1",
            "wrk-ceiling-1",
            "api-max",
            "ceiling-max",
            "warmup",
        ]
        .map(String::from),
    );
    for phase in phases {
        let Ok(cpu) = read::<Cpu>(dir, &format!("cpu-{phase}.json")) else {
            continue;
        };
        for (process, seconds) in &cpu.processes {
            writeln!(
                w,
                "| {phase} | {:.1} | {process} | {seconds:.1} | {:.2} |",
                cpu.wall_seconds,
                seconds / cpu.wall_seconds
            )?;
        }
    }
    writeln!(
        w,
        "\nwrk's and vegeta's text reports of this run, and vegeta's HTML latency plots of the \
         api, are in `loadtest/results/`."
    )?;
    Ok(())
}

/// The `cores:` line of the machine description.
fn cores(machine: &str) -> String {
    machine
        .lines()
        .find_map(|l| l.strip_prefix("cores:"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|| "?".into())
}
