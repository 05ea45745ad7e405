//! SVG plots of the first seed of each scenario, one line per strategy:
//! limit over time, throughput over time, service-latency CDF. plotters'
//! SVG backend writes text as `<text>` elements, so no font is loaded.

use super::{Curves, Plan, Results};
use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Writes three SVGs per scenario; returns how many.
pub fn write_all(plan: &Plan, res: &Results) -> Result<usize, String> {
    let mut n = 0;
    for (i, sc) in plan.scenarios.iter().enumerate() {
        let lines: Vec<(&str, &Curves)> = plan
            .strategies
            .iter()
            .zip(&res.runs[i])
            .filter_map(|((label, _), runs)| {
                runs.first()
                    .and_then(|r| r.curves.as_ref())
                    .map(|c| (label.as_str(), c))
            })
            .collect();
        let seed = plan.seeds[0];
        let path = |what: &str| plan.out.join(format!("{}-{what}.svg", sc.name));
        let err =
            |what: &str, e: Box<dyn std::error::Error>| format!("{}: {e}", path(what).display());
        let series = |c: &Curves, ys: &[f64]| -> Vec<(f64, f64)> {
            c.t_s.iter().copied().zip(ys.iter().copied()).collect()
        };
        let limit: Vec<(&str, Vec<(f64, f64)>)> = lines
            .iter()
            .map(|(l, c)| (*l, series(c, &c.limit)))
            .collect();
        time_plot(
            &path("limit").display().to_string(),
            &format!("{} (seed {seed}): limit over time", sc.name),
            "sum of clients' limits",
            &limit,
        )
        .map_err(|e| err("limit", e))?;
        let thr: Vec<(&str, Vec<(f64, f64)>)> = lines
            .iter()
            .map(|(l, c)| (*l, series(c, &c.throughput)))
            .collect();
        time_plot(
            &path("throughput").display().to_string(),
            &format!("{} (seed {seed}): goodput over time", sc.name),
            "successful ops/s",
            &thr,
        )
        .map_err(|e| err("throughput", e))?;
        let cdf: Vec<(&str, Vec<(f64, f64)>)> =
            lines.iter().map(|(l, c)| (*l, c.cdf.clone())).collect();
        cdf_plot(
            &path("latency-cdf").display().to_string(),
            &format!("{} (seed {seed}): service latency CDF", sc.name),
            &cdf,
        )
        .map_err(|e| err("latency-cdf", e))?;
        n += 3;
    }
    Ok(n)
}

fn max_of(lines: &[(&str, Vec<(f64, f64)>)], f: impl Fn(&(f64, f64)) -> f64) -> f64 {
    lines
        .iter()
        .flat_map(|(_, v)| v.iter().map(&f))
        .fold(0.0, f64::max)
}

fn time_plot(
    path: &str,
    title: &str,
    y_label: &str,
    lines: &[(&str, Vec<(f64, f64)>)],
) -> DrawResult<()> {
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = max_of(lines, |p| p.0).max(1e-3);
    let y_max = max_of(lines, |p| p.1).max(1.0) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("virtual time (s)")
        .y_desc(y_label)
        .draw()?;
    draw_lines(&mut chart, lines)?;
    root.present()?;
    Ok(())
}

fn cdf_plot(path: &str, title: &str, lines: &[(&str, Vec<(f64, f64)>)]) -> DrawResult<()> {
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_min = lines
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.0))
        .filter(|&x| x > 0.0)
        .fold(f64::INFINITY, f64::min);
    let x_min = if x_min.is_finite() { x_min } else { 0.001 };
    let x_max = max_of(lines, |p| p.0).max(x_min * 10.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((x_min..x_max).log_scale(), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("service latency (ms, log scale)")
        .y_desc("fraction of ops")
        .draw()?;
    let clipped: Vec<(&str, Vec<(f64, f64)>)> = lines
        .iter()
        .map(|(l, v)| (*l, v.iter().copied().filter(|p| p.0 > 0.0).collect()))
        .collect();
    draw_lines(&mut chart, &clipped)?;
    root.present()?;
    Ok(())
}

fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    lines: &[(&str, Vec<(f64, f64)>)],
) -> DrawResult<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, (label, pts)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(label.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}
