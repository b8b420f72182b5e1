//! Where the drawn screen goes: a Linux framebuffer (`/dev/fb*`), or a PNG file for tests and
//! headless boards. The framebuffer's geometry is read from sysfs
//! (`/sys/class/graphics/fbN/{virtual_size,bits_per_pixel,stride}`), so no ioctl is needed;
//! writing the device file is the kernel interface.

use image::RgbImage;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the screen could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// A file could not be read or written.
    #[error("display {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The framebuffer describes itself in a way facegate does not draw.
    #[error("display {path}: {message}")]
    Unsupported {
        /// The sysfs file or device.
        path: PathBuf,
        /// What was found and what is expected.
        message: String,
    },
}

/// Pixel layouts of a framebuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FbFormat {
    /// 32 bits per pixel, bytes B, G, R, X (little-endian XRGB8888).
    Bgrx,
    /// 16 bits per pixel, RGB565 little-endian.
    Rgb565,
}

/// A Linux framebuffer device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framebuffer {
    /// The device file.
    pub device: PathBuf,
    /// Visible width.
    pub width: u32,
    /// Visible height.
    pub height: u32,
    /// Bytes per row.
    pub stride: usize,
    /// Pixel layout.
    pub format: FbFormat,
}

fn read_sysfs(dir: &Path, name: &str) -> Result<String, DisplayError> {
    let path = dir.join(name);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| DisplayError::Io { path, source })
}

impl Framebuffer {
    /// The framebuffer at `device`, described by the sysfs folder `sysfs`
    /// (`/sys/class/graphics/<device name>` on a board).
    pub fn open(device: &Path, sysfs: &Path) -> Result<Self, DisplayError> {
        let unsupported = |name: &str, message: String| DisplayError::Unsupported {
            path: sysfs.join(name),
            message,
        };
        let size = read_sysfs(sysfs, "virtual_size")?;
        let (width, height) = size
            .split_once(',')
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            .filter(|(w, h)| *w > 0 && *h > 0 && *w <= 8192 && *h <= 8192)
            .ok_or_else(|| {
                unsupported("virtual_size", format!("expected `W,H`, found {size:?}"))
            })?;
        let bpp = read_sysfs(sysfs, "bits_per_pixel")?;
        let format = match bpp.as_str() {
            "32" => FbFormat::Bgrx,
            "16" => FbFormat::Rgb565,
            other => {
                return Err(unsupported(
                    "bits_per_pixel",
                    format!("{other} bits per pixel; facegate draws 32 (XRGB8888) or 16 (RGB565)"),
                ));
            }
        };
        let bytes = if format == FbFormat::Bgrx { 4 } else { 2 };
        let stride = match read_sysfs(sysfs, "stride") {
            Ok(s) => s.parse::<usize>().map_err(|_| {
                unsupported("stride", format!("expected bytes per row, found {s:?}"))
            })?,
            Err(_) => width as usize * bytes,
        };
        if stride < width as usize * bytes {
            return Err(unsupported(
                "stride",
                format!("{stride} bytes per row is less than {width} pixels need"),
            ));
        }
        Ok(Self {
            device: device.to_owned(),
            width,
            height,
            stride,
            format,
        })
    }

    /// The sysfs folder of a device node (`/dev/fb0` -> `/sys/class/graphics/fb0`).
    pub fn sysfs_of(device: &Path) -> PathBuf {
        let name = device.file_name().map(|n| n.to_owned()).unwrap_or_default();
        Path::new("/sys/class/graphics").join(name)
    }

    /// The screen in the framebuffer's byte layout, `stride` bytes per row.
    pub fn encode(&self, img: &RgbImage) -> Vec<u8> {
        let mut out = vec![0u8; self.stride * self.height as usize];
        for (x, y, p) in img.enumerate_pixels() {
            if x >= self.width || y >= self.height {
                continue;
            }
            let [r, g, b] = p.0;
            let at = y as usize * self.stride;
            match self.format {
                FbFormat::Bgrx => {
                    let i = at + x as usize * 4;
                    out[i..i + 4].copy_from_slice(&[b, g, r, 0xFF]);
                }
                FbFormat::Rgb565 => {
                    let v =
                        (u16::from(r >> 3) << 11) | (u16::from(g >> 2) << 5) | u16::from(b >> 3);
                    let i = at + x as usize * 2;
                    out[i..i + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        out
    }

    /// Writes `img` (drawn at this framebuffer's size) to the device.
    pub fn show(&self, img: &RgbImage) -> Result<(), DisplayError> {
        let io = |source| DisplayError::Io {
            path: self.device.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.device)
            .map_err(io)?;
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        f.write_all(&self.encode(img)).map_err(io)?;
        f.flush().map_err(io)
    }
}

/// A configured output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A framebuffer.
    Framebuffer(Framebuffer),
    /// A PNG file replaced atomically on every change, at this size.
    Png {
        /// The file.
        path: PathBuf,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
}

impl Output {
    /// The size to draw at.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Self::Framebuffer(fb) => (fb.width, fb.height),
            Self::Png { width, height, .. } => (*width, *height),
        }
    }

    /// Shows `img`.
    pub fn show(&self, img: &RgbImage) -> Result<(), DisplayError> {
        match self {
            Self::Framebuffer(fb) => fb.show(img),
            Self::Png { path, .. } => {
                let mut png = std::io::Cursor::new(Vec::new());
                img.write_to(&mut png, image::ImageFormat::Png)
                    .map_err(|e| DisplayError::Io {
                        path: path.clone(),
                        source: std::io::Error::other(e),
                    })?;
                facegate_contract::fsutil::write_atomic(path, png.get_ref()).map_err(|source| {
                    DisplayError::Io {
                        path: path.clone(),
                        source,
                    }
                })
            }
        }
    }
}
