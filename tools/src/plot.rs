//! `portal research plot`: figures of a study's measures, as SVG and PNG,
//! titled and labelled for a paper. Drawn from the same tables as the
//! export (the same read-only pass over the events):
//!
//! - `engagement`: visits per week for each module;
//! - `retention`: the share of service users still active in month n;
//! - `initiation`: exchanges initiated by providers per exchange initiated
//!   by service users, week by week.
//!
//! Text is set in DejaVu Sans, built into the binary (tools/assets), so the
//! figures look the same on every machine.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;
use uuid::Uuid;

use api::settings::Settings;
use projections::research::Table;

use crate::error::AtPath;
use crate::{Error, Result};

/// Pixel size of every figure (SVG user units and PNG pixels).
const SIZE: (u32, u32) = (1200, 750);

/// DejaVu Sans (see tools/assets/DejaVuSans.LICENSE).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// What to draw.
#[derive(Debug, Clone)]
pub struct PlotRequest {
    pub study: Uuid,
    pub as_of: DateTime<Utc>,
    pub out: PathBuf,
    pub progress: bool,
}

/// Draws every figure; returns the files written.
pub async fn plot(settings: &Settings, request: &PlotRequest) -> Result<Vec<PathBuf>> {
    let computed =
        crate::export::compute(settings, request.study, request.as_of, request.progress).await?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| Error::Font)?;
    std::fs::create_dir_all(&request.out).at(&request.out)?;
    let subtitle = format!(
        "{} ({}), as of {}",
        computed.study.title,
        computed.study.protocol_id,
        request.as_of.format("%Y-%m-%d")
    );
    let table = |name: &str| {
        computed
            .tables
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::MissingTable(name.to_string()))
    };
    let figures: Vec<(&str, Figure)> = vec![
        (
            "engagement",
            engagement(table("module_weeks")?, table("study_weeks")?),
        ),
        ("retention", retention(table("retention")?)),
        ("initiation", initiation(table("study_weeks")?)),
    ];
    let mut written = Vec::new();
    for (name, figure) in figures {
        for extension in ["svg", "png"] {
            let path = request.out.join(format!("{name}.{extension}"));
            draw_file(&path, &figure, &subtitle)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Points of a line: (x position, y value if known).
type Points = Vec<(usize, Option<f64>)>;

/// One figure: lines over a shared x axis.
struct Figure {
    title: &'static str,
    x_label: &'static str,
    y_label: &'static str,
    /// Labels of the x positions 0, 1, ...
    x_ticks: Vec<String>,
    /// (name, points (x, y)); a missing y leaves a gap in the line.
    series: Vec<(String, Points)>,
    /// The y axis starts at 0 and ends at least here.
    y_min_top: f64,
    /// Draw y values as percentages.
    percent: bool,
}

fn week_label(week: &str) -> String {
    week.parse::<NaiveDate>()
        .map(|d| d.format("%d %b %y").to_string())
        .unwrap_or_else(|_| week.to_string())
}

fn engagement(modules: &Table, study_weeks: &Table) -> Figure {
    // Every week of the study, used or not: a quiet week is a zero, not a
    // week left out.
    let weeks: Vec<String> = study_weeks
        .rows
        .iter()
        .filter_map(|r| study_weeks.text(r, "week").map(str::to_string))
        .collect();
    let mut names: Vec<String> = modules
        .rows
        .iter()
        .filter_map(|r| modules.text(r, "module").map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    let series = names
        .into_iter()
        .map(|module| {
            let points = weeks
                .iter()
                .enumerate()
                .map(|(i, week)| {
                    let visits = modules
                        .rows
                        .iter()
                        .find(|r| {
                            modules.text(r, "week") == Some(week.as_str())
                                && modules.text(r, "module") == Some(module.as_str())
                        })
                        .and_then(|r| modules.int(r, "visits"))
                        .unwrap_or(0);
                    (i, Some(visits as f64))
                })
                .collect();
            (module.replace('_', " "), points)
        })
        .collect();
    Figure {
        title: "Weekly engagement per module",
        x_label: "Week (starting Monday)",
        y_label: "Visits using the module",
        x_ticks: weeks.iter().map(|w| week_label(w)).collect(),
        series,
        y_min_top: 1.0,
        percent: false,
    }
}

fn retention(months: &Table) -> Figure {
    let points: Vec<(usize, Option<f64>)> = months
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i, months.float(r, "share").map(|s| s * 100.0)))
        .collect();
    Figure {
        title: "Retention of service users",
        x_label: "Month since enrolment (30 days)",
        y_label: "Active in the month (% of those enrolled that long)",
        x_ticks: months
            .rows
            .iter()
            .map(|r| {
                format!(
                    "{} (n={})",
                    months.int(r, "month").unwrap_or(0),
                    months.int(r, "eligible").unwrap_or(0)
                )
            })
            .collect(),
        series: vec![("service users".into(), points)],
        y_min_top: 100.0,
        percent: true,
    }
}

fn initiation(weeks: &Table) -> Figure {
    // A week without exchanges started by users has no ratio: a gap.
    let points: Vec<(usize, Option<f64>)> = weeks
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i, weeks.float(r, "initiation_ratio")))
        .collect();
    Figure {
        title: "Who starts conversations: provider-to-user initiation ratio",
        x_label: "Week (starting Monday)",
        y_label: "Exchanges started by providers per exchange started by users",
        x_ticks: weeks
            .rows
            .iter()
            .map(|r| week_label(weeks.text(r, "week").unwrap_or_default()))
            .collect(),
        series: vec![("provider : user".into(), points)],
        y_min_top: 1.0,
        percent: false,
    }
}

fn draw_file(path: &Path, figure: &Figure, subtitle: &str) -> Result<()> {
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| Error::Plot {
        path: path.to_path_buf(),
        source,
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            draw(&root, figure, subtitle).map_err(|e| fail(e.into()))?;
            root.present().map_err(|e| fail(e.into()))
        }
        _ => {
            let root = BitMapBackend::new(path, SIZE).into_drawing_area();
            draw(&root, figure, subtitle).map_err(|e| fail(e.into()))?;
            root.present().map_err(|e| fail(e.into()))
        }
    }
}

/// Colours that stay apart in print and for most colour-blind readers
/// (Okabe-Ito), then a few more.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
    RGBColor(128, 128, 128),
    RGBColor(153, 79, 0),
];

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &Figure,
    subtitle: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(90);
    top.draw(&Text::new(
        figure.title,
        (40, 18),
        ("sans-serif", 30).into_font().color(&BLACK),
    ))?;
    top.draw(&Text::new(
        subtitle.to_string(),
        (40, 58),
        ("sans-serif", 18).into_font().color(&RGBColor(80, 80, 80)),
    ))?;
    let n = figure.x_ticks.len().max(1);
    let top_y = figure
        .series
        .iter()
        .flat_map(|(_, p)| p.iter().filter_map(|(_, y)| *y))
        .fold(figure.y_min_top, f64::max);
    let top_y = if figure.percent { 100.0 } else { top_y * 1.1 };
    let mut chart = ChartBuilder::on(&body)
        .margin(20)
        .margin_right(60)
        .x_label_area_size(70)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..(n as f64 - 1.0).max(1.0), 0f64..top_y)?;
    let ticks = figure.x_ticks.clone();
    let percent = figure.percent;
    chart
        .configure_mesh()
        .x_desc(figure.x_label)
        .y_desc(figure.y_label)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 14))
        .x_labels(n.min(12))
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            ticks.get(i as usize).cloned().unwrap_or_default()
        })
        .y_label_formatter(&move |y| {
            if percent {
                format!("{y:.0}%")
            } else if top_y < 10.0 {
                format!("{y:.1}")
            } else {
                format!("{y:.0}")
            }
        })
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for (i, (name, points)) in figure.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        // One line per run of known values; a missing value breaks the line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (x, y) in points {
            match y {
                Some(y) => runs
                    .last_mut()
                    .map(|r| r.push((*x as f64, *y)))
                    .unwrap_or(()),
                None => runs.push(Vec::new()),
            }
        }
        runs.retain(|r| !r.is_empty());
        for (k, run) in runs.iter().enumerate() {
            let drawn = chart.draw_series(LineSeries::new(run.clone(), colour.stroke_width(2)))?;
            if k == 0 {
                drawn.label(name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
                });
            }
            chart.draw_series(run.iter().map(|p| Circle::new(*p, 3, colour.filled())))?;
        }
    }
    if figure.series.len() > 1 || figure.series.iter().any(|(n, _)| !n.is_empty()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 15))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    Ok(())
}
