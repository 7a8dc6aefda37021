//! The replay timeline: reserved (bold) and allocated (faint) bytes over a trace's events,
//! one colour per allocator, with the capacity line and a marker where an allocator ran out.
//!
//! Layout (fixed canvas, whatever the trace):
//!
//! ```text
//! +--------------------------------------------------------------+
//! |                        title                                 |
//! |  y ticks |‾‾‾‾‾‾‾‾‾‾‾‾‾ plot area ‾‾‾‾‾‾‾‾‾‾‾‾‾‾|  legend      |
//! |  (bytes) |  lines, capacity (red dashed), OOM ✕  |  (outside    |
//! |          |_______________________________________|  the plot)   |
//! |                 x ticks (event index)                        |
//! +--------------------------------------------------------------+
//! ```
//!
//! Invariants: every line is drawn inside the plot area; the legend's box lies entirely to
//! its right, so it never covers a line; y ticks are round (1, 2 or 5 × 10^k of one binary
//! unit, B to EiB) and x ticks round event indices.

use svg::Document;
use svg::node::element::{Group, Line, Polyline, Rectangle, Text, Title};

use super::{binary_unit, bytes, round, ticks};

/// Canvas width and height.
pub const WIDTH: f64 = 1100.0;
/// Canvas height.
pub const HEIGHT: f64 = 520.0;
/// Left edge of the plot area (room for the y tick labels).
pub const LEFT: f64 = 90.0;
/// Top edge of the plot area (room for the title).
pub const TOP: f64 = 50.0;
/// Plot area width: the legend uses the rest of the canvas on the right.
pub const PLOT_WIDTH: f64 = 740.0;
/// Plot area height.
pub const PLOT_HEIGHT: f64 = 400.0;

const COLOURS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf",
];
const CAPACITY_COLOUR: &str = "#d62728";

/// One allocator's curve.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// The allocator's name.
    pub name: &'a str,
    /// (event index, allocated, reserved) samples, in event order.
    pub samples: &'a [(usize, u64, u64)],
    /// Peak reserved bytes, shown in the legend.
    pub peak_reserved: u64,
    /// Event at which the allocator ran out of memory (its replay stops there).
    pub oom_at_event: Option<usize>,
}

/// What the timeline shows besides the curves.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// Name of the trace, in the title.
    pub name: &'a str,
    /// Events in the trace: the x axis runs from 0 to this.
    pub events: usize,
    /// `--capacity`, drawn as a red dashed line.
    pub capacity: Option<u64>,
}

/// Where data land on the canvas.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Events on the x axis (at least 1).
    pub events: f64,
    /// Bytes at the top of the y axis (at least 1).
    pub ymax: f64,
}

impl Frame {
    /// The frame for these curves: x to `events`, y to 5 % above the largest of the peaks
    /// and the capacity.
    pub fn new(labels: &Labels<'_>, series: &[Series<'_>]) -> Self {
        let top = series
            .iter()
            .flat_map(|s| s.samples.iter().map(|p| p.1.max(p.2)))
            .chain(series.iter().map(|s| s.peak_reserved))
            .chain(labels.capacity)
            .max()
            .unwrap_or(0)
            .max(1);
        Self {
            events: labels.events.max(1) as f64,
            ymax: top as f64 * 1.05,
        }
    }

    /// The x coordinate of event `i`.
    pub fn x(&self, i: usize) -> f64 {
        round(LEFT + PLOT_WIDTH * (i as f64).min(self.events) / self.events)
    }

    /// The y coordinate of `v` bytes.
    pub fn y(&self, v: u64) -> f64 {
        round(TOP + PLOT_HEIGHT * (1.0 - (v as f64 / self.ymax).min(1.0)))
    }
}

/// Round byte ticks from 0 to `ymax`: (bytes, label), the values 1, 2 or 5 × 10^k of the
/// largest binary unit not above `ymax`.
pub fn byte_ticks(ymax: f64) -> Vec<(f64, String)> {
    let (unit, name) = binary_unit(ymax);
    ticks(0.0, ymax / unit)
        .into_iter()
        .map(|(v, label)| (v * unit, format!("{label} {name}")))
        .collect()
}

/// Round event-index ticks from 0 to `events` (whole events only).
pub fn event_ticks(events: usize) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = ticks(0.0, events.max(1) as f64)
        .into_iter()
        .filter(|(v, _)| v.fract() == 0.0)
        .map(|(v, _)| (v as usize, group_digits(v as usize)))
        .collect();
    out.dedup_by_key(|t| t.0);
    out
}

/// The last component of a path (the title has room for a file name, not a path).
fn short_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// `1234567` as `1,234,567`.
fn group_digits(v: usize) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Draws the timeline.
pub fn draw(labels: &Labels<'_>, series: &[Series<'_>]) -> Document {
    let f = Frame::new(labels, series);
    let (right, bottom) = (LEFT + PLOT_WIDTH, TOP + PLOT_HEIGHT);
    let mut doc = super::canvas(WIDTH, HEIGHT).add(
        Text::new(format!(
            "{}: device memory over the trace",
            short_name(labels.name)
        ))
        .set("x", LEFT + PLOT_WIDTH / 2.0)
        .set("y", 24)
        .set("text-anchor", "middle")
        .set("font-size", 15),
    );

    // Grid, ticks and axis titles.
    let mut grid = Group::new().set("stroke", "#e3e3e3").set("stroke-width", 1);
    let mut axes = Group::new().set("stroke", "black").set("stroke-width", 1);
    let mut text = Group::new().set("fill", "black");
    for (v, label) in byte_ticks(f.ymax) {
        let y = f.y(v as u64);
        grid = grid.add(line(LEFT, y, right, y));
        axes = axes.add(line(LEFT - 5.0, y, LEFT, y));
        text = text.add(
            Text::new(label)
                .set("class", "ytick")
                .set("x", LEFT - 8.0)
                .set("y", y + 4.0)
                .set("text-anchor", "end"),
        );
    }
    for (i, label) in event_ticks(labels.events) {
        let x = f.x(i);
        grid = grid.add(line(x, TOP, x, bottom));
        axes = axes.add(line(x, bottom, x, bottom + 5.0));
        text = text.add(
            Text::new(label)
                .set("class", "xtick")
                .set("x", x)
                .set("y", bottom + 18.0)
                .set("text-anchor", "middle"),
        );
    }
    axes = axes
        .add(line(LEFT, bottom, right, bottom))
        .add(line(LEFT, TOP, LEFT, bottom));
    text = text
        .add(
            Text::new(format!(
                "event (allocations and frees, 0 … {})",
                labels.events
            ))
            .set("x", LEFT + PLOT_WIDTH / 2.0)
            .set("y", bottom + 40.0)
            .set("text-anchor", "middle"),
        )
        .add(
            Text::new("bytes")
                .set(
                    "transform",
                    format!("translate(18,{}) rotate(-90)", TOP + PLOT_HEIGHT / 2.0),
                )
                .set("text-anchor", "middle"),
        );
    doc = doc.add(grid).add(axes).add(text);

    // Curves: reserved bold, allocated faint.
    for (k, s) in series.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        // A replay that ran out stops there: its last sample is drawn at that event.
        let end = s.oom_at_event.unwrap_or(usize::MAX);
        let pts = |pick: fn(&(usize, u64, u64)) -> u64| {
            s.samples
                .iter()
                .map(|p| format!("{},{}", f.x(p.0.min(end)), f.y(pick(p))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        doc = doc.add(
            Group::new()
                .set("class", "series")
                .add(Title::new(format!(
                    "{}: peak reserved {}",
                    s.name,
                    bytes(s.peak_reserved)
                )))
                .add(
                    Polyline::new()
                        .set("points", pts(|p| p.1))
                        .set("fill", "none")
                        .set("stroke", c)
                        .set("stroke-opacity", 0.5)
                        .set("stroke-width", 1),
                )
                .add(
                    Polyline::new()
                        .set("points", pts(|p| p.2))
                        .set("fill", "none")
                        .set("stroke", c)
                        .set("stroke-width", 2),
                ),
        );
    }

    // Capacity line, across the plot area.
    if let Some(cap) = labels.capacity {
        let y = f.y(cap);
        doc = doc.add(
            line(LEFT, y, right, y)
                .set("class", "capacity")
                .set("stroke", CAPACITY_COLOUR)
                .set("stroke-width", 1.5)
                .set("stroke-dasharray", "8,4")
                .add(Title::new(format!("capacity {}", bytes(cap)))),
        );
    }

    // OOM markers: a dashed vertical line and a cross at the event that ran out.
    for (k, s) in series.iter().enumerate() {
        let Some(at) = s.oom_at_event else { continue };
        let c = COLOURS[k % COLOURS.len()];
        let x = f.x(at);
        let y = s.samples.last().map_or(bottom, |p| f.y(p.2));
        let d = 5.0;
        doc = doc.add(
            Group::new()
                .set("class", "oom")
                .set("data-event", at)
                .set("stroke", c)
                .add(Title::new(format!(
                    "{}: out of memory at event {at}",
                    s.name
                )))
                .add(
                    line(x, TOP, x, bottom)
                        .set("stroke-width", 1)
                        .set("stroke-dasharray", "3,3"),
                )
                .add(line(x - d, y - d, x + d, y + d).set("stroke-width", 2.5))
                .add(line(x - d, y + d, x + d, y - d).set("stroke-width", 2.5)),
        );
    }

    doc.add(legend(labels, series))
}

/// The legend, in a box to the right of the plot area.
fn legend(labels: &Labels<'_>, series: &[Series<'_>]) -> Group {
    let x0 = LEFT + PLOT_WIDTH + 16.0;
    let width = WIDTH - x0 - 8.0;
    let mut rows: Vec<(Group, f64)> = Vec::new();
    let row_text = |t: String, x: f64, y: f64| Text::new(t).set("x", x).set("y", y + 4.0);
    let swatch = |c: &str, w: f64, opacity: f64, dash: &str, y: f64| {
        line(x0 + 8.0, y, x0 + 32.0, y)
            .set("stroke", c.to_owned())
            .set("stroke-width", w)
            .set("stroke-opacity", opacity)
            .set("stroke-dasharray", dash.to_owned())
    };
    let mut y = TOP + 18.0;
    for (k, s) in series.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        let mut g = Group::new()
            .add(swatch(c, 2.0, 1.0, "none", y))
            .add(row_text(s.name.to_owned(), x0 + 38.0, y).set("font-weight", "bold"))
            .add(row_text(
                format!("peak reserved {}", bytes(s.peak_reserved)),
                x0 + 38.0,
                y + 15.0,
            ));
        let mut h = 34.0;
        if let Some(at) = s.oom_at_event {
            g = g.add(
                row_text(
                    format!("✕ out of memory at event {at}"),
                    x0 + 38.0,
                    y + 30.0,
                )
                .set("fill", c),
            );
            h += 15.0;
        }
        rows.push((g, h));
        y += h;
    }
    rows.push((
        Group::new()
            .add(swatch("#555", 2.0, 1.0, "none", y))
            .add(row_text("reserved".into(), x0 + 38.0, y))
            .add(swatch("#555", 1.0, 0.5, "none", y + 16.0))
            .add(row_text("allocated".into(), x0 + 38.0, y + 16.0)),
        34.0,
    ));
    y += 34.0;
    if let Some(cap) = labels.capacity {
        rows.push((
            Group::new()
                .add(swatch(CAPACITY_COLOUR, 1.5, 1.0, "8,4", y))
                .add(row_text(format!("capacity {}", bytes(cap)), x0 + 38.0, y)),
            18.0,
        ));
        y += 18.0;
    }
    let mut g = Group::new().set("class", "legend").add(
        Rectangle::new()
            .set("x", x0)
            .set("y", TOP)
            .set("width", round(width))
            .set("height", round(y - TOP))
            .set("fill", "white")
            .set("stroke", "#999"),
    );
    for (row, _) in rows {
        g = g.add(row);
    }
    g
}

fn line(x1: f64, y1: f64, x2: f64, y2: f64) -> Line {
    super::line(x1, y1, x2, y2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of attribute `name` in the first element of `svg` with `class="{class}"`.
    fn attr(svg: &str, class: &str, name: &str) -> f64 {
        let at = svg.find(&format!("class=\"{class}\"")).unwrap();
        let start = svg[..at].rfind('<').unwrap();
        let end = start + svg[start..].find('>').unwrap();
        let tag = &svg[start..end];
        let key = format!(" {name}=\"");
        let v = &tag[tag.find(&key).unwrap() + key.len()..];
        v[..v.find('"').unwrap()].parse().unwrap()
    }

    fn samples() -> Vec<(usize, u64, u64)> {
        vec![(0, 0, 0), (100, 3 << 30, 4 << 30), (250, 1 << 30, 5 << 30)]
    }

    #[test]
    fn byte_ticks_are_round_binary_units() {
        let labels = |v: f64| byte_ticks(v).into_iter().map(|t| t.1).collect::<Vec<_>>();
        assert_eq!(
            labels(5.25 * (1u64 << 30) as f64),
            ["0 GiB", "1 GiB", "2 GiB", "3 GiB", "4 GiB", "5 GiB"]
        );
        assert_eq!(
            labels(300.0 * 1024.0 * 1024.0),
            [
                "0 MiB", "50 MiB", "100 MiB", "150 MiB", "200 MiB", "250 MiB", "300 MiB"
            ]
        );
        assert_eq!(labels(900.0), ["0 B", "200 B", "400 B", "600 B", "800 B"]);
        let t = byte_ticks(3.3 * 1024.0);
        assert_eq!(t[1], (512.0, "0.5 KiB".to_owned()));
    }

    #[test]
    fn event_ticks_are_whole_round_events() {
        let ev = |n| event_ticks(n).into_iter().map(|t| t.0).collect::<Vec<_>>();
        assert_eq!(ev(26770), [0, 5000, 10000, 15000, 20000, 25000]);
        assert_eq!(ev(3), [0, 1, 2, 3]);
        assert_eq!(ev(0), [0, 1]);
        assert_eq!(event_ticks(1_000_000)[1].1, "200,000");
    }

    #[test]
    fn capacity_line_oom_marker_and_legend_are_where_they_belong() {
        let s = samples();
        let series = [
            Series {
                name: "torch",
                samples: &s,
                peak_reserved: 5 << 30,
                oom_at_event: Some(250),
            },
            Series {
                name: "memplan",
                samples: &s[..2],
                peak_reserved: 4 << 30,
                oom_at_event: None,
            },
        ];
        let labels = Labels {
            name: "t",
            events: 400,
            capacity: Some(6 << 30),
        };
        let svg = draw(&labels, &series).to_string().replace('\n', " ");
        let f = Frame::new(&labels, &series);
        // y max is 5 % above the capacity, the largest value.
        assert_eq!(f.ymax, 6.0 * 1.05 * (1u64 << 30) as f64);
        let cap_y = attr(&svg, "capacity", "y1");
        assert_eq!(cap_y, f.y(6 << 30));
        assert_eq!(cap_y, round(TOP + PLOT_HEIGHT * (1.0 - 1.0 / 1.05)));
        assert_eq!(
            attr(&svg, "capacity", "x2") - attr(&svg, "capacity", "x1"),
            PLOT_WIDTH
        );
        // The OOM marker sits at event 250 of 400.
        assert_eq!(attr(&svg, "oom", "data-event"), 250.0);
        let oom_line = &svg[svg.find("class=\"oom\"").unwrap()..];
        let x1: f64 = {
            let v = &oom_line[oom_line.find("x1=\"").unwrap() + 4..];
            v[..v.find('"').unwrap()].parse().unwrap()
        };
        assert_eq!(x1, round(LEFT + PLOT_WIDTH * 250.0 / 400.0));
        assert_eq!(svg.matches("class=\"oom\"").count(), 1);
        assert!(svg.contains("out of memory at event 250"));
        // The legend's box is right of the plot area and inside the canvas.
        let legend = &svg[svg.find("class=\"legend\"").unwrap()..];
        let rect = &legend[legend.find("<rect").unwrap()..];
        let num = |k: &str| -> f64 {
            let v = &rect[rect.find(k).unwrap() + k.len()..];
            v[..v.find('"').unwrap()].parse().unwrap()
        };
        let (rx, rw) = (num(" x=\""), num(" width=\""));
        assert!(rx > LEFT + PLOT_WIDTH && rx + rw <= WIDTH, "{rx} {rw}");
        assert!(num(" height=\"") + num(" y=\"") <= HEIGHT);
        // Round y labels; the x axis is labelled with events.
        assert!(
            svg.contains("> 5 GiB <") && svg.contains("> 0 GiB <"),
            "{svg}"
        );
        assert!(svg.contains("class=\"xtick\""));
        assert!(svg.contains("> event (allocations and frees, 0 … 400) <"));
    }

    #[test]
    fn no_capacity_no_line() {
        let s = samples();
        let series = [Series {
            name: "torch",
            samples: &s,
            peak_reserved: 5 << 30,
            oom_at_event: None,
        }];
        let labels = Labels {
            name: "t",
            events: 250,
            capacity: None,
        };
        let svg = draw(&labels, &series).to_string().replace('\n', " ");
        assert!(!svg.contains("class=\"capacity\""));
        assert!(!svg.contains("class=\"oom\""));
    }
}
