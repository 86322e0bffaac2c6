//! The api's warm-ups and its memory.

use std::fmt::Write as _;

use super::inputs::Results;
use super::thousands;

pub fn write(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results { warmup, .. } = r;
    writeln!(w, "\n## Warm-up and memory\n")?;
    writeln!(
        w,
        "The api started {} times on the table of {} orders ({:.0} MiB of JSON documents).\n",
        warmup.seconds.len(),
        thousands(warmup.orders as u64),
        warmup.documents_bytes as f64 / 1048576.0
    )?;
    writeln!(
        w,
        "| Run | Start to ready, s | Resident once ready, MiB | Peak resident, MiB |"
    )?;
    writeln!(w, "|---|---|---|---|")?;
    for i in 0..warmup.seconds.len() {
        writeln!(
            w,
            "| {} | {:.2} | {:.0} | {:.0} |",
            i + 1,
            warmup.seconds[i],
            warmup.rss_bytes[i] as f64 / 1048576.0,
            warmup.peak_rss_bytes[i] as f64 / 1048576.0
        )?;
    }
    Ok(())
}
