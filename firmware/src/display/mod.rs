//! *display*: the door screen. A side branch of *publish* in the pipeline
//! (source -> ... -> decide -> publish (+ **display**, + door output)): it takes the same
//! events as the MQTT link and shows the person in front of the door what was decided —
//! welcome, refused, or what to do (come closer, face the camera, hold still) — with the
//! decision's heat map, then falls back to "Look at the camera".
//!
//! [`screen`] decides what to show, [`draw`] draws it with embedded-graphics, [`output`]
//! puts it on a framebuffer or into a PNG file. A screen that fails is logged and never stops
//! the door.

pub mod draw;
pub mod output;
pub mod screen;

use facegate_pipeline::event::Event;
use facegate_pipeline::sink::{PublishError, Sink};
use image::RgbImage;
use output::{DisplayError, Framebuffer, Output};
use screen::{Screen, View};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the screen is (`[display]`).
#[derive(Debug, Clone, PartialEq)]
pub enum DisplayTarget {
    /// A Linux framebuffer device; its size is read from sysfs when the device starts.
    Framebuffer {
        /// The device node, e.g. `/dev/fb0`.
        device: PathBuf,
    },
    /// A PNG file, rewritten on every change.
    Png {
        /// The file.
        path: PathBuf,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

/// The screen's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplayConfig {
    /// Where it is.
    pub target: DisplayTarget,
    /// How long a decision or hint stays on screen.
    pub hold_seconds: f64,
}

impl DisplayConfig {
    /// How long a decision or hint stays on screen by default, seconds.
    pub const DEFAULT_HOLD_SECONDS: f64 = 4.0;
    /// A PNG screen's size by default, pixels (a small door display's).
    pub const DEFAULT_PNG_SIZE: (u32, u32) = (480, 320);
}

/// The door screen as a [`Sink`].
pub struct DisplaySink {
    output: Output,
    screen: Screen,
    device_name: String,
    heatmap: Option<RgbImage>,
    failing: bool,
}

impl std::fmt::Debug for DisplaySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisplaySink")
            .field("output", &self.output)
            .field("view", self.screen.view())
            .finish()
    }
}

impl DisplaySink {
    /// Opens the configured screen and shows the idle view.
    pub fn open(cfg: &DisplayConfig, device_name: &str) -> Result<Self, DisplayError> {
        let output = match &cfg.target {
            DisplayTarget::Framebuffer { device } => {
                Output::Framebuffer(Framebuffer::open(device, &Framebuffer::sysfs_of(device))?)
            }
            DisplayTarget::Png {
                path,
                width,
                height,
            } => Output::Png {
                path: path.clone(),
                width: *width,
                height: *height,
            },
        };
        Self::with_output(output, cfg.hold_seconds, device_name)
    }

    /// The screen on an already opened output.
    pub fn with_output(
        output: Output,
        hold_seconds: f64,
        device_name: &str,
    ) -> Result<Self, DisplayError> {
        let sink = Self {
            output,
            screen: Screen::new(Duration::from_secs_f64(hold_seconds.max(0.0))),
            device_name: device_name.to_owned(),
            heatmap: None,
            failing: false,
        };
        sink.output.show(&sink.picture())?;
        Ok(sink)
    }

    /// What is shown now.
    pub fn view(&self) -> &View {
        self.screen.view()
    }

    fn picture(&self) -> RgbImage {
        let (w, h) = self.output.size();
        draw::render(
            self.screen.view(),
            &self.device_name,
            self.heatmap.as_ref(),
            w,
            h,
        )
    }

    fn redraw(&mut self) {
        match self.output.show(&self.picture()) {
            Ok(()) => {
                if self.failing {
                    tracing::info!("display works again");
                }
                self.failing = false;
            }
            Err(e) => {
                // Said once per outage, not once per frame.
                if !self.failing {
                    tracing::error!("{e}; the door keeps deciding without its screen");
                }
                self.failing = true;
            }
        }
    }
}

impl Sink for DisplaySink {
    fn publish(&mut self, event: &Event, heatmap: Option<&[u8]>) -> Result<(), PublishError> {
        if self.screen.observe(event, Instant::now()) {
            let decision = matches!(
                self.screen.view(),
                View::Welcome { .. } | View::Refused { .. }
            );
            self.heatmap = heatmap
                .filter(|_| decision)
                .and_then(|png| image::load_from_memory(png).ok())
                .map(|img| img.to_rgb8());
            self.redraw();
        }
        Ok(())
    }

    fn frame_done(&mut self) {
        if self.screen.tick(Instant::now()) {
            self.heatmap = None;
            self.redraw();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::draw::{GRANT, HINT, IDLE, REFUSE};
    use super::output::FbFormat;
    use super::*;
    use embedded_graphics::pixelcolor::RgbColor;
    use facegate_pipeline::decide::{Access, Lifecycle};
    use facegate_pipeline::event::{FaceInfo, Outcome};
    use facegate_pipeline::quality::{Quality, QualityProblem};

    fn event(result: Outcome, access: Option<Access>, problems: Vec<QualityProblem>) -> Event {
        let person = (result == Outcome::Match).then_some("ada");
        let mut e = crate::publish::sample_event("t", Lifecycle::New, result, person, access);
        e.face = Some(FaceInfo {
            bbox: [0.0; 4],
            detector_score: 1.0,
            quality: Quality {
                eye_distance: 10.0,
                yaw: 0.0,
                pitch: 0.5,
                roll_degrees: 0.0,
                sharpness: 100.0,
                problems,
            },
            liveness: None,
        });
        e
    }

    fn grant() -> Event {
        event(
            Outcome::Match,
            Some(Access::Grant {
                person: "ada".into(),
            }),
            Vec::new(),
        )
    }

    fn rgb(c: embedded_graphics::pixelcolor::Rgb888) -> [u8; 3] {
        [c.r(), c.g(), c.b()]
    }

    #[test]
    fn the_screen_follows_decisions_keeps_them_over_hints_and_falls_back_to_idle() {
        let mut s = Screen::new(Duration::from_secs(4));
        let t0 = Instant::now();
        let small = vec![QualityProblem::TooSmall { eye_distance: 10.0 }];
        assert!(s.observe(&event(Outcome::LowQuality, None, small.clone()), t0));
        assert_eq!(
            s.view(),
            &View::Hint {
                hint: "Please come closer".into()
            }
        );
        assert!(s.observe(&grant(), t0));
        assert_eq!(
            s.view(),
            &View::Welcome {
                name: "ada Example".into()
            }
        );
        // A hint while the welcome is held does not replace it.
        assert!(!s.observe(
            &event(Outcome::LowQuality, None, small),
            t0 + Duration::from_secs(1)
        ));
        assert!(!s.tick(t0 + Duration::from_secs(3)));
        assert!(s.tick(t0 + Duration::from_secs(4)));
        assert_eq!(s.view(), &View::Idle);
        let deny = event(
            Outcome::Unknown,
            Some(Access::Deny {
                reason: "unknown".into(),
            }),
            Vec::new(),
        );
        assert!(s.observe(&deny, t0 + Duration::from_secs(5)));
        assert!(matches!(s.view(), View::Refused { .. }));
    }

    #[test]
    fn a_presentation_attack_is_asked_to_look_at_the_camera_and_told_nothing_more() {
        let mut s = Screen::new(Duration::from_secs(4));
        let attack = event(
            Outcome::Spoof,
            Some(Access::Deny {
                reason: "presentation_attack".into(),
            }),
            Vec::new(),
        );
        assert!(s.observe(&attack, Instant::now()));
        assert_eq!(
            s.view(),
            &View::Hint {
                hint: screen::LOOK_AT_CAMERA.into()
            }
        );
        // The same line as for any later frame of the attack.
        let again = event(Outcome::Spoof, None, Vec::new());
        assert!(!s.observe(&again, Instant::now()));
    }

    /// A fake framebuffer: the sysfs files a kernel would give, and a plain file as the device.
    fn fake_fb(name: &str, bpp: u32, stride: usize) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("facegate-fb-{}-{name}", std::process::id()));
        let sysfs = dir.join("sys");
        std::fs::create_dir_all(&sysfs).unwrap();
        std::fs::write(sysfs.join("virtual_size"), "320,240\n").unwrap();
        std::fs::write(sysfs.join("bits_per_pixel"), format!("{bpp}\n")).unwrap();
        std::fs::write(sysfs.join("stride"), format!("{stride}\n")).unwrap();
        let dev = dir.join("fb0");
        std::fs::write(&dev, []).unwrap();
        (dev, sysfs)
    }

    #[test]
    fn a_framebuffer_gets_the_screen_in_its_own_pixel_layout() {
        let (dev, sysfs) = fake_fb("bgrx", 32, 320 * 4 + 64);
        let fb = Framebuffer::open(&dev, &sysfs).unwrap();
        assert_eq!((fb.width, fb.height, fb.format), (320, 240, FbFormat::Bgrx));
        let mut sink =
            DisplaySink::with_output(Output::Framebuffer(fb.clone()), 4.0, "door").unwrap();
        let pixel = |bytes: &[u8], x: usize, y: usize| {
            let i = y * fb.stride + x * 4;
            [bytes[i + 2], bytes[i + 1], bytes[i]]
        };
        let idle = std::fs::read(&dev).unwrap();
        assert_eq!(idle.len(), fb.stride * 240);
        assert_eq!(pixel(&idle, 0, 0), rgb(IDLE));
        let heat = image::RgbImage::from_pixel(192, 192, image::Rgb([0, 0, 255]));
        let mut png = std::io::Cursor::new(Vec::new());
        heat.write_to(&mut png, image::ImageFormat::Png).unwrap();
        sink.publish(&grant(), Some(png.get_ref())).unwrap();
        let shown = std::fs::read(&dev).unwrap();
        assert_eq!(pixel(&shown, 0, 0), rgb(GRANT));
        assert_eq!(
            pixel(&shown, 160, 60),
            [0, 0, 255],
            "the heat map thumbnail"
        );
        // Some white text on the background.
        let white = (0..240)
            .flat_map(|y| (0..320).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(&shown, x, y) == [255, 255, 255])
            .count();
        assert!(white > 100, "{white} white pixels");

        // RGB565 at 16 bits per pixel.
        let (dev, sysfs) = fake_fb("565", 16, 640);
        let fb = Framebuffer::open(&dev, &sysfs).unwrap();
        let mut sink = DisplaySink::with_output(Output::Framebuffer(fb), 4.0, "door").unwrap();
        sink.publish(
            &event(
                Outcome::Unknown,
                Some(Access::Deny {
                    reason: "unknown".into(),
                }),
                Vec::new(),
            ),
            None,
        )
        .unwrap();
        let shown = std::fs::read(&dev).unwrap();
        let v = u16::from_le_bytes([shown[0], shown[1]]);
        let [r, g, b] = rgb(REFUSE);
        assert_eq!(
            v,
            (u16::from(r >> 3) << 11) | (u16::from(g >> 2) << 5) | u16::from(b >> 3)
        );
    }

    #[test]
    fn framebuffers_facegate_cannot_draw_are_refused_by_name() {
        let (dev, sysfs) = fake_fb("8bpp", 8, 320);
        let err = Framebuffer::open(&dev, &sysfs).unwrap_err().to_string();
        assert!(
            err.contains("bits_per_pixel") && err.contains("8 bits"),
            "{err}"
        );
        let (dev, sysfs) = fake_fb("narrow", 32, 100);
        let err = Framebuffer::open(&dev, &sysfs).unwrap_err().to_string();
        assert!(err.contains("stride"), "{err}");
        let missing = Framebuffer::open(&dev, &sysfs.join("nope"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("virtual_size"), "{missing}");
    }

    #[test]
    fn a_png_screen_is_rewritten_on_each_change() {
        let dir = std::env::temp_dir().join(format!("facegate-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("screen.png");
        let out = Output::Png {
            path: path.clone(),
            width: 480,
            height: 320,
        };
        let mut sink = DisplaySink::with_output(out, 0.0, "Front door").unwrap();
        let idle = image::open(&path).unwrap().to_rgb8();
        assert_eq!(idle.dimensions(), (480, 320));
        assert_eq!(idle.get_pixel(5, 5).0, rgb(IDLE));
        sink.publish(&event(Outcome::Uncertain, None, Vec::new()), None)
            .unwrap();
        assert_eq!(
            image::open(&path).unwrap().to_rgb8().get_pixel(5, 5).0,
            rgb(HINT)
        );
        // Held for 0 s: the next frame brings the idle screen back.
        sink.frame_done();
        assert_eq!(sink.view(), &View::Idle);
        assert_eq!(
            image::open(&path).unwrap().to_rgb8().get_pixel(5, 5).0,
            rgb(IDLE)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
