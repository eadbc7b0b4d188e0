//! The latency/throughput plot: for each phase of the open-loop sweep, the achieved rate against
//! its p50, p90 and p99 create → completed latency. A plain SVG, readable in any browser.

use super::BenchReport;
use std::fmt::Write;
use std::path::Path;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const MARGIN: f64 = 60.0;

pub fn latency_vs_throughput(report: &BenchReport, path: &Path) -> anyhow::Result<()> {
    let points: Vec<(f64, [f64; 3])> = report
        .phases
        .iter()
        .filter(|p| p.name.contains("open loop"))
        .map(|p| (p.throughput, [p.latency.p50_ms, p.latency.p90_ms, p.latency.p99_ms]))
        .collect();
    let max_x = points.iter().map(|(x, _)| *x).fold(1.0, f64::max) * 1.1;
    let max_y = points.iter().map(|(_, y)| y[2]).fold(1.0, f64::max) * 1.1;
    let x = |v: f64| MARGIN + v / max_x * (WIDTH - 2.0 * MARGIN);
    let y = |v: f64| HEIGHT - MARGIN - v / max_y * (HEIGHT - 2.0 * MARGIN);

    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    )?;
    writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">OrderFlow: create → completed latency vs throughput ({})</text>"#,
        WIDTH / 2.0,
        escape(&report.label)
    )?;
    // Axes with five ticks each.
    writeln!(
        svg,
        r#"<line x1="{MARGIN}" y1="{0}" x2="{1}" y2="{0}" stroke="black"/>"#,
        y(0.0),
        x(max_x)
    )?;
    writeln!(
        svg,
        r#"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="black"/>"#,
        x(0.0),
        y(0.0),
        y(max_y)
    )?;
    for i in 0..=5 {
        let (vx, vy) = (max_x * i as f64 / 5.0, max_y * i as f64 / 5.0);
        writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle">{vx:.0}</text>"##,
            x(vx),
            y(0.0) + 18.0
        )?;
        writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{vy:.0}</text>"##,
            x(0.0) - 6.0,
            y(vy) + 4.0
        )?;
        writeln!(
            svg,
            r##"<line x1="{}" y1="{1}" x2="{2}" y2="{1}" stroke="#eee"/>"##,
            x(0.0),
            y(vy),
            x(max_x)
        )?;
    }
    writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">completed orders per second</text>"#,
        WIDTH / 2.0,
        HEIGHT - 18.0
    )?;
    writeln!(
        svg,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {0})" text-anchor="middle">latency (ms)</text>"#,
        HEIGHT / 2.0
    )?;
    for (i, (name, color)) in
        [("p50", "#1f77b4"), ("p90", "#ff7f0e"), ("p99", "#d62728")].iter().enumerate()
    {
        let line: Vec<String> =
            points.iter().map(|(px, py)| format!("{:.1},{:.1}", x(*px), y(py[i]))).collect();
        writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            line.join(" ")
        )?;
        for (px, py) in &points {
            writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                x(*px),
                y(py[i])
            )?;
        }
        let ly = MARGIN + 18.0 * i as f64;
        writeln!(
            svg,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{2}" y="{3}">{name}</text>"#,
            WIDTH - 130.0,
            WIDTH - 105.0,
            WIDTH - 98.0,
            ly + 4.0
        )?;
    }
    writeln!(svg, "</svg>")?;
    std::fs::write(path, svg)?;
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
