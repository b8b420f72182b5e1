//! Raw camera and video pixels to RGB: packed YUYV (what a USB camera sends uncompressed),
//! planar YUV (YUV4MPEG2 files) and JPEG (MJPEG cameras and files). Part of *source*: every
//! frame leaves the source as RGB, whatever the wire format was.

use super::files::MAX_PIXELS;
use image::RgbImage;

/// Which digital YUV range the samples use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YuvRange {
    /// Y in 16..=235, chroma in 16..=240 (BT.601 "TV" range: cameras, most video).
    Limited,
    /// Every sample 0..=255 (JPEG's).
    Full,
}

/// BT.601 YUV to RGB for one pixel.
#[inline]
fn rgb(y: u8, u: u8, v: u8, range: YuvRange) -> [u8; 3] {
    let (y, u, v) = (f32::from(y), f32::from(u) - 128.0, f32::from(v) - 128.0);
    let (y, cu, cv) = match range {
        YuvRange::Limited => (1.164_383 * (y - 16.0), 1.138_393 * u, 1.138_393 * v),
        YuvRange::Full => (y, u, v),
    };
    let clamp = |x: f32| x.round().clamp(0.0, 255.0) as u8;
    [
        clamp(y + 1.402 * cv),
        clamp(y - 0.344_136 * cu - 0.714_136 * cv),
        clamp(y + 1.772 * cu),
    ]
}

fn check_size(width: u32, height: u32) -> Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!("{width}x{height}: empty frame"));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "{width}x{height} pixels is over the limit of {MAX_PIXELS}"
        ));
    }
    Ok(())
}

/// Packed 4:2:2 `Y0 U Y1 V` (V4L2's YUYV), limited range, to RGB.
pub fn yuyv_to_rgb(width: u32, height: u32, data: &[u8]) -> Result<RgbImage, String> {
    check_size(width, height)?;
    if !width.is_multiple_of(2) {
        return Err(format!("YUYV needs an even width, got {width}"));
    }
    let want = width as usize * height as usize * 2;
    if data.len() < want {
        return Err(format!(
            "YUYV {width}x{height} needs {want} bytes, the buffer holds {}",
            data.len()
        ));
    }
    let mut out = Vec::with_capacity(want / 2 * 3);
    for px in data[..want].chunks_exact(4) {
        let (y0, u, y1, v) = (px[0], px[1], px[2], px[3]);
        out.extend_from_slice(&rgb(y0, u, v, YuvRange::Limited));
        out.extend_from_slice(&rgb(y1, u, v, YuvRange::Limited));
    }
    RgbImage::from_raw(width, height, out).ok_or_else(|| "YUYV: buffer size mismatch".into())
}

/// Planar YUV with chroma planes subsampled by `(xdiv, ydiv)` (2,2 for 4:2:0; 2,1 for 4:2:2;
/// 1,1 for 4:4:4), rows of the chroma planes `ceil(width / xdiv)` samples long. Empty chroma
/// planes mean grey (monochrome video).
pub struct Planes<'a> {
    /// Luma, `width * height`.
    pub y: &'a [u8],
    /// Blue-difference chroma.
    pub u: &'a [u8],
    /// Red-difference chroma.
    pub v: &'a [u8],
    /// Horizontal chroma subsampling.
    pub xdiv: usize,
    /// Vertical chroma subsampling.
    pub ydiv: usize,
}

/// Planar YUV to RGB.
pub fn planar_to_rgb(
    width: u32,
    height: u32,
    planes: &Planes<'_>,
    range: YuvRange,
) -> Result<RgbImage, String> {
    check_size(width, height)?;
    let (w, h) = (width as usize, height as usize);
    let (xdiv, ydiv) = (planes.xdiv.max(1), planes.ydiv.max(1));
    let cw = w.div_ceil(xdiv);
    let ch = h.div_ceil(ydiv);
    let mono = planes.u.is_empty() && planes.v.is_empty();
    if planes.y.len() < w * h || (!mono && (planes.u.len() < cw * ch || planes.v.len() < cw * ch)) {
        return Err(format!("planar YUV {width}x{height}: planes too short"));
    }
    let mut out = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        let crow = (row / ydiv) * cw;
        for col in 0..w {
            let y = planes.y[row * w + col];
            let (u, v) = if mono {
                (128, 128)
            } else {
                let c = crow + col / xdiv;
                (planes.u[c], planes.v[c])
            };
            out.extend_from_slice(&rgb(y, u, v, range));
        }
    }
    RgbImage::from_raw(width, height, out).ok_or_else(|| "planar YUV: size mismatch".into())
}

/// Decodes one JPEG image (an MJPEG frame), refusing oversized ones before decoding.
pub fn jpeg_to_rgb(data: &[u8]) -> Result<RgbImage, String> {
    let reader =
        || image::ImageReader::with_format(std::io::Cursor::new(data), image::ImageFormat::Jpeg);
    let (width, height) = reader().into_dimensions().map_err(|e| e.to_string())?;
    check_size(width, height)?;
    Ok(reader().decode().map_err(|e| e.to_string())?.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RGB to limited-range BT.601 YUV, the inverse used to make test input.
    fn yuv(p: [u8; 3]) -> [u8; 3] {
        let [r, g, b] = p.map(f32::from);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        let u = (b - y) / 1.772;
        let v = (r - y) / 1.402;
        let q = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        [
            q(16.0 + y * 219.0 / 255.0),
            q(128.0 + u * 224.0 / 255.0),
            q(128.0 + v * 224.0 / 255.0),
        ]
    }

    #[test]
    fn black_white_and_colours_survive_yuyv() {
        // Two pixels per 4 bytes, sharing chroma: use pairs of the same colour.
        let colours = [
            [0, 0, 0],
            [255, 255, 255],
            [200, 30, 40],
            [20, 180, 90],
            [60, 70, 220],
        ];
        let mut data = Vec::new();
        for c in colours {
            let [y, u, v] = yuv(c);
            data.extend_from_slice(&[y, u, y, v]);
        }
        let img = yuyv_to_rgb(10, 1, &data).unwrap();
        for (i, c) in colours.iter().enumerate() {
            for px in [
                img.get_pixel(2 * i as u32, 0),
                img.get_pixel(2 * i as u32 + 1, 0),
            ] {
                for k in 0..3 {
                    assert!(
                        (i32::from(px[k]) - i32::from(c[k])).abs() <= 3,
                        "{c:?} came back as {px:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn short_or_odd_buffers_are_refused() {
        assert!(
            yuyv_to_rgb(4, 2, &[0; 15])
                .unwrap_err()
                .contains("16 bytes")
        );
        assert!(yuyv_to_rgb(3, 2, &[0; 12]).unwrap_err().contains("even"));
        assert!(yuyv_to_rgb(0, 2, &[]).is_err());
        assert!(
            yuyv_to_rgb(100_000, 100_000, &[])
                .unwrap_err()
                .contains("limit")
        );
        assert!(jpeg_to_rgb(b"\xFF\xD8not a jpeg").is_err());
    }

    #[test]
    fn planar_420_uses_each_chroma_sample_for_a_2x2_block() {
        let red = yuv([220, 20, 20]);
        let blue = yuv([20, 20, 220]);
        // 4x2 luma, chroma 2x1: left block red, right block blue.
        let y = [
            red[0], red[0], blue[0], blue[0], red[0], red[0], blue[0], blue[0],
        ];
        let planes = Planes {
            y: &y,
            u: &[red[1], blue[1]],
            v: &[red[2], blue[2]],
            xdiv: 2,
            ydiv: 2,
        };
        let img = planar_to_rgb(4, 2, &planes, YuvRange::Limited).unwrap();
        assert!(img.get_pixel(1, 1)[0] > 200 && img.get_pixel(1, 1)[2] < 40);
        assert!(img.get_pixel(2, 0)[2] > 200 && img.get_pixel(2, 0)[0] < 40);
        let grey = Planes {
            y: &[128; 8],
            u: &[],
            v: &[],
            xdiv: 2,
            ydiv: 2,
        };
        let img = planar_to_rgb(4, 2, &grey, YuvRange::Full).unwrap();
        assert_eq!(img.get_pixel(3, 1).0, [128, 128, 128]);
    }
}
