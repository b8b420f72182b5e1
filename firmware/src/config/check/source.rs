//! `[source]`: where frames come from (a camera, a folder, a file).

use super::{Report, required};
use crate::config::raw::{RawSource, SourceKind};
use crate::config::{PixelFormat, Source};
use std::path::{Path, PathBuf};
use toml::Spanned;

pub(super) fn check_source(r: &mut Report, src: &RawSource, base: &Path) -> Option<Source> {
    let kind = *src.kind.get_ref();
    let make: fn(PathBuf) -> Source = match kind {
        SourceKind::V4l2 => return check_v4l2(r, src),
        SourceKind::Folder => Source::Folder,
        SourceKind::Image => Source::Image,
        SourceKind::Mjpeg => Source::Mjpeg,
        SourceKind::Y4m => Source::Y4m,
    };
    let name = format!("{kind:?}").to_lowercase();
    let camera_only = [
        ("device", src.device.as_ref().map(Spanned::span)),
        ("format", src.format.as_ref().map(Spanned::span)),
        ("width", src.width.as_ref().map(Spanned::span)),
        ("height", src.height.as_ref().map(Spanned::span)),
        ("fps", src.fps.as_ref().map(Spanned::span)),
    ];
    for (field, span) in camera_only {
        let applies_to = format!("kind = \"v4l2\", not {name:?}");
        r.only_for(span, format!("source.{field}"), &applies_to);
    }
    let given = required(r, src, &src.path, "path", &name)?;
    let path = base.join(given.get_ref());
    let want_dir = kind == SourceKind::Folder;
    let ok = if want_dir {
        path.is_dir()
    } else {
        path.is_file()
    };
    if !ok {
        let what = if want_dir { "a folder" } else { "a file" };
        r.at(
            given,
            "source.path",
            format!("{} is not {what}", path.display()),
        );
    }
    Some(make(path))
}

pub(super) fn check_v4l2(r: &mut Report, src: &RawSource) -> Option<Source> {
    if let Some(p) = &src.path {
        r.at(p, "source.path", "not used by kind \"v4l2\" (use `device`)");
    }
    let device = required(r, src, &src.device, "device", "v4l2")?;
    let path = PathBuf::from(device.get_ref());
    // A node that is absent now is not an error: a USB camera may enumerate after the device
    // starts, and the camera source waits for it (`facegate check-config` says it is absent).
    if !path.is_absolute() {
        r.at(
            device,
            "source.device",
            format!(
                "{:?} is not an absolute device path such as /dev/video0",
                path.display()
            ),
        );
    }
    let mut positive = |v: &Option<Spanned<u32>>, field: &str, default: u32| match v {
        Some(s) if *s.get_ref() == 0 => {
            r.at(s, format!("source.{field}"), "must be positive");
            default
        }
        Some(s) => *s.get_ref(),
        None => default,
    };
    Some(Source::V4l2 {
        device: path,
        format: src
            .format
            .as_ref()
            .map_or(PixelFormat::Mjpeg, |f| *f.get_ref()),
        width: positive(&src.width, "width", 1280),
        height: positive(&src.height, "height", 720),
        fps: positive(&src.fps, "fps", 15),
    })
}
