//! *source*: where frames come from. First stage of the pipeline
//! (**source** -> detect -> align -> embed -> match -> decide -> publish).
//!
//! Every source yields [`Frame`]s with a sequence number and a timestamp, as RGB ([`pixels`]
//! converts what cameras and files carry). File sources ([`files`]: an image folder, one image;
//! [`recorded`]: Motion-JPEG and YUV4MPEG2 clips) let the same pipeline run in tests and on a
//! bench; the [`camera`] sits behind the same [`FrameSource`] trait, with its kernel interface
//! in `v4l2` (cargo feature `v4l2`); a network camera ([`stream`]: RTSP, HTTP) is read through
//! an `ffmpeg` child with the camera's reconnection. [`handoff`] is the bounded hand-off between the source and
//! the slower stages: newest frame wins.

pub mod camera;
pub mod files;
pub mod handoff;
pub mod open;
pub mod pixels;
pub mod recorded;
pub mod stream;
#[cfg(feature = "v4l2")]
pub mod v4l2;

use image::RgbImage;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::SystemTime;

pub use files::{ImageFiles, image_files_in};

/// Camera pixel format asked of a V4L2 device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Motion JPEG: less USB bandwidth, decoded on the CPU.
    Mjpeg,
    /// Packed YUV 4:2:2: no decoding, more bandwidth.
    Yuyv,
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A V4L2 camera.
    V4l2 {
        /// Device node, e.g. `/dev/video0`.
        device: PathBuf,
        /// Pixel format to negotiate.
        format: PixelFormat,
        /// Requested frame width.
        width: u32,
        /// Requested frame height.
        height: u32,
        /// Requested frame rate.
        fps: u32,
    },
    /// Every image in a folder, in file-name order.
    Folder(PathBuf),
    /// One image.
    Image(PathBuf),
    /// A Motion-JPEG file.
    Mjpeg(PathBuf),
    /// A YUV4MPEG2 file.
    Y4m(PathBuf),
    /// A network camera (RTSP or HTTP), decoded by an `ffmpeg` child process.
    Stream {
        /// The camera's URL (credentials in it are never logged).
        url: String,
        /// Frames a second kept from the stream (0: every frame the camera sends).
        fps: u32,
    },
}

/// One camera frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Position in the source's stream, from 0, counting frames that failed to decode.
    pub seq: u64,
    /// When it was captured (or read, for files).
    pub time: SystemTime,
    /// Where it came from (file name, device), for logs and events.
    pub origin: String,
    /// The pixels.
    pub image: RgbImage,
}

/// Why a frame could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An image file is corrupt, truncated or not an image; the source goes on with the next.
    #[error("{path}: not a decodable image: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's explanation.
        message: String,
    },
    /// An image is larger than the configured limit.
    #[error("{path}: {width}x{height} pixels is over the limit of {limit} pixels")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// The limit on width x height.
        limit: u64,
    },
    /// One image file could not be read (deleted while a folder is played, unreadable); the
    /// source goes on with the next.
    #[error("{path}: cannot read the image file: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A folder holds no image.
    #[error("{path}: no image files (.jpg, .jpeg, .png, .bmp)")]
    Empty {
        /// The folder.
        path: PathBuf,
    },
}

impl SourceError {
    /// Whether the source can go on after this error (a bad file among good ones).
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            Self::Decode { .. } | Self::TooLarge { .. } | Self::Unreadable { .. }
        )
    }
}

/// A stream of frames. `Ok(None)` ends it; a recoverable error skips one frame.
pub trait FrameSource: Send {
    /// The next frame.
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;

    /// A handle that stops the source from another thread while [`FrameSource::next_frame`]
    /// may be blocked (a network stream's ffmpeg child is killed and reaped); `None` for
    /// sources that need no stopping.
    fn stopper(&self) -> Option<Stopper> {
        None
    }
}

/// Stops a live source from the run loop's thread (see [`FrameSource::stopper`]).
pub type Stopper = Box<dyn FnOnce() + Send>;
