//! A network camera (RTSP or HTTP) as a frame source. Debian's `ffmpeg` runs as a child process:
//! it connects, decodes whatever the camera sends (H.264, H.265, MJPEG), keeps `fps` frames a
//! second and writes them as Motion-JPEG on a pipe, which [`super::recorded::Mjpeg`] splits
//! into frames. Part of *source*.
//!
//! The child is a [`CaptureDevice`], so reconnection is the [`super::camera::Camera`]'s, with
//! the same back-off as a V4L2 camera: a child that exits (camera rebooted, network down, wrong
//! password), or that sends no frame for [`Stream::STALL`], is killed, reaped and started again
//! after 1 s, 2 s, ... up to 30 s. Its last error lines go into the log. On stop the run loop's
//! [`Stopper`] kills and reaps the child even while the reader waits for a frame. Credentials
//! in the URL are never logged: the source is named by its URL without them.

use super::camera::{CaptureDevice, Negotiated, Wanted};
use super::recorded::{Mjpeg, Split};
use super::{PixelFormat, Stopper};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The URL schemes ffmpeg is asked to open.
pub const SCHEMES: &[&str] = &["rtsp", "rtsps", "http", "https"];

/// How many of the child's last error lines are kept for the log.
const STDERR_LINES: usize = 8;

/// A camera stream read through an `ffmpeg` child.
pub struct Stream {
    url: String,
    label: PathBuf,
    program: PathBuf,
    shared: Arc<Shared>,
    frames: Option<Receiver<Vec<u8>>>,
    first: Option<Vec<u8>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// What the run loop's stopper shares with the reading thread.
#[derive(Default)]
struct Shared {
    stopped: AtomicBool,
    child: Mutex<Option<Child>>,
}

impl Shared {
    /// Kills and reaps the running child, if any.
    fn end_child(&self) {
        let child = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Stream {
    /// Longest wait for a frame, at connection and after, before the child is restarted.
    pub const STALL: Duration = Duration::from_secs(10);

    /// A stream from `url` (one of [`SCHEMES`]), decoded by `program` (`ffmpeg` on the PATH,
    /// normally).
    pub fn new(url: &str, program: &Path) -> Self {
        Self {
            url: url.to_owned(),
            label: PathBuf::from(without_credentials(url)),
            program: program.to_owned(),
            shared: Arc::default(),
            frames: None,
            first: None,
            stderr: Arc::default(),
        }
    }

    /// The child's command line for `fps` frames a second.
    fn command(&self, fps: u32) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
        if self.url.starts_with("rtsp") {
            // TCP: no lost packets (torn frames) on a busy Wi-Fi, and one port through firewalls.
            cmd.args(["-rtsp_transport", "tcp"]);
        }
        cmd.args(["-i", &self.url, "-an", "-sn", "-dn"]);
        if fps > 0 {
            cmd.args(["-vf", &format!("fps={fps}")]);
        }
        cmd.args(["-c:v", "mjpeg", "-q:v", "3", "-f", "mjpeg", "pipe:1"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Why the stream stopped, with the child's last error lines.
    fn lost(&self, what: &str) -> String {
        let lines = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.is_empty() {
            what.to_owned()
        } else {
            format!("{what}; ffmpeg said: {}", lines.join(" | "))
        }
    }

    /// The next JPEG, waiting at most [`Stream::STALL`].
    fn receive(&self) -> Result<Vec<u8>, String> {
        let Some(frames) = &self.frames else {
            return Err("not open".into());
        };
        match frames.recv_timeout(Self::STALL) {
            Ok(jpeg) => Ok(jpeg),
            Err(RecvTimeoutError::Timeout) => {
                Err(self.lost(&format!("no frame for {} s", Self::STALL.as_secs())))
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.lost("ffmpeg ended")),
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.shared.end_child();
    }
}

impl CaptureDevice for Stream {
    fn node(&self) -> PathBuf {
        self.label.clone()
    }

    fn open(&mut self, want: &Wanted) -> Result<Negotiated, String> {
        self.close();
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        {
            // Under the lock, so a stop either sees this child or prevents it.
            let mut slot = self
                .shared
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.shared.stopped.load(Ordering::SeqCst) {
                return Err("stopped".into());
            }
            let mut child = self
                .command(want.fps)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
            let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
                let _ = child.kill();
                let _ = child.wait();
                return Err("ffmpeg's pipes were not opened".into());
            };
            *slot = Some(child);
            let (send, receive) = sync_channel(2);
            let label = self.label.clone();
            std::thread::spawn(move || {
                let mut mjpeg = Mjpeg::new(&label, stdout);
                loop {
                    match mjpeg.split() {
                        Ok(Split::Image(jpeg)) => {
                            if send.send(jpeg).is_err() {
                                break;
                            }
                        }
                        Ok(Split::Damaged(why)) => {
                            tracing::warn!("stream {}: skipped {why}", label.display());
                        }
                        Ok(Split::End) | Err(_) => break,
                    }
                }
            });
            let lines = Arc::clone(&self.stderr);
            let url = self.url.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let line = redact(&line, &url);
                    let mut lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
                    if lines.len() == STDERR_LINES {
                        lines.remove(0);
                    }
                    lines.push(line.chars().take(300).collect());
                }
            });
            self.frames = Some(receive);
        }
        // Connected only once a frame has come: its size is what the camera sends.
        let first = match self.receive() {
            Ok(jpeg) => jpeg,
            Err(why) => {
                self.close();
                return Err(why);
            }
        };
        let size = image::ImageReader::new(std::io::Cursor::new(&first))
            .with_guessed_format()
            .ok()
            .and_then(|r| r.into_dimensions().ok());
        self.first = Some(first);
        let (width, height) = size.unwrap_or_default();
        Ok(Negotiated {
            format: PixelFormat::Mjpeg,
            width,
            height,
        })
    }

    fn capture(&mut self) -> Result<Vec<u8>, String> {
        match self.first.take() {
            Some(jpeg) => Ok(jpeg),
            None => self.receive(),
        }
    }

    fn close(&mut self) {
        self.frames = None;
        self.first = None;
        self.shared.end_child();
    }

    fn stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::SeqCst)
    }

    fn stopper(&self) -> Option<Stopper> {
        let shared = Arc::clone(&self.shared);
        Some(Box::new(move || {
            shared.stopped.store(true, Ordering::SeqCst);
            shared.end_child();
        }))
    }
}

/// `url` without the `user:password@` part, for logs and events.
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// `line` (ffmpeg's, which echoes the URL it was given) with the credentials of `url` removed:
/// `user:password@` wherever it appears, and the password alone.
fn redact(line: &str, url: &str) -> String {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return line.to_owned();
    };
    let mut out = line.replace(&format!("{userinfo}@"), "");
    if let Some((_, password)) = userinfo.split_once(':')
        && !password.is_empty()
    {
        out = out.replace(password, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_label() {
        assert_eq!(
            without_credentials("rtsp://admin:s3cret@192.168.1.20:554/Streaming/101"),
            "rtsp://192.168.1.20:554/Streaming/101"
        );
        assert_eq!(
            without_credentials("http://cam.local/video.mjpg?user=a@b"),
            "http://cam.local/video.mjpg?user=a@b"
        );
        assert_eq!(without_credentials("rtsp://u:p@ss@host/x"), "rtsp://host/x");
        let url = "rtsp://admin:s3cret@cam/1";
        assert_eq!(
            redact(
                &format!("{url}: Connection refused; auth s3cret failed"),
                url
            ),
            "rtsp://cam/1: Connection refused; auth *** failed"
        );
        assert_eq!(redact("no URL here", url), "no URL here");
        let s = Stream::new(url, Path::new("ffmpeg"));
        assert_eq!(s.node(), PathBuf::from("rtsp://cam/1"));
        let args: Vec<String> = s
            .command(5)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.windows(2).any(|w| w == ["-rtsp_transport", "tcp"]),
            "{args:?}"
        );
        assert!(args.windows(2).any(|w| w == ["-vf", "fps=5"]), "{args:?}");
        assert_eq!(args.last().map(String::as_str), Some("pipe:1"));
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it_and_no_child_is_left() {
        let mut s = Stream::new("http://127.0.0.1:9/x", Path::new("/nonexistent/ffmpeg"));
        let want = Wanted {
            format: PixelFormat::Mjpeg,
            width: 0,
            height: 0,
            fps: 5,
        };
        let err = s.open(&want).unwrap_err();
        assert!(err.contains("/nonexistent/ffmpeg"), "{err}");
        assert!(s.shared.child.lock().unwrap().is_none());
    }
}
