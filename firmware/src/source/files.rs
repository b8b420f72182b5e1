//! Image files as a frame source: every image of a folder in file-name order, or one image.

use super::{Frame, FrameSource, SourceError};
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Largest frame accepted from a file, in pixels (a 64-megapixel photo), so a hostile file
/// cannot exhaust memory.
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

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

/// Decodes one image file, refusing undecodable and oversized ones with the file named.
pub fn read_image(path: &Path) -> Result<RgbImage, SourceError> {
    let decode = |message: String| SourceError::Decode {
        path: path.to_owned(),
        message,
    };
    let reader = image::ImageReader::open(path)
        .map_err(|source| SourceError::Io {
            path: path.to_owned(),
            source,
        })?
        .with_guessed_format()
        .map_err(|e| decode(e.to_string()))?;
    let (width, height) = reader
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
    let img = image::ImageReader::open(path)
        .map_err(|source| SourceError::Io {
            path: path.to_owned(),
            source,
        })?
        .with_guessed_format()
        .map_err(|e| decode(e.to_string()))?
        .decode()
        .map_err(|e| decode(e.to_string()))?;
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
