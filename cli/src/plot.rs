//! Drawing a plan as SVG: time on x, offset on y, one rectangle per buffer.
//!
//! The picture is a fixed-size canvas whatever the input, so file size grows only with the
//! number of rectangles (about 100 bytes each). Hover tooltips (`<title>`) are added only
//! for small plans, where they keep the file small.

use std::io::Write;

pub mod timeline;

use memplan_core::{Problem, Solution};
use svg::Document;
use svg::node::element::{Group, Line, Rectangle, Text, Title};

/// Most buffers for which each rectangle gets a tooltip and an outline.
const DETAILED: usize = 2000;

const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 720.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 60.0;

/// What the plot's title and lines say besides the plan itself.
#[derive(Debug)]
pub struct Labels<'a> {
    /// Name of the input, shown in the title.
    pub name: &'a str,
    /// Capacity asked for, drawn as a red line when it is within the plotted range.
    pub capacity: Option<u64>,
}

/// Draws `solution` for `problem` as an SVG document and writes it to `out`.
///
/// # Errors
/// Any I/O error from `out`.
pub fn write(
    out: impl Write,
    problem: &Problem,
    solution: &Solution,
    labels: &Labels<'_>,
) -> std::io::Result<()> {
    svg::write(out, &draw(problem, solution, labels))
}

/// Builds the SVG document.
fn draw(problem: &Problem, solution: &Solution, labels: &Labels<'_>) -> Document {
    let buffers = problem.buffers();
    let t0 = buffers.iter().map(|b| b.lower).min().unwrap_or(0);
    let t1 = buffers
        .iter()
        .map(|b| b.upper)
        .max()
        .unwrap_or(1)
        .max(t0 + 1);
    let ymax = solution.peak.max(solution.max_load).max(1) as f64 * 1.05;
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |t: u64| round(LEFT + (t - t0) as f64 / (t1 - t0) as f64 * pw);
    let y = |o: u64| round(TOP + ph - o as f64 / ymax * ph);
    let detailed = buffers.len() <= DETAILED;

    let mut doc = Document::new()
        .set("viewBox", (0, 0, WIDTH, HEIGHT))
        .set("width", WIDTH)
        .set("height", HEIGHT)
        .set("font-family", "sans-serif")
        .set("font-size", 12)
        .add(
            Rectangle::new()
                .set("width", "100%")
                .set("height", "100%")
                .set("fill", "white"),
        );

    // Title.
    let title = format!(
        "{} — {} buffers, peak {}, max load {}, ratio {:.5}{}",
        labels.name,
        buffers.len(),
        bytes(solution.peak),
        bytes(solution.max_load),
        solution.ratio(),
        if solution.optimal { " (optimal)" } else { "" },
    );
    doc = doc.add(
        Text::new(title)
            .set("x", WIDTH / 2.0)
            .set("y", 30)
            .set("text-anchor", "middle")
            .set("font-size", 16),
    );

    // Buffers. Rectangles get at least a fraction of a pixel so thin ones stay visible.
    let mut rects = Group::new();
    if detailed {
        rects = rects.set("stroke", "#333").set("stroke-width", 0.3);
    }
    for (i, (b, &offset)) in buffers.iter().zip(&solution.offsets).enumerate() {
        let (x0, x1) = (x(b.lower), x(b.upper));
        let (y0, y1) = (y(offset + b.size), y(offset));
        let mut r = Rectangle::new()
            .set("x", x0)
            .set("y", y0)
            .set("width", round((x1 - x0).max(0.3)))
            .set("height", round((y1 - y0).max(0.3)))
            .set("fill", colour(i));
        if detailed {
            r = r.add(Title::new(format!(
                "{}: [{}, {}) size {} at offset {}",
                b.id, b.lower, b.upper, b.size, offset
            )));
        }
        rects = rects.add(r);
    }
    doc = doc.add(rects);

    // Axes, ticks and grid.
    let mut axes = Group::new().set("stroke", "black").set("stroke-width", 1);
    axes = axes
        .add(line(LEFT, TOP + ph, LEFT + pw, TOP + ph))
        .add(line(LEFT, TOP, LEFT, TOP + ph));
    let mut labels_g = Group::new().set("fill", "black");
    for (t, label) in ticks(t0 as f64, t1 as f64) {
        let px = round(LEFT + (t - t0 as f64) / (t1 - t0) as f64 * pw);
        axes = axes.add(line(px, TOP + ph, px, TOP + ph + 5.0));
        labels_g = labels_g.add(
            Text::new(label)
                .set("x", px)
                .set("y", TOP + ph + 18.0)
                .set("text-anchor", "middle"),
        );
    }
    // Offset ticks are round numbers of the largest binary unit below the top (e.g. MiB).
    let (unit, unit_name) = binary_unit(ymax);
    for (o, label) in ticks(0.0, ymax / unit) {
        let py = round(TOP + ph - o * unit / ymax * ph);
        axes = axes.add(line(LEFT - 5.0, py, LEFT, py));
        labels_g = labels_g.add(
            Text::new(format!("{label} {unit_name}"))
                .set("x", LEFT - 8.0)
                .set("y", py + 4.0)
                .set("text-anchor", "end"),
        );
    }
    labels_g = labels_g
        .add(
            Text::new("time")
                .set("x", LEFT + pw / 2.0)
                .set("y", HEIGHT - 15.0)
                .set("text-anchor", "middle"),
        )
        .add(
            Text::new("offset (bytes)")
                .set(
                    "transform",
                    format!("translate(18,{}) rotate(-90)", TOP + ph / 2.0),
                )
                .set("text-anchor", "middle"),
        );
    doc = doc.add(axes).add(labels_g);

    // Reference lines: max load (dashed), peak, and the capacity when it is in range.
    // Labels sit at different x positions (left, right, middle) so close lines stay legible.
    let mut refs = vec![(
        solution.max_load,
        "max load",
        "#000",
        "6,4",
        LEFT + 4.0,
        "start",
    )];
    if solution.peak != solution.max_load {
        refs.push((solution.peak, "peak", "#555", "2,3", LEFT + pw - 4.0, "end"));
    }
    if let Some(c) = labels.capacity.filter(|&c| (c as f64) <= ymax) {
        refs.push((c, "capacity", "#c00", "10,3", LEFT + pw / 2.0, "middle"));
    }
    for (value, name, colour, dash, lx, anchor) in refs {
        let py = y(value);
        doc = doc
            .add(
                line(LEFT, py, LEFT + pw, py)
                    .set("stroke", colour)
                    .set("stroke-width", 1.5)
                    .set("stroke-dasharray", dash),
            )
            .add(
                Text::new(format!("{name} {}", bytes(value)))
                    .set("x", lx)
                    .set("y", py - 4.0)
                    .set("text-anchor", anchor)
                    .set("fill", colour)
                    .set("stroke", "white")
                    .set("stroke-width", 3)
                    .set("paint-order", "stroke"),
            );
    }
    doc
}

fn line(x1: f64, y1: f64, x2: f64, y2: f64) -> Line {
    Line::new()
        .set("x1", x1)
        .set("y1", y1)
        .set("x2", x2)
        .set("y2", y2)
}

/// Rounds a coordinate to 1/100 pixel, which keeps the file short.
fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A fill colour for buffer `i`: a hue spread by a multiplicative hash, so neighbours differ.
fn colour(i: usize) -> String {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let hue = h % 360;
    let light = 45 + (h >> 9) % 20;
    format!("hsl({hue},70%,{light}%)")
}

/// About six round tick values covering `[lo, hi]`, each with its label.
fn ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return vec![(lo, format!("{lo}"))];
    }
    let exp = (span / 6.0).log10().floor();
    let mag = 10f64.powf(exp);
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 8.0)
        .unwrap_or(10.0 * mag);
    // As many decimals as the step needs (0.5 → 1, 1 → 0), so labels stay round.
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let first = (lo / step).ceil();
    (0..20)
        .map(|k| (first + f64::from(k)) * step)
        .take_while(|t| *t <= hi + step * 1e-9)
        .map(|t| (t, format!("{t:.decimals$}")))
        .collect()
}

/// The largest binary unit not above `v` (bytes below 1 KiB): its size and name.
fn binary_unit(v: f64) -> (f64, &'static str) {
    let mut unit = (1.0, "B");
    for (i, name) in ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        .into_iter()
        .enumerate()
    {
        let size = 1024f64.powi(i as i32 + 1);
        if v >= size {
            unit = (size, name);
        }
    }
    unit
}

/// Bytes with a binary unit, e.g. `1.50 MiB` (plain bytes below 1 KiB).
pub fn bytes(v: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if v < 1024 {
        return format!("{v} B");
    }
    let mut x = v as f64 / 1024.0;
    let mut unit = 0;
    while x >= 1024.0 && unit < UNITS.len() - 1 {
        x /= 1024.0;
        unit += 1;
    }
    let digits = if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else {
        2
    };
    format!("{x:.digits$} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(1000), "1000 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(1 << 20), "1.00 MiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn tick_values() {
        let labels = |lo, hi| ticks(lo, hi).into_iter().map(|t| t.1).collect::<Vec<_>>();
        assert_eq!(labels(0.0, 100.0), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(labels(0.0, 1.0), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(labels(5.0, 5.0), ["5"]);
    }
}
