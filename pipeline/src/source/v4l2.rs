//! The V4L2 kernel interface of the camera (cargo feature `v4l2`): opens `/dev/video*`
//! through the `v4l` crate, negotiates MJPEG or YUYV, and streams memory-mapped buffers.
//! Part of *source*; everything above the kernel calls is in [`super::camera`].
//!
//! Built only with the feature, because the `v4l` crate generates its kernel bindings at
//! build time (bindgen, so libclang and the kernel headers must be installed). Not verified
//! against a real camera on the project's build machines, which have none.

use super::PixelFormat;
use super::camera::{CaptureDevice, Negotiated, Wanted};
use std::path::{Path, PathBuf};
use std::time::Duration;
use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::video::capture::Parameters;
use v4l::{Device, FourCC};

/// Buffers the driver fills in turn: enough to never stall it, few enough to stay fresh.
const BUFFERS: u32 = 4;
/// A capture that takes longer than this means the camera is gone.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(3);

/// A V4L2 video capture device.
pub struct V4l2Device {
    path: PathBuf,
    // The stream holds its own handle on the device; the device is kept to own the fd.
    stream: Option<Stream<'static>>,
    device: Option<Device>,
}

impl V4l2Device {
    /// The device at `path` (not opened until the camera source asks).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            stream: None,
            device: None,
        }
    }
}

fn fourcc(format: PixelFormat) -> FourCC {
    match format {
        PixelFormat::Mjpeg => FourCC::new(b"MJPG"),
        PixelFormat::Yuyv => FourCC::new(b"YUYV"),
    }
}

impl CaptureDevice for V4l2Device {
    fn node(&self) -> PathBuf {
        self.path.clone()
    }

    fn open(&mut self, want: &Wanted) -> Result<Negotiated, String> {
        self.close();
        let dev = Device::with_path(&self.path).map_err(|e| e.to_string())?;
        let mut fmt = dev
            .format()
            .map_err(|e| format!("reading the format: {e}"))?;
        fmt.width = want.width;
        fmt.height = want.height;
        fmt.fourcc = fourcc(want.format);
        let got = dev.set_format(&fmt).map_err(|e| {
            format!(
                "setting {:?} {}x{}: {e}",
                want.format, want.width, want.height
            )
        })?;
        let format = if got.fourcc == fourcc(PixelFormat::Mjpeg) {
            PixelFormat::Mjpeg
        } else if got.fourcc == fourcc(PixelFormat::Yuyv) {
            PixelFormat::Yuyv
        } else {
            return Err(format!(
                "the driver offers {} rather than {:?}; facegate reads MJPG and YUYV",
                got.fourcc, want.format
            ));
        };
        // The frame rate is a wish: some drivers ignore it, none should fail the camera.
        if let Err(e) = dev.set_params(&Parameters::with_fps(want.fps)) {
            tracing::warn!(
                "camera {}: {} fps refused: {e}",
                self.path.display(),
                want.fps
            );
        }
        let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, BUFFERS)
            .map_err(|e| format!("mapping capture buffers: {e}"))?;
        stream.set_timeout(CAPTURE_TIMEOUT);
        self.stream = Some(stream);
        self.device = Some(dev);
        Ok(Negotiated {
            format,
            width: got.width,
            height: got.height,
        })
    }

    fn capture(&mut self) -> Result<Vec<u8>, String> {
        let stream = self.stream.as_mut().ok_or("the device is not open")?;
        let (buffer, meta) = stream.next().map_err(|e| e.to_string())?;
        // Some drivers leave `bytesused` at 0 for uncompressed formats: the whole buffer then.
        let used = match meta.bytesused as usize {
            0 => buffer.len(),
            n => n.min(buffer.len()),
        };
        Ok(buffer[..used].to_vec())
    }

    fn close(&mut self) {
        self.stream = None;
        self.device = None;
    }
}
