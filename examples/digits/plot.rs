//! Learning curves as a PNG: training loss (log scale) and held-out accuracy
//! per epoch, one line per model. Drawn with plotters' bitmap backend; text
//! uses DejaVu Sans embedded in the binary, so no system font library is
//! needed.

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;

/// One model's learning curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// The legend label.
    pub name: String,
    /// Mean training loss per epoch.
    pub train_loss: Vec<f32>,
    /// Held-out accuracy per epoch, in `[0, 1]`.
    pub test_accuracy: Vec<f32>,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

fn register_fonts() -> Result<(), String> {
    // Registering again replaces the same font: cheap (the bytes are static).
    register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "the embedded DejaVu Sans font could not be read".to_owned())
}

/// Draws `curves` into a `width x height` PNG at `path`.
pub fn draw(path: &Path, curves: &[Curve], width: u32, height: u32) -> Result<(), String> {
    register_fonts()?;
    let e =
        |err: &dyn std::fmt::Display| format!("{}: cannot draw the chart: {err}", path.display());
    let epochs = curves
        .iter()
        .map(|c| c.train_loss.len().max(c.test_accuracy.len()))
        .max()
        .unwrap_or(0)
        .max(2);
    let losses = curves.iter().flat_map(|c| c.train_loss.iter().copied());
    let losses: Vec<f64> = losses
        .filter(|l| l.is_finite() && *l > 0.0)
        .map(f64::from)
        .collect();
    let lo = losses.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = losses.iter().copied().fold(0.0f64, f64::max);
    let (lo, hi) = if losses.is_empty() {
        (1e-3, 1.0)
    } else {
        (lo * 0.8, hi * 1.25)
    };
    let accs = curves.iter().flat_map(|c| c.test_accuracy.iter().copied());
    let acc_lo = accs.fold(1.0f32, f32::min).min(0.9);
    let acc_lo = (f64::from(acc_lo) * 100.0 / 5.0).floor() * 5.0;

    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (left, right) = root.split_horizontally(width / 2);

    let mut chart = ChartBuilder::on(&left)
        .caption("Training loss", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1usize..epochs, (lo..hi).log_scale())
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 14))
        .x_desc("epoch")
        .y_desc("cross-entropy")
        .y_label_formatter(&|v| format!("{v:.3}"))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, c) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points = c
            .train_loss
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite() && **l > 0.0)
            .map(|(k, &l)| (k + 1, f64::from(l)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(c.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|x| e(&x))?;

    let mut chart = ChartBuilder::on(&right)
        .caption("Held-out accuracy", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1usize..epochs, acc_lo..100.5f64)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 14))
        .x_desc("epoch")
        .y_desc("accuracy (%)")
        .draw()
        .map_err(|x| e(&x))?;
    for (i, c) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points = c
            .test_accuracy
            .iter()
            .enumerate()
            .map(|(k, &a)| (k + 1, f64::from(a) * 100.0));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(c.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
