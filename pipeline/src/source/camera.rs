//! The camera as a frame source, and what keeps it going: format negotiation, decoding of
//! what the driver sends, and reconnection with back-off when the device vanishes (a USB
//! cable pulled, a driver reset). Part of *source*.
//!
//! The kernel side sits behind [`CaptureDevice`]: the V4L2 implementation
//! (`v4l2::V4l2Device`, cargo feature `v4l2`) is the only code that talks to
//! `/dev/video*`; everything above it — negotiation results, decoding, reconnects, frame
//! numbering — is this module's and is tested here with a scripted device.

use super::PixelFormat;
use super::pixels::{jpeg_to_rgb, yuyv_to_rgb};
use super::{Frame, FrameSource, SourceError, Stopper};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// What the device is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Pixel format.
    pub format: PixelFormat,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// What the driver agreed to (it may change the size, or offer another format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Pixel format of the buffers.
    pub format: PixelFormat,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
}

/// The kernel interface of a camera: open and negotiate, then hand over filled buffers.
pub trait CaptureDevice: Send {
    /// The device node, for logs and errors.
    fn node(&self) -> PathBuf;
    /// Opens the device and negotiates `want`; returns what the driver gave.
    fn open(&mut self, want: &Wanted) -> Result<Negotiated, String>;
    /// The next filled buffer (blocking, with a timeout); an error means the device is lost.
    fn capture(&mut self) -> Result<Vec<u8>, String>;
    /// Releases the device (before reopening it).
    fn close(&mut self);
    /// Whether the device was stopped for good (see [`CaptureDevice::stopper`]): the camera
    /// source then ends instead of reconnecting.
    fn stopped(&self) -> bool {
        false
    }
    /// A handle that stops the device from another thread (the run loop's, on exit) while this
    /// one may be blocked in [`CaptureDevice::capture`]; `None` when nothing needs stopping.
    fn stopper(&self) -> Option<Stopper> {
        None
    }
}

/// Reconnection delays: `initial`, doubling up to `max`, back to `initial` once a frame comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

/// How the camera source waits between reconnection attempts (a real sleep on the device).
pub type Sleeper = Box<dyn FnMut(Duration) + Send>;

/// A camera as a never-ending [`FrameSource`].
pub struct Camera<D> {
    device: D,
    want: Wanted,
    backoff: Backoff,
    delay: Duration,
    open: Option<Negotiated>,
    seq: u64,
    failures: u64,
    sleep: Sleeper,
}

impl<D: CaptureDevice> Camera<D> {
    /// A camera source over `device`, asking it for `want`.
    pub fn new(device: D, want: Wanted, backoff: Backoff) -> Self {
        Self::with_sleeper(device, want, backoff, Box::new(std::thread::sleep))
    }

    /// The same, with the wait between attempts replaced (tests count the delays).
    pub fn with_sleeper(device: D, want: Wanted, backoff: Backoff, sleep: Sleeper) -> Self {
        Self {
            device,
            want,
            backoff,
            delay: backoff.initial,
            open: None,
            seq: 0,
            failures: 0,
            sleep,
        }
    }

    /// Failed opens and lost connections so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    fn fail(&mut self, what: &str, why: &str) {
        self.failures += 1;
        if self.device.stopped() {
            return;
        }
        tracing::warn!(
            "camera {}: {what}: {why}; trying again in {:?}",
            self.device.node().display(),
            self.delay
        );
        (self.sleep)(self.delay);
        self.delay = (self.delay * 2).min(self.backoff.max);
    }

    fn decode(&self, got: Negotiated, buffer: &[u8]) -> Result<image::RgbImage, String> {
        let image = match got.format {
            PixelFormat::Mjpeg => jpeg_to_rgb(buffer)?,
            PixelFormat::Yuyv => yuyv_to_rgb(got.width, got.height, buffer)?,
        };
        Ok(image)
    }
}

impl<D: CaptureDevice> FrameSource for Camera<D> {
    fn stopper(&self) -> Option<Stopper> {
        self.device.stopper()
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        loop {
            if self.device.stopped() {
                return Ok(None);
            }
            let got = match self.open {
                Some(got) => got,
                None => match self.device.open(&self.want) {
                    Ok(got) => {
                        tracing::info!(
                            "camera {}: {:?} {}x{} (asked {:?} {}x{} at {} fps; 0: any)",
                            self.device.node().display(),
                            got.format,
                            got.width,
                            got.height,
                            self.want.format,
                            self.want.width,
                            self.want.height,
                            self.want.fps
                        );
                        self.open = Some(got);
                        got
                    }
                    Err(why) => {
                        self.fail("cannot open", &why);
                        continue;
                    }
                },
            };
            match self.device.capture() {
                Ok(buffer) => {
                    self.delay = self.backoff.initial;
                    let seq = self.seq;
                    self.seq += 1;
                    let node = self.device.node();
                    let image =
                        self.decode(got, &buffer)
                            .map_err(|message| SourceError::Decode {
                                path: node.clone(),
                                message: format!("frame {seq}: {message}"),
                            })?;
                    return Ok(Some(Frame {
                        seq,
                        time: SystemTime::now(),
                        origin: node.display().to_string(),
                        image,
                    }));
                }
                Err(why) => {
                    self.device.close();
                    self.open = None;
                    self.fail("lost", &why);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    /// What the scripted device does at each call.
    #[derive(Debug, Clone)]
    enum Step {
        OpenFails(&'static str),
        Opens(Negotiated),
        Frame(Vec<u8>),
        Vanishes,
    }

    struct Scripted {
        steps: VecDeque<Step>,
        closed: Arc<Mutex<u32>>,
    }

    impl CaptureDevice for Scripted {
        fn node(&self) -> PathBuf {
            PathBuf::from("/dev/video9")
        }

        fn open(&mut self, _: &Wanted) -> Result<Negotiated, String> {
            match self.steps.pop_front() {
                Some(Step::Opens(n)) => Ok(n),
                Some(Step::OpenFails(why)) => Err(why.into()),
                other => panic!("open called at {other:?}"),
            }
        }

        fn capture(&mut self) -> Result<Vec<u8>, String> {
            match self.steps.pop_front() {
                Some(Step::Frame(b)) => Ok(b),
                Some(Step::Vanishes) => Err("No such device (os error 19)".into()),
                other => panic!("capture called at {other:?}"),
            }
        }

        fn close(&mut self) {
            *self.closed.lock().unwrap() += 1;
        }
    }

    fn grey_yuyv(w: u32, h: u32, y: u8) -> Vec<u8> {
        [y, 128].repeat((w * h) as usize)
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 100, 50]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_vanishing_camera_is_reopened_with_growing_delays_and_numbering_goes_on() {
        let yuyv = Negotiated {
            format: PixelFormat::Yuyv,
            width: 4,
            height: 2,
        };
        // The driver gave MJPEG at another size after the reconnect: decoded as what it is.
        let mjpeg = Negotiated {
            format: PixelFormat::Mjpeg,
            width: 16,
            height: 8,
        };
        let steps = vec![
            Step::OpenFails("No such file or directory (os error 2)"),
            Step::Opens(yuyv),
            Step::Frame(grey_yuyv(4, 2, 235)),
            Step::Frame(vec![1, 2, 3]),
            Step::Vanishes,
            Step::OpenFails("busy"),
            Step::OpenFails("busy"),
            Step::OpenFails("busy"),
            Step::Opens(mjpeg),
            Step::Frame(jpeg(16, 8)),
            Step::Vanishes,
            Step::Opens(yuyv),
            Step::Frame(grey_yuyv(4, 2, 16)),
        ];
        let closed = Arc::new(Mutex::new(0));
        let slept = Arc::new(Mutex::new(Vec::new()));
        let device = Scripted {
            steps: steps.into(),
            closed: Arc::clone(&closed),
        };
        let want = Wanted {
            format: PixelFormat::Yuyv,
            width: 4,
            height: 2,
            fps: 15,
        };
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(300),
        };
        let log = Arc::clone(&slept);
        let mut cam = Camera::with_sleeper(
            device,
            want,
            backoff,
            Box::new(move |d| log.lock().unwrap().push(d.as_millis())),
        );

        let f = cam.next_frame().unwrap().unwrap();
        assert_eq!((f.seq, f.image.get_pixel(3, 1).0), (0, [255, 255, 255]));
        assert_eq!(f.origin, "/dev/video9");
        // A short buffer is a bad frame, not a lost camera.
        let err = cam.next_frame().unwrap_err();
        assert!(
            err.is_recoverable() && err.to_string().contains("frame 1"),
            "{err}"
        );
        let f = cam.next_frame().unwrap().unwrap();
        assert_eq!((f.seq, f.image.dimensions()), (2, (16, 8)));
        let f = cam.next_frame().unwrap().unwrap();
        assert_eq!((f.seq, f.image.get_pixel(0, 0).0), (3, [0, 0, 0]));

        // 100 ms after the first failed open; then the delay restarts after frames came, grows,
        // and stops at the maximum; after the next loss it starts over.
        assert_eq!(
            *slept.lock().unwrap(),
            [100, 100, 200, 300, 300, 100],
            "delays in ms"
        );
        assert_eq!(cam.failures(), 6);
        assert_eq!(*closed.lock().unwrap(), 2, "closed after each loss");
    }
}
