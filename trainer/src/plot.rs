//! Pictures the trainer writes (ROC curves, heat maps): the one font they use and the PNG
//! path. The font is a Latin subset of DejaVu Sans compiled into the binary
//! (`assets/DejaVu-LICENSE.txt`), so text renders the same on every machine with no font files.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// The font family name charts ask for.
pub const FONT: &str = "sans-serif";

static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Registers the built-in font with plotters (once per process; later calls do nothing).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are compiled in and parsed by the test below, so this cannot fail at run time.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing failed.
    #[error("cannot draw {path}: {message}")]
    Draw {
        /// The picture.
        path: std::path::PathBuf,
        /// plotters' complaint.
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The picture.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Draws a `width` x `height` picture with `draw` and writes it to `path` as PNG, atomically.
pub fn png<F>(path: &Path, width: u32, height: u32, draw: F) -> Result<(), PlotError>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
{
    let white = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    png_over(path, white, draw)
}

/// Draws with `draw` over `background` and writes the result to `path` as PNG, atomically.
pub fn png_over<F>(path: &Path, background: image::RgbImage, draw: F) -> Result<(), PlotError>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
{
    register_font();
    let (width, height) = background.dimensions();
    let mut buffer = background.into_raw();
    {
        let area = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        let fail = |message: String| PlotError::Draw {
            path: path.to_owned(),
            message,
        };
        draw(&area).map_err(fail)?;
        area.present().map_err(|e| fail(e.to_string()))?;
    }
    let image =
        image::RgbImage::from_raw(width, height, buffer).ok_or_else(|| PlotError::Draw {
            path: path.to_owned(),
            message: "buffer size".into(),
        })?;
    write_png(path, &image)
}

/// Writes `image` to `path` as PNG, atomically, creating the folder.
pub fn write_png(path: &Path, image: &image::RgbImage) -> Result<(), PlotError> {
    let fail = |source| PlotError::Write {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| PlotError::Draw {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    facegate_contract::fsutil::write_atomic(path, &bytes).map_err(fail)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_font_parses_and_text_draws() {
        assert!(plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
        let dir = std::env::temp_dir().join(format!("facegate-plot-{}", std::process::id()));
        let path = dir.join("t.png");
        png(&path, 80, 30, |area| {
            area.draw(&Text::new("ROC 1e-3", (2, 5), (FONT, 16)))
                .map_err(|e| e.to_string())
        })
        .unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let dark = img.pixels().filter(|p| p.0[0] < 128).count();
        assert!(dark > 20, "{dark} dark pixels: no text drawn");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
