//! `[display]`: the door screen.

use super::{Report, ranged};
use crate::config::raw::RawConfig;
use std::path::{Path, PathBuf};
use toml::Spanned;

pub(super) fn check_display(
    r: &mut Report,
    raw: &RawConfig,
    base: &Path,
) -> Option<crate::display::DisplayConfig> {
    use crate::config::raw::DisplayKind;
    use crate::display::{DisplayConfig, DisplayTarget};
    let d = raw.display.as_ref()?;
    let kind = *d.kind.get_ref();
    let misplaced = |r: &mut Report, field: &Option<Spanned<_>>, name: &str, kinds: &str| {
        let span = field.as_ref().map(Spanned::span);
        r.only_for(span, format!("display.{name}"), &format!("kind = {kinds}"));
    };
    let hold_seconds = ranged(
        r,
        &d.hold_seconds,
        0.5..=60.0,
        DisplayConfig::DEFAULT_HOLD_SECONDS,
        "display.hold_seconds",
        "expected 0.5..=60 seconds",
    );
    let target = match kind {
        DisplayKind::Framebuffer => {
            misplaced(r, &d.path, "path", "\"png\"");
            let size = |f: &Option<Spanned<u32>>, name: &str, r: &mut Report| {
                if let Some(f) = f {
                    r.at(
                        f,
                        format!("display.{name}"),
                        "a framebuffer's size is read from the kernel; only for kind = \"png\"",
                    );
                }
            };
            size(&d.width, "width", r);
            size(&d.height, "height", r);
            let device = d
                .device
                .as_ref()
                .map_or_else(|| PathBuf::from("/dev/fb0"), |p| PathBuf::from(p.get_ref()));
            DisplayTarget::Framebuffer { device }
        }
        DisplayKind::Png => {
            misplaced(r, &d.device, "device", "\"framebuffer\"");
            let Some(path) = &d.path else {
                r.at(&d.kind, "display.path", "kind = \"png\" needs a `path`");
                return None;
            };
            let dim = |f: &Option<Spanned<u32>>, name: &str, default: u32, r: &mut Report| {
                let field = format!("display.{name}");
                ranged(
                    r,
                    f,
                    64..=4096,
                    default,
                    &field,
                    "expected 64..=4096 pixels",
                )
            };
            DisplayTarget::Png {
                path: base.join(path.get_ref()),
                width: dim(&d.width, "width", DisplayConfig::DEFAULT_PNG_SIZE.0, r),
                height: dim(&d.height, "height", DisplayConfig::DEFAULT_PNG_SIZE.1, r),
            }
        }
    };
    Some(DisplayConfig {
        target,
        hold_seconds,
    })
}
