//! The api by id: wrk's runs, vegeta's attacks and rate sweeps, each next to the plain-map
//! ceiling's.

use std::fmt::Write as _;

use super::inputs::{sweep, Results, Vegeta, WrkTry};
use super::targets::median_rate;
use super::thousands;

pub fn write(w: &mut String, r: &Results) -> anyhow::Result<()> {
    wrk(w, r)?;
    vegeta(w, r)?;
    sweeps(w, r)
}

/// wrk's runs, alternating between the servers, with the CPU each server used per request.
fn wrk(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results {
        api_wrk,
        ceiling_wrk,
        ..
    } = r;
    writeln!(w, "\n## api: by id, with wrk\n")?;
    writeln!(
        w,
        "`loadtest/wrk/attack`: one thread and 64 connections (`wrk -t1 -c64`), ids drawn at \
         random from the same list as vegeta's targets (stored ids with misses mixed in). The \
         ceiling is `bench serve-ceiling`: the same documents from a plain `HashMap` behind the \
         smallest poem handler. The servers take turns, try by try. wrk needs far less CPU a \
         request than vegeta, so on this machine it leaves the server more of the cores.\n"
    )?;
    writeln!(
        w,
        "| Try | Server | Requests | Requests/s | p50 ms | p90 ms | p99 ms | max ms | Errors | \
         404 (misses) | Server CPU µs a request | wrk CPU µs a request |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for (i, (api, ceiling)) in api_wrk.iter().zip(ceiling_wrk).enumerate() {
        wrk_row(w, i + 1, "api", api)?;
        wrk_row(w, i + 1, "ceiling", ceiling)?;
    }
    let api_cpu = median_cpu(api_wrk);
    let ceiling_cpu = median_cpu(ceiling_wrk);
    writeln!(
        w,
        "\nMedians: api {:.0} requests/s, ceiling {:.0}: **{:.1} %**. Server CPU a request: api \
         {api_cpu:.1} µs, ceiling {ceiling_cpu:.1} µs ({:.2}×).",
        median_rate(api_wrk),
        median_rate(ceiling_wrk),
        median_rate(api_wrk) / median_rate(ceiling_wrk) * 100.0,
        api_cpu / ceiling_cpu
    )?;
    Ok(())
}

fn median_cpu(tries: &[WrkTry]) -> f64 {
    super::median(
        &tries
            .iter()
            .map(WrkTry::server_us_per_request)
            .collect::<Vec<_>>(),
    )
}

fn wrk_row(w: &mut String, try_: usize, server: &str, t: &WrkTry) -> std::fmt::Result {
    let l = &t.wrk.latency_us;
    writeln!(
        w,
        "| {try_} | {server} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {:.1} | {:.1} |",
        thousands(t.wrk.requests),
        t.wrk.throughput(),
        l.p50 as f64 / 1e3,
        l.p90 as f64 / 1e3,
        l.p99 as f64 / 1e3,
        l.max as f64 / 1e3,
        t.wrk.errors(),
        thousands(t.wrk.non_2xx),
        t.server_us_per_request(),
        t.tools_cpu * 1e6 / t.wrk.requests.max(1) as f64
    )
}

/// vegeta's attacks: as fast as each server answers, and the fixed rate's tries.
fn vegeta(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results {
        run,
        api_max,
        ceiling_max,
        api_tries,
        ceiling_tries,
        ..
    } = r;
    writeln!(w, "\n## api: by id, with vegeta\n")?;
    writeln!(
        w,
        "Targets are real order ids from the table with misses mixed in (see `loadtest/vegeta/`), \
         against the same ceiling. At the fixed rate the servers take turns, try by try.\n"
    )?;
    writeln!(
        w,
        "| Attack | Server | Requests | Throughput/s | p50 ms | p90 ms | p99 ms | max ms | Codes |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|")?;
    vegeta_row(w, "as fast as it answers", "api", api_max)?;
    vegeta_row(w, "as fast as it answers", "ceiling", ceiling_max)?;
    for (i, (api, ceiling)) in api_tries.iter().zip(ceiling_tries).enumerate() {
        let attack = format!("{} requests/s, try {}", thousands(run.fixed_rate), i + 1);
        vegeta_row(w, &attack, "api", api)?;
        vegeta_row(w, &attack, "ceiling", ceiling)?;
    }
    Ok(())
}

/// The rate sweeps of the api and of the ceiling.
fn sweeps(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results { dir, run, .. } = r;
    for server in ["api", "ceiling"] {
        writeln!(
            w,
            "\n### Rate sweep, {server}: the highest rate with p99 under {} ms and no errors\n",
            run.sweep_p99_ms
        )?;
        writeln!(
            w,
            "| Rate/s | Try | Throughput/s | p50 ms | p99 ms | max ms | Errors | Try held | Rate held |"
        )?;
        writeln!(w, "|---|---|---|---|---|---|---|---|---|")?;
        let mut best = None;
        for (rate, attempts) in sweep(dir, server)? {
            let mut held = 0;
            for (i, v) in attempts.iter().enumerate() {
                let this = v.ms("99th") < run.sweep_p99_ms && v.errors() == 0;
                held += usize::from(this);
                let verdict = if i + 1 < attempts.len() {
                    String::new()
                } else if held * 2 > attempts.len() {
                    best = Some(rate);
                    format!("held ({held} of {})", attempts.len())
                } else {
                    format!("**not held** ({held} of {})", attempts.len())
                };
                writeln!(
                    w,
                    "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {verdict} |",
                    thousands(rate),
                    i + 1,
                    v.throughput,
                    v.ms("50th"),
                    v.ms("99th"),
                    v.ms("max"),
                    v.errors(),
                    if this { "yes" } else { "no" }
                )?;
            }
        }
        match best {
            Some(rate) => writeln!(
                w,
                "\nHighest rate held: **{} requests/s**.",
                thousands(rate)
            )?,
            None => writeln!(w, "\nNo rate of the sweep was held.")?,
        }
    }
    Ok(())
}

fn vegeta_row(w: &mut String, attack: &str, server: &str, v: &Vegeta) -> std::fmt::Result {
    let codes: Vec<String> = v
        .status_codes
        .iter()
        .map(|(code, n)| format!("{code}: {}", thousands(*n)))
        .collect();
    writeln!(
        w,
        "| {attack} | {server} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        thousands(v.requests),
        v.throughput,
        v.ms("50th"),
        v.ms("90th"),
        v.ms("99th"),
        v.ms("max"),
        codes.join(", ")
    )?;
    Ok(())
}
