//! The soak's plot, an SVG written by hand: resident memory per process (log scale) above, the
//! rates of publishing, storing and reading below, and each fault as a shaded band across both,
//! numbered as in the report's table.

use std::fmt::Write as _;

use super::files::Fault;

/// A process's memory over time: (time, MiB), `None` while it did not run.
pub type Series = Vec<(i64, Option<f64>)>;

pub struct Plot<'a> {
    pub title: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Per process, its memory.
    pub memory: Vec<(String, Series)>,
    /// Per rate: one value a second for each 10 s from the start.
    pub rates: Vec<(String, Vec<f64>)>,
    pub faults: &'a [Fault],
}

const WIDTH: f64 = 1100.0;
const HEIGHT: f64 = 780.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 900.0;
const MEMORY: (f64, f64) = (50.0, 400.0);
const RATES: (f64, f64) = (460.0, 730.0);
const PALETTE: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939",
];

fn fault_colour(kind: &str) -> &'static str {
    match kind {
        "kill-ingestor" => "#d62728",
        "kill-api" => "#ff7f0e",
        "freeze" => "#1f77b4",
        "restart-postgres" => "#2ca02c",
        "restart-broker-node" => "#9467bd",
        _ => "#8c564b",
    }
}

impl Plot<'_> {
    fn x(&self, t_ms: i64) -> f64 {
        let span = (self.end_ms - self.start_ms).max(1) as f64;
        LEFT + (t_ms - self.start_ms) as f64 / span * (RIGHT - LEFT)
    }

    pub fn svg(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="22" font-size="14">{}</text>"#,
            escape(&self.title)
        );
        self.faults(&mut s);
        self.time_axis(&mut s);
        self.memory_panel(&mut s);
        self.rates_panel(&mut s);
        s.push_str("</svg>\n");
        s
    }

    fn faults(&self, s: &mut String) {
        for fault in self.faults {
            let (a, b) = (
                self.x(fault.start_ms),
                self.x(fault.end_ms.max(fault.start_ms)),
            );
            let colour = fault_colour(&fault.kind);
            for (top, bottom) in [MEMORY, RATES] {
                let _ = writeln!(
                    s,
                    r#"<rect x="{a:.1}" y="{top}" width="{:.1}" height="{}" fill="{colour}" fill-opacity="0.18"><title>{} {} {}</title></rect>"#,
                    (b - a).max(1.5),
                    bottom - top,
                    fault.index,
                    fault.kind,
                    fault.target
                );
            }
            let _ = writeln!(
                s,
                r#"<text x="{a:.1}" y="{}" fill="{colour}" font-size="9">{}</text>"#,
                MEMORY.0 - 3.0,
                fault.index
            );
        }
        let mut kinds: Vec<&str> = self.faults.iter().map(|f| f.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut y = RATES.0 + 110.0;
        let _ = writeln!(s, r#"<text x="{}" y="{y}">faults</text>"#, RIGHT + 20.0);
        for kind in kinds {
            y += 16.0;
            legend_entry(s, y, fault_colour(kind), kind, true);
        }
    }

    fn time_axis(&self, s: &mut String) {
        let minutes = (self.end_ms - self.start_ms) as f64 / 60_000.0;
        let step = nice_step(minutes / 10.0);
        let mut m = 0.0;
        while m <= minutes + 1e-9 {
            let x = self.x(self.start_ms + (m * 60_000.0) as i64);
            for (top, bottom) in [MEMORY, RATES] {
                let _ = writeln!(
                    s,
                    r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/>"##
                );
            }
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{m}</text>"#,
                RATES.1 + 14.0
            );
            m += step;
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">minutes from the start</text>"#,
            (LEFT + RIGHT) / 2.0,
            RATES.1 + 32.0
        );
    }

    fn memory_panel(&self, s: &mut String) {
        let values = || {
            self.memory
                .iter()
                .flat_map(|(_, p)| p.iter().filter_map(|p| p.1))
        };
        let high = values().fold(1.0f64, f64::max).log10().ceil() as i32;
        let low = values().fold(f64::MAX, f64::min).max(0.1).log10().floor() as i32;
        let low = low.min(high - 1);
        let (from, to) = (f64::from(low), f64::from(high));
        let y = |mib: f64| {
            let at = (mib.max(10f64.powi(low)).log10() - from) / (to - from);
            MEMORY.1 - at * (MEMORY.1 - MEMORY.0)
        };
        panel_frame(s, MEMORY, "resident memory, MiB (log scale)");
        for d in low..=high {
            for m in [1.0, 2.0, 5.0] {
                let mib = m * 10f64.powi(d);
                if mib <= 10f64.powi(high) {
                    axis_tick(s, y(mib), &format!("{mib}"));
                }
            }
        }
        for (i, (name, points)) in self.memory.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let coords: Vec<Option<(f64, f64)>> = points
                .iter()
                .map(|&(t, v)| v.map(|v| (self.x(t), y(v))))
                .collect();
            polyline(s, &coords, colour);
            legend_entry(s, MEMORY.0 + 16.0 * i as f64 + 10.0, colour, name, false);
        }
    }

    fn rates_panel(&self, s: &mut String) {
        let top = self
            .rates
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(1.0f64, f64::max);
        let step = nice_step(top / 5.0);
        let top = (top / step).ceil() * step;
        let y = |v: f64| RATES.1 - v / top * (RATES.1 - RATES.0);
        panel_frame(s, RATES, "per second, over 10 s");
        let mut v = 0.0;
        while v <= top + 1e-9 {
            axis_tick(s, y(v), &format!("{v}"));
            v += step;
        }
        for (i, (name, values)) in self.rates.iter().enumerate() {
            let colour = PALETTE[(i + 5) % PALETTE.len()];
            // Whole buckets only: the last one may have ended with the load.
            let whole = ((self.end_ms - self.start_ms) / 10_000) as usize;
            let coords: Vec<Option<(f64, f64)>> = values
                .iter()
                .take(whole)
                .enumerate()
                .map(|(b, &v)| Some((self.x(self.start_ms + b as i64 * 10_000 + 5_000), y(v))))
                .collect();
            polyline(s, &coords, colour);
            legend_entry(s, RATES.0 + 16.0 * i as f64 + 10.0, colour, name, false);
        }
    }
}

fn panel_frame(s: &mut String, (top, bottom): (f64, f64), label: &str) {
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{top}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
        RIGHT - LEFT,
        bottom - top
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" transform="rotate(-90 {} {})" text-anchor="middle">{label}</text>"#,
        LEFT - 50.0,
        (top + bottom) / 2.0,
        LEFT - 50.0,
        (top + bottom) / 2.0
    );
}

fn axis_tick(s: &mut String, y: f64, label: &str) {
    let _ = writeln!(
        s,
        r##"<line x1="{}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="#444"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
        LEFT - 4.0,
        LEFT - 6.0,
        y + 4.0
    );
}

/// A line through the points, broken where a point is missing.
fn polyline(s: &mut String, coords: &[Option<(f64, f64)>], colour: &str) {
    for run in coords.split(Option::is_none) {
        let points: Vec<String> = run
            .iter()
            .flatten()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        if !points.is_empty() {
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
                points.join(" ")
            );
        }
    }
}

fn legend_entry(s: &mut String, y: f64, colour: &str, label: &str, band: bool) {
    let x = RIGHT + 20.0;
    let shape = if band {
        format!(
            r#"<rect x="{x}" y="{}" width="18" height="10" fill="{colour}" fill-opacity="0.35"/>"#,
            y - 9.0
        )
    } else {
        format!(
            r#"<line x1="{x}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="{colour}" stroke-width="2"/>"#,
            y - 4.0,
            x + 18.0,
            y - 4.0
        )
    };
    let _ = writeln!(
        s,
        r#"{shape}<text x="{}" y="{y:.1}">{}</text>"#,
        x + 24.0,
        escape(label)
    );
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-9);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * power)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(12.0), 20.0);
        assert_eq!(nice_step(60.0), 100.0);
    }
}
