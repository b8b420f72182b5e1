//! The configured source, opened.

use super::{FrameSource, ImageFiles, SourceError};
use crate::config::Source;

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
        Source::Mjpeg(_) => Err(OpenError::Unsupported {
            kind: "mjpeg",
            why: "recorded Motion-JPEG files are not read yet; extract the frames into a folder",
        }),
        Source::Y4m(_) => Err(OpenError::Unsupported {
            kind: "y4m",
            why: "YUV4MPEG2 files are not read yet; extract the frames into a folder",
        }),
        Source::V4l2 { .. } => Err(OpenError::Unsupported {
            kind: "v4l2",
            why: "the camera source is not built yet; use a folder of frames",
        }),
    }
}
