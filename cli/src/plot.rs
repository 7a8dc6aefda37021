//! Drawing a plan as SVG: time on x, offset on y, one rectangle per buffer.
//!
//! The picture is a fixed-size canvas whatever the input, and the number of its elements is
//! bounded too: the [`MAX_RECTS`] buffers largest on screen are drawn one by one, each with a
//! hover tooltip (`<title>`: id, lifetime, size, offset); buffers smaller than a pixel, or
//! beyond that many, are merged into grey [`CELL`]-pixel cells whose tooltip counts them, and
//! a caption under the title says so. A plan of any size stays well under a megabyte.
//!
//! [`timeline`] draws `memplan replay --svg`.

use std::io::Write;

pub mod timeline;

use memplan_core::{Problem, Solution};
use svg::Document;
use svg::node::element::{Group, Line, Rectangle, Text, Title};

/// Most buffers for which each rectangle gets an outline.
const DETAILED: usize = 2000;
/// Most buffers drawn one by one (with a tooltip); the rest are merged into cells.
pub const MAX_RECTS: usize = 2500;
/// Side of the cells small buffers are merged into, in pixels.
pub const CELL: f64 = 16.0;

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

    let mut doc = canvas(WIDTH, HEIGHT);

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

    // Buffers: the largest (on screen) one by one, the rest merged into cells.
    let (rects, caption) = buffer_layer(buffers, &solution.offsets, &x, &y);
    doc = doc.add(rects).add(
        Text::new(caption)
            .set("class", "caption")
            .set("x", WIDTH / 2.0)
            .set("y", 48)
            .set("text-anchor", "middle")
            .set("fill", "#444"),
    );

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

/// Buffers merged into one grid cell: (count, bytes, first time, last time, lowest offset,
/// highest end).
type MergedCell = (usize, u64, u64, u64, u64, u64);

/// The buffers' rectangles and the caption saying how they were drawn.
///
/// At most [`MAX_RECTS`] buffers, the largest on screen first, each get a rectangle with a
/// `<title>` tooltip (id, lifetime, size, offset). A plan of at most `MAX_RECTS` buffers is
/// drawn whole; in a larger one a buffer is drawn alone only when it covers at least a square
/// pixel (thin ones are drawn at least 0.3 px wide). Every other buffer is merged into the [`CELL`]-pixel
/// grid cells its extent touches, drawn grey with a tooltip counting what they hold. So the
/// picture has at most `MAX_RECTS` + (plot area / `CELL`²) rectangles whatever the plan.
fn buffer_layer(
    buffers: &[memplan_core::Buffer],
    offsets: &[u64],
    x: &dyn Fn(u64) -> f64,
    y: &dyn Fn(u64) -> f64,
) -> (Group, String) {
    // (x0, x1, y0, y1) on screen, y0 the top.
    let px: Vec<(f64, f64, f64, f64)> = buffers
        .iter()
        .zip(offsets)
        .map(|(b, &o)| (x(b.lower), x(b.upper), y(o.saturating_add(b.size)), y(o)))
        .collect();
    // A plan that fits under the bound is drawn whole; beyond it, specks are merged.
    let whole = buffers.len() <= MAX_RECTS;
    let visible = |r: &(f64, f64, f64, f64)| whole || (r.1 - r.0) * (r.3 - r.2) >= 1.0;
    let mut order: Vec<usize> = (0..buffers.len()).filter(|&i| visible(&px[i])).collect();
    let area = |i: usize| (px[i].1 - px[i].0) * (px[i].3 - px[i].2);
    order.sort_by(|&a, &b| area(b).total_cmp(&area(a)).then(a.cmp(&b)));
    order.truncate(MAX_RECTS);
    let mut alone = vec![false; buffers.len()];
    for &i in &order {
        alone[i] = true;
    }
    order.sort_unstable();

    let mut rects = Group::new();
    if buffers.len() <= DETAILED {
        rects = rects.set("stroke", "#333").set("stroke-width", 0.3);
    }
    for &i in &order {
        let (b, r) = (&buffers[i], px[i]);
        rects = rects.add(
            Rectangle::new()
                .set("x", r.0)
                .set("y", r.2)
                .set("width", round((r.1 - r.0).max(0.3)))
                .set("height", round((r.3 - r.2).max(0.3)))
                .set("fill", colour(i))
                .add(Title::new(format!(
                    "{}: [{}, {}) size {} at offset {}",
                    b.id,
                    b.lower,
                    b.upper,
                    bytes(b.size),
                    offsets[i]
                ))),
        );
    }

    // Merged buffers, by (column, row) cell.
    let mut cells: std::collections::BTreeMap<(u32, u32), MergedCell> = Default::default();
    let cell_of = |v: f64, origin: f64| ((v - origin).max(0.0) / CELL) as u32;
    let mut merged = 0usize;
    for (i, b) in buffers.iter().enumerate() {
        if alone[i] {
            continue;
        }
        merged += 1;
        let r = px[i];
        let (c0, c1) = (cell_of(r.0, LEFT), cell_of((r.1 - 1e-6).max(r.0), LEFT));
        let (r0, r1) = (cell_of(r.2, TOP), cell_of((r.3 - 1e-6).max(r.2), TOP));
        for c in c0..=c1 {
            for row in r0..=r1 {
                let e = cells
                    .entry((c, row))
                    .or_insert((0, 0, u64::MAX, 0, u64::MAX, 0));
                e.0 += 1;
                e.1 = e.1.saturating_add(b.size);
                e.2 = e.2.min(b.lower);
                e.3 = e.3.max(b.upper);
                e.4 = e.4.min(offsets[i]);
                e.5 = e.5.max(offsets[i].saturating_add(b.size));
            }
        }
    }
    let mut grey = Group::new().set("class", "merged").set("fill", "#777");
    for (&(c, row), &(n, total, t0, t1, o0, o1)) in &cells {
        grey = grey.add(
            Rectangle::new()
                .set("x", round(LEFT + f64::from(c) * CELL))
                .set("y", round(TOP + f64::from(row) * CELL))
                .set("width", CELL)
                .set("height", CELL)
                .set("fill-opacity", 0.55)
                .add(Title::new(format!(
                    "{n} small buffers merged: {} in all, times [{t0}, {t1}), offsets \
                     [{o0}, {o1})",
                    bytes(total)
                ))),
        );
    }
    let caption = if merged == 0 {
        format!(
            "{} buffers; hover one for its id, lifetime, size and offset",
            order.len()
        )
    } else {
        format!(
            "{} largest buffers drawn (hover for id, lifetime, size, offset); {merged} smaller \
             than a square pixel or beyond the {MAX_RECTS} largest merged into {} grey {CELL} px cells",
            order.len(),
            cells.len()
        )
    };
    // Grey cells underneath, so they never hide a buffer drawn alone.
    let mut layer = Group::new();
    if !cells.is_empty() {
        layer = layer.add(grey);
    }
    (layer.add(rects), caption)
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

/// A blank `width` × `height` picture: white background, sans-serif 12 px text.
fn canvas(width: f64, height: f64) -> Document {
    Document::new()
        .set("viewBox", (0, 0, width, height))
        .set("width", width)
        .set("height", height)
        .set("font-family", "sans-serif")
        .set("font-size", 12)
        .add(
            Rectangle::new()
                .set("width", "100%")
                .set("height", "100%")
                .set("fill", "white"),
        )
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

    /// A plan of `n` buffers: buffer `i` lives [i, i + 50) at slot `i % 50` of 1 MiB, with a
    /// few large ones.
    fn synthetic(n: u64) -> (Problem, Solution) {
        let mut p = Problem::new();
        let mut offsets = Vec::new();
        for i in 0..n {
            let size = if i % 997 == 0 {
                1 << 20
            } else {
                1000 + i % 7000
            };
            p.push(memplan_core::Buffer::new(format!("b{i}"), i, i + 50, size))
                .unwrap();
            offsets.push((i % 50) << 20);
        }
        let s = Solution {
            offsets,
            peak: 50 << 20,
            max_load: 40 << 20,
            optimal: false,
            nodes: 0,
            unproven: Some(memplan_core::Unproven::HeuristicOnly),
        };
        (p, s)
    }

    fn svg_of(p: &Problem, s: &Solution) -> String {
        let mut out = Vec::new();
        let labels = Labels {
            name: "synthetic",
            capacity: None,
        };
        write(&mut out, p, s, &labels).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_60k_buffer_plan_stays_small_and_hoverable() {
        let (p, s) = synthetic(60_000);
        let svg = svg_of(&p, &s);
        let rects = svg.matches("<rect").count();
        let cells =
            ((WIDTH - LEFT - RIGHT) / CELL).ceil() * ((HEIGHT - TOP - BOTTOM) / CELL).ceil();
        assert!(
            rects <= 1 + MAX_RECTS + cells as usize,
            "{rects} rectangles"
        );
        assert!(svg.len() < 1_500_000, "{} bytes", svg.len());
        // The large buffers are drawn alone, with their tooltip.
        assert!(
            svg.contains("b997: [997, 1047) size 1.00 MiB at offset"),
            "no tooltip"
        );
        // The caption says what was merged.
        let merged = svg.matches("small buffers merged").count();
        assert!(merged > 0);
        assert!(svg.contains("merged into"), "no caption");
        assert_eq!(svg.matches("<title>").count(), rects - 1);
    }

    #[test]
    fn a_small_plan_draws_every_buffer_with_a_tooltip() {
        let mut p = Problem::new();
        p.push(memplan_core::Buffer::new("x", 0, 10, 100)).unwrap();
        p.push(memplan_core::Buffer::new("y", 5, 20, 50)).unwrap();
        let s = Solution {
            offsets: vec![0, 100],
            peak: 150,
            max_load: 150,
            optimal: true,
            nodes: 0,
            unproven: None,
        };
        let svg = svg_of(&p, &s);
        assert!(svg.contains("x: [0, 10) size 100 B at offset 0"));
        assert!(svg.contains("y: [5, 20) size 50 B at offset 100"));
        assert!(!svg.contains("merged"));
        assert!(svg.contains("2 buffers; hover one"));
    }

    #[test]
    fn tick_values() {
        let labels = |lo, hi| ticks(lo, hi).into_iter().map(|t| t.1).collect::<Vec<_>>();
        assert_eq!(labels(0.0, 100.0), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(labels(0.0, 1.0), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(labels(5.0, 5.0), ["5"]);
    }
}
