//! Recorded video as a frame source: Motion-JPEG files (JPEG images back to back, what many
//! cameras and `ffmpeg -c:v mjpeg -f mjpeg` write) and YUV4MPEG2 files (`.y4m`, raw planar
//! video). Part of *source*: the same pipeline runs on a bench from footage as at the door.
//! Both are read as streams, one frame in memory at a time, whatever the file's length.

use super::pixels::{Planes, YuvRange, jpeg_to_rgb, planar_to_rgb};
use super::{Frame, FrameSource, SourceError};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Largest single JPEG accepted from an MJPEG stream.
pub const MAX_JPEG_BYTES: usize = 16 * 1024 * 1024;

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Motion-JPEG from any reader (a file, ffmpeg's pipe): each JPEG in it is a frame.
pub struct Mjpeg<R> {
    path: PathBuf,
    reader: BufReader<R>,
    seq: u64,
}

/// A Motion-JPEG file.
pub type MjpegFile = Mjpeg<File>;

/// What splitting the stream found next.
pub(super) enum Split {
    /// One whole JPEG, `FFD8` to `FFD9`.
    Image(Vec<u8>),
    /// Bytes that are not a JPEG (or a truncated one); the reader is past them.
    Damaged(String),
    /// End of file.
    End,
}

impl MjpegFile {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(io_error(path))?;
        Ok(Mjpeg::new(path, file))
    }
}

impl<R: Read> Mjpeg<R> {
    /// Motion-JPEG read from `reader`; `path` names it in logs and errors.
    pub fn new(path: &Path, reader: R) -> Self {
        Self {
            path: path.to_owned(),
            reader: BufReader::with_capacity(1 << 16, reader),
            seq: 0,
        }
    }

    fn byte(&mut self) -> std::io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        match self.reader.read(&mut b)? {
            0 => Ok(None),
            _ => Ok(Some(b[0])),
        }
    }

    /// Reads past the next start-of-image marker; returns how many bytes were skipped before
    /// it, or `None` at the end of the file.
    fn seek_start(&mut self) -> std::io::Result<Option<usize>> {
        let mut skipped = 0;
        let mut prev = 0u8;
        while let Some(b) = self.byte()? {
            if prev == 0xFF && b == 0xD8 {
                return Ok(Some(skipped - 1));
            }
            prev = b;
            skipped += 1;
        }
        Ok(None)
    }

    /// A marker's code after its 0xFF (fill bytes skipped); `None` at the end of the file.
    fn marker_code(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            match self.byte()? {
                Some(0xFF) => continue,
                other => return Ok(other),
            }
        }
    }

    /// Splits off the next JPEG by walking its segments (so an `FFD9` inside an embedded
    /// thumbnail does not end the frame early).
    pub(super) fn split(&mut self) -> std::io::Result<Split> {
        let Some(skipped) = self.seek_start()? else {
            return Ok(Split::End);
        };
        if skipped > 0 {
            tracing::warn!(
                "{}: skipped {skipped} bytes before a JPEG",
                self.path.display()
            );
        }
        let mut jpeg = vec![0xFF, 0xD8];
        let truncated =
            |jpeg: &Vec<u8>| Split::Damaged(format!("a JPEG cut off after {} bytes", jpeg.len()));
        // The marker that ended a scan's entropy-coded data, already read.
        let mut pending = None;
        loop {
            if jpeg.len() > MAX_JPEG_BYTES {
                return Ok(Split::Damaged(format!(
                    "a JPEG over {MAX_JPEG_BYTES} bytes"
                )));
            }
            let code = match pending.take() {
                Some(code) => code,
                None => {
                    match self.byte()? {
                        Some(0xFF) => {}
                        Some(b) => {
                            return Ok(Split::Damaged(format!(
                                "expected a JPEG marker at byte {}, found {b:#04x}",
                                jpeg.len()
                            )));
                        }
                        None => return Ok(truncated(&jpeg)),
                    }
                    let Some(code) = self.marker_code()? else {
                        return Ok(truncated(&jpeg));
                    };
                    code
                }
            };
            jpeg.extend_from_slice(&[0xFF, code]);
            match code {
                0xD9 => return Ok(Split::Image(jpeg)),
                0xD8 => return Ok(Split::Damaged("a JPEG started inside another".into())),
                0x01 | 0xD0..=0xD7 => continue,
                _ => {}
            }
            let mut len = [0u8; 2];
            if self.reader.read_exact(&mut len).is_err() {
                return Ok(truncated(&jpeg));
            }
            jpeg.extend_from_slice(&len);
            let body = usize::from(u16::from_be_bytes(len)).saturating_sub(2);
            let start = jpeg.len();
            jpeg.resize(start + body, 0);
            if self.reader.read_exact(&mut jpeg[start..]).is_err() {
                jpeg.truncate(start);
                return Ok(truncated(&jpeg));
            }
            if code == 0xDA {
                match self.entropy_coded(&mut jpeg)? {
                    Some(code) => pending = Some(code),
                    None => return Ok(truncated(&jpeg)),
                }
            }
        }
    }

    /// Copies a scan's entropy-coded data (stuffed `FF00` and restart markers included) and
    /// returns the code of the marker that ends it; `None` at the end of the file.
    fn entropy_coded(&mut self, jpeg: &mut Vec<u8>) -> std::io::Result<Option<u8>> {
        while let Some(b) = self.byte()? {
            if b != 0xFF {
                jpeg.push(b);
                continue;
            }
            let Some(code) = self.marker_code()? else {
                return Ok(None);
            };
            if code == 0x00 || (0xD0..=0xD7).contains(&code) {
                jpeg.extend_from_slice(&[0xFF, code]);
            } else {
                return Ok(Some(code));
            }
            if jpeg.len() > MAX_JPEG_BYTES {
                return Ok(Some(0x00));
            }
        }
        Ok(None)
    }
}

impl<R: Read + Send> FrameSource for Mjpeg<R> {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        let split = self.split().map_err(io_error(&self.path))?;
        let seq = self.seq;
        let decode = |message: String| SourceError::Decode {
            path: self.path.clone(),
            message: format!("frame {seq}: {message}"),
        };
        match split {
            Split::End => Ok(None),
            Split::Damaged(why) => {
                self.seq += 1;
                Err(decode(why))
            }
            Split::Image(jpeg) => {
                self.seq += 1;
                let image = jpeg_to_rgb(&jpeg).map_err(decode)?;
                Ok(Some(Frame {
                    seq,
                    time: SystemTime::now(),
                    origin: format!("{}#{seq}", self.path.display()),
                    image,
                }))
            }
        }
    }
}

/// A reader that counts what it has read, so a frame cut off by the end of the file is told
/// apart from the clean end (the y4m decoder reports both as its end).
struct Counted {
    inner: BufReader<File>,
    read: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A YUV4MPEG2 file (8-bit 4:2:0, 4:2:2, 4:4:4 or mono).
pub struct Y4mFile {
    path: PathBuf,
    decoder: y4m::Decoder<Counted>,
    read: Arc<AtomicU64>,
    range: YuvRange,
    seq: u64,
    done: bool,
}

impl Y4mFile {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(io_error(path))?;
        let bad = |message: String| SourceError::Decode {
            path: path.to_owned(),
            message,
        };
        // The y4m crate multiplies the header's width and height unchecked (a huge header
        // overflows it): the size is checked here first, from the header line itself.
        if let Some((width, height)) = header_size(path)
            && width
                .checked_mul(height)
                .is_none_or(|p| p > super::files::MAX_PIXELS)
        {
            return Err(SourceError::TooLarge {
                path: path.to_owned(),
                width: u32::try_from(width).unwrap_or(u32::MAX),
                height: u32::try_from(height).unwrap_or(u32::MAX),
                limit: super::files::MAX_PIXELS,
            });
        }
        let limits = y4m::Limits {
            bytes: (super::files::MAX_PIXELS * 3) as usize,
        };
        let read = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: BufReader::new(file),
            read: Arc::clone(&read),
        };
        let decoder = y4m::Decoder::new_with_limits(counted, limits)
            .map_err(|e| bad(format!("not a readable YUV4MPEG2 header: {e}")))?;
        if decoder.get_bit_depth() != 8 {
            return Err(bad(format!(
                "{}-bit samples; only 8-bit video is read",
                decoder.get_bit_depth()
            )));
        }
        // `XCOLORRANGE=FULL` (ffmpeg's tag) marks full-range samples; the default is limited.
        let full = decoder
            .get_raw_params()
            .split(|b| *b == b' ')
            .any(|p| p.eq_ignore_ascii_case(b"XCOLORRANGE=FULL"));
        Ok(Self {
            path: path.to_owned(),
            decoder,
            read,
            range: if full {
                YuvRange::Full
            } else {
                YuvRange::Limited
            },
            seq: 0,
            done: false,
        })
    }
}

/// The `W` and `H` of a YUV4MPEG2 header line as the y4m crate will read them (the last of
/// each counts); `None` when they cannot be read, and the y4m decoder refuses the file itself.
fn header_size(path: &Path) -> Option<(u64, u64)> {
    use std::io::Read;
    let mut line = Vec::new();
    File::open(path)
        .ok()?
        .take(1024)
        .read_to_end(&mut line)
        .ok()?;
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    // Bytes, not text: the crate reads each parameter on its own, whatever surrounds it.
    let field = |tag: u8| {
        line[..end]
            .split(|b| *b == b' ')
            .skip(1)
            .filter_map(|t| t.strip_prefix(&[tag]))
            .last()
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
    };
    Some((field(b'W')?, field(b'H')?))
}

impl FrameSource for Y4mFile {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let (width, height) = (self.decoder.get_width(), self.decoder.get_height());
        let (xdiv, ydiv) = match self.decoder.get_colorspace() {
            y4m::Colorspace::C444 | y4m::Colorspace::Cmono => (1, 1),
            y4m::Colorspace::C422 => (2, 1),
            _ => (2, 2),
        };
        let seq = self.seq;
        let range = self.range;
        let before = self.read.load(Ordering::Relaxed);
        let frame = match self.decoder.read_frame() {
            Ok(frame) => frame,
            Err(y4m::Error::EOF) if self.read.load(Ordering::Relaxed) == before => {
                return Ok(None);
            }
            Err(e) => {
                self.done = true;
                return Err(SourceError::Decode {
                    path: self.path.clone(),
                    message: format!(
                        "frame {seq}: truncated or malformed ({e}); the file ends here"
                    ),
                });
            }
        };
        let planes = Planes {
            y: frame.get_y_plane(),
            u: frame.get_u_plane(),
            v: frame.get_v_plane(),
            xdiv,
            ydiv,
        };
        let image = planar_to_rgb(width as u32, height as u32, &planes, range).map_err(|m| {
            SourceError::Decode {
                path: self.path.clone(),
                message: format!("frame {seq}: {m}"),
            }
        })?;
        self.seq += 1;
        Ok(Some(Frame {
            seq,
            time: SystemTime::now(),
            origin: format!("{}#{seq}", self.path.display()),
            image,
        }))
    }
}
