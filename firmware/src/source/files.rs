//! Image files as a frame source: every image of a folder in file-name order, or one image.

use super::{Frame, FrameSource, SourceError};
use image::RgbImage;
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
    let img = reader()?.decode().map_err(|e| decode(e.to_string()))?;
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
