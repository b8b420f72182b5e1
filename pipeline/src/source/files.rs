//! Image files as a frame source: every image of a folder in file-name order, or one image.

use super::{Frame, FrameSource, SourceError};
use image::{ImageDecoder, RgbImage};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Largest image decoded, in pixels: a 4096x4096 frame or a 16-megapixel photo. Checked from
/// the header before any pixel is allocated, so a small hostile file (an 8000x8000 PNG is
/// 187 KB) cannot stall the door for seconds or take a gigabyte.
pub const MAX_PIXELS: u64 = 4096 * 4096;
/// Largest image file read.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Memory a decoder may allocate beyond the pixels themselves.
const MAX_DECODER_ALLOC: u64 = 3 * MAX_PIXELS * 4;

/// The image files in `dir`, sorted by name.
pub fn image_files_in(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let io = |source| SourceError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png" | "bmp")) && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(SourceError::Empty {
            path: dir.to_owned(),
        });
    }
    files.sort();
    Ok(files)
}

/// Decodes one image file, refusing unreadable, undecodable and oversized ones with the file
/// named.
pub fn read_image(path: &Path) -> Result<RgbImage, SourceError> {
    use std::io::Read;
    let unreadable = |source| SourceError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(SourceError::Decode {
            path: path.to_owned(),
            message: format!("file over the limit of {MAX_FILE_BYTES} bytes"),
        });
    }
    decode_image(&bytes, path)
}

/// Decodes an image file's bytes (`path` names it in errors): the size from the header is
/// checked against [`MAX_PIXELS`] before decoding, and the decoder runs under memory limits.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<RgbImage, SourceError> {
    let decode = |message: String| SourceError::Decode {
        path: path.to_owned(),
        message,
    };
    let reader = || {
        let mut r = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| decode(e.to_string()))?;
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(MAX_DECODER_ALLOC);
        r.limits(limits);
        Ok::<_, SourceError>(r)
    };
    let (width, height) = reader()?
        .into_dimensions()
        .map_err(|e| decode(e.to_string()))?;
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(SourceError::TooLarge {
            path: path.to_owned(),
            width,
            height,
            limit: MAX_PIXELS,
        });
    }
    // Upright as the photo's EXIF orientation says: phones store portrait photos sideways
    // with a tag, and a sideways face is not found.
    let mut decoder = reader()?
        .into_decoder()
        .map_err(|e| decode(e.to_string()))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| decode(e.to_string()))?;
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

/// Image files played as frames.
#[derive(Debug, Clone)]
pub struct ImageFiles {
    files: Vec<PathBuf>,
    next: usize,
}

impl ImageFiles {
    /// Every image in `dir`, in file-name order.
    pub fn folder(dir: &Path) -> Result<Self, SourceError> {
        Ok(Self {
            files: image_files_in(dir)?,
            next: 0,
        })
    }

    /// One image.
    pub fn single(path: &Path) -> Self {
        Self {
            files: vec![path.to_owned()],
            next: 0,
        }
    }
}

impl FrameSource for ImageFiles {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        let Some(path) = self.files.get(self.next) else {
            return Ok(None);
        };
        let seq = self.next as u64;
        self.next += 1;
        let image = read_image(path)?;
        Ok(Some(Frame {
            seq,
            time: SystemTime::now(),
            origin: path.display().to_string(),
            image,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder;

    /// A JPEG whose pixels are stored turned a quarter to the left, with EXIF orientation 6
    /// ("turn 90 degrees clockwise to show"), as phones write portrait photos.
    fn sideways_jpeg(upright: &RgbImage) -> Vec<u8> {
        let stored = image::imageops::rotate270(upright);
        // A big-endian TIFF header and one IFD entry: Orientation (0x0112), SHORT, 1, value 6.
        let exif = [
            b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0,
            0,
        ];
        let mut out = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95);
        encoder.set_exif_metadata(exif.to_vec()).unwrap();
        encoder
            .write_image(
                stored.as_raw(),
                stored.width(),
                stored.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    #[test]
    fn a_photo_stored_sideways_is_turned_upright_by_its_exif_orientation() {
        // 64 wide, 32 high, red on the left half, blue on the right.
        let upright = RgbImage::from_fn(64, 32, |x, _| {
            if x < 32 {
                image::Rgb([250, 0, 0])
            } else {
                image::Rgb([0, 0, 250])
            }
        });
        let bytes = sideways_jpeg(&upright);
        let got = decode_image(&bytes, Path::new("portrait.jpg")).unwrap();
        assert_eq!(got.dimensions(), (64, 32));
        assert!(
            got.get_pixel(8, 16).0[0] > 200,
            "{:?}",
            got.get_pixel(8, 16)
        );
        assert!(
            got.get_pixel(56, 16).0[2] > 200,
            "{:?}",
            got.get_pixel(56, 16)
        );
    }
}
