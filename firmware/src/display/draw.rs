//! Drawing the door screen with embedded-graphics into an RGB picture, whatever the output
//! (a framebuffer, a PNG file) does with it afterwards.

use super::screen::View;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::{FONT_6X10, FONT_10X20};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Text};
use image::{Rgb, RgbImage};
use std::convert::Infallible;

/// Background of a welcome.
pub const GRANT: Rgb888 = Rgb888::new(0x1b, 0x7f, 0x3a);
/// Background of a refusal.
pub const REFUSE: Rgb888 = Rgb888::new(0xa8, 0x1e, 0x1e);
/// Background of a hint.
pub const HINT: Rgb888 = Rgb888::new(0xb3, 0x6b, 0x00);
/// Background when idle.
pub const IDLE: Rgb888 = Rgb888::new(0x14, 0x18, 0x20);

/// An RGB picture embedded-graphics can draw on.
pub struct Canvas(pub RgbImage);

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let (w, h) = self.0.dimensions();
        for Pixel(p, c) in pixels {
            if let (Ok(x), Ok(y)) = (u32::try_from(p.x), u32::try_from(p.y))
                && x < w
                && y < h
            {
                self.0.put_pixel(x, y, Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }
}

/// Text cut to what fits `width` pixels in the 10x20 font.
fn fit(text: &str, width: u32) -> String {
    let max = (width / 10).saturating_sub(2).max(1) as usize;
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('~');
        s
    }
}

/// Draws `view` at `width` x `height`: a coloured background, a headline, a second line,
/// the device's name at the bottom, and the heat map thumbnail of the decision when given.
pub fn render(
    view: &View,
    device: &str,
    heatmap: Option<&RgbImage>,
    width: u32,
    height: u32,
) -> RgbImage {
    let mut canvas = Canvas(RgbImage::new(width.max(1), height.max(1)));
    let (background, headline, detail) = match view {
        View::Idle => (IDLE, "Look at the camera".to_owned(), String::new()),
        View::Welcome { name } => (GRANT, "Welcome".to_owned(), name.clone()),
        View::Refused { why } => (REFUSE, "Access denied".to_owned(), why.clone()),
        View::Hint { hint } => (HINT, hint.clone(), String::new()),
    };
    let Ok(()) = canvas.clear(background);
    let big = MonoTextStyle::new(&FONT_10X20, Rgb888::WHITE);
    let small = MonoTextStyle::new(&FONT_6X10, Rgb888::new(0xdd, 0xdd, 0xdd));
    let w = i32::try_from(width).unwrap_or(i32::MAX);
    let h = i32::try_from(height).unwrap_or(i32::MAX);
    // The thumbnail takes the upper part of the screen when there is room for it.
    let thumb = heatmap.filter(|_| height >= 200 && width >= 160);
    let text_top = if let Some(map) = thumb {
        let side = (height / 2).min(width / 2).min(map.width());
        let small_map =
            image::imageops::resize(map, side, side, image::imageops::FilterType::Triangle);
        let x0 = (width - side) / 2;
        let y0 = height / 12;
        let border = Rectangle::new(
            Point::new(x0 as i32 - 2, y0 as i32 - 2),
            Size::new(side + 4, side + 4),
        );
        let Ok(()) = border
            .into_styled(PrimitiveStyle::with_fill(Rgb888::WHITE))
            .draw(&mut canvas);
        image::imageops::replace(&mut canvas.0, &small_map, i64::from(x0), i64::from(y0));
        (y0 + side) as i32 + 36
    } else {
        h / 2 - 10
    };
    let centre = |y: i32| Point::new(w / 2, y);
    let Ok(_) = Text::with_alignment(
        &fit(&headline, width),
        centre(text_top),
        big,
        Alignment::Center,
    )
    .draw(&mut canvas);
    if !detail.is_empty() {
        let Ok(_) = Text::with_alignment(
            &fit(&detail, width),
            centre(text_top + 28),
            big,
            Alignment::Center,
        )
        .draw(&mut canvas);
    }
    let Ok(_) =
        Text::with_alignment(device, centre(h - 8), small, Alignment::Center).draw(&mut canvas);
    canvas.0
}
