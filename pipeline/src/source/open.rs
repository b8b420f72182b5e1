//! The configured source, opened.

use super::Source;
use super::recorded::{MjpegFile, Y4mFile};
use super::{FrameSource, ImageFiles, SourceError};

/// A source ready to read, and whether it is live (a camera: read on its own thread, old
/// frames dropped) or recorded (every frame processed in order).
pub struct Opened {
    /// The frames.
    pub frames: Box<dyn FrameSource>,
    /// Whether frames arrive in real time.
    pub live: bool,
}

/// Why the configured source cannot be used by this build.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Opening failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The kind of source is not in this build.
    #[error("source kind {kind:?} is not supported by this build: {why}")]
    Unsupported {
        /// The kind.
        kind: &'static str,
        /// Why, and what to use instead.
        why: &'static str,
    },
}

/// Opens the configured source.
pub fn open(source: &Source) -> Result<Opened, OpenError> {
    let recorded = |frames: Box<dyn FrameSource>| Opened {
        frames,
        live: false,
    };
    match source {
        Source::Folder(dir) => Ok(recorded(Box::new(ImageFiles::folder(dir)?))),
        Source::Image(path) => Ok(recorded(Box::new(ImageFiles::single(path)))),
        Source::Mjpeg(path) => Ok(recorded(Box::new(MjpegFile::open(path)?))),
        Source::Y4m(path) => Ok(recorded(Box::new(Y4mFile::open(path)?))),
        Source::V4l2 { .. } => camera(source),
        Source::Stream { url, fps } => {
            use super::camera::{Backoff, Camera, Wanted};
            let want = Wanted {
                format: super::PixelFormat::Mjpeg,
                width: 0,
                height: 0,
                fps: *fps,
            };
            let stream = super::stream::Stream::new(url, std::path::Path::new(FFMPEG));
            Ok(Opened {
                frames: Box::new(Camera::new(stream, want, Backoff::default())),
                live: true,
            })
        }
    }
}

/// The program that reads network cameras: Debian's `ffmpeg`, found on the PATH.
pub const FFMPEG: &str = "ffmpeg";

#[cfg(feature = "v4l2")]
fn camera(source: &Source) -> Result<Opened, OpenError> {
    use super::camera::{Backoff, Camera, Wanted};
    let Source::V4l2 {
        device,
        format,
        width,
        height,
        fps,
    } = source
    else {
        return Err(OpenError::Unsupported {
            kind: "v4l2",
            why: "not a camera source",
        });
    };
    let want = Wanted {
        format: *format,
        width: *width,
        height: *height,
        fps: *fps,
    };
    let device = super::v4l2::V4l2Device::new(device);
    Ok(Opened {
        frames: Box::new(Camera::new(device, want, Backoff::default())),
        live: true,
    })
}

#[cfg(not(feature = "v4l2"))]
fn camera(_: &Source) -> Result<Opened, OpenError> {
    Err(OpenError::Unsupported {
        kind: "v4l2",
        why: "this build has no camera support; build with `--features v4l2` (needs libclang \
              and the kernel headers), or use a folder, image, mjpeg or y4m source",
    })
}
