//! `[source]`: where frames come from (a camera, a network camera, a folder, a file).

use super::{Report, ranged, required};
use crate::config::raw::{RawSource, SourceKind};
use crate::config::{PixelFormat, Source};
use facegate_pipeline::source::open::FFMPEG;
use facegate_pipeline::source::stream::{SCHEMES, without_credentials};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Frames a second kept from a network camera unless `fps` says otherwise: plenty for a door,
/// and the pipeline drops what it cannot take anyway.
pub const DEFAULT_STREAM_FPS: u32 = 5;

pub(super) fn check_source(r: &mut Report, src: &RawSource, base: &Path) -> Option<Source> {
    let kind = *src.kind.get_ref();
    let make: fn(PathBuf) -> Source = match kind {
        SourceKind::V4l2 => return check_v4l2(r, src),
        SourceKind::Stream => return check_stream(r, src),
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
    let url = src.url.as_ref().map(Spanned::span);
    r.only_for(
        url,
        "source.url",
        &format!("kind = \"stream\", not {name:?}"),
    );
    let given = required(r, src, &src.path, "path", &name)?;
    let path = base.join(given.get_ref());
    let want_dir = kind == SourceKind::Folder;
    // A stream file may also be a named pipe that another program writes frames into.
    let may_be_pipe = matches!(kind, SourceKind::Mjpeg | SourceKind::Y4m);
    let ok = if want_dir {
        path.is_dir()
    } else {
        path.is_file() || (may_be_pipe && is_fifo(&path))
    };
    if !ok {
        let what = match (want_dir, may_be_pipe) {
            (true, _) => "a folder",
            (false, true) => "a file or a named pipe",
            (false, false) => "a file",
        };
        r.at(
            given,
            "source.path",
            format!("{} is not {what}", path.display()),
        );
    }
    Some(make(path))
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

pub(super) fn check_v4l2(r: &mut Report, src: &RawSource) -> Option<Source> {
    if let Some(p) = &src.path {
        r.at(p, "source.path", "not used by kind \"v4l2\" (use `device`)");
    }
    let url = src.url.as_ref().map(Spanned::span);
    r.only_for(url, "source.url", "kind = \"stream\", not \"v4l2\"");
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

/// A network camera: its URL (RTSP or HTTP, credentials allowed and never echoed), the frame
/// rate kept, and ffmpeg on this machine.
pub(super) fn check_stream(r: &mut Report, src: &RawSource) -> Option<Source> {
    if let Some(p) = &src.path {
        r.at(p, "source.path", "not used by kind \"stream\" (use `url`)");
    }
    let camera_only = [
        ("device", src.device.as_ref().map(Spanned::span)),
        ("format", src.format.as_ref().map(Spanned::span)),
        ("width", src.width.as_ref().map(Spanned::span)),
        ("height", src.height.as_ref().map(Spanned::span)),
    ];
    for (field, span) in camera_only {
        r.only_for(
            span,
            format!("source.{field}"),
            "kind = \"v4l2\", not \"stream\"",
        );
    }
    let fps = ranged(
        r,
        &src.fps,
        0..=60,
        DEFAULT_STREAM_FPS,
        "source.fps",
        "must be 0 (every frame the camera sends) to 60",
    );
    let url = required(r, src, &src.url, "url", "stream")?;
    let text = url.get_ref().trim();
    let (scheme, rest) = text.split_once("://").unwrap_or_default();
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) || host.is_empty() {
        r.at(
            url,
            "source.url",
            format!(
                "{:?} is not a camera URL: expected rtsp://, rtsps://, http:// or https:// and \
                 the camera's address (rtsp://user:password@192.168.1.20:554/stream1)",
                without_credentials(text)
            ),
        );
    } else if text.chars().any(char::is_whitespace) {
        r.at(
            url,
            "source.url",
            "contains white space; percent-encode it (%20)",
        );
    }
    if !on_path(FFMPEG) {
        r.at(
            &src.kind,
            "source.kind",
            format!(
                "kind \"stream\" reads the camera through {FFMPEG}, which is not on the PATH \
                 (Debian: apt install ffmpeg)"
            ),
        );
    }
    Some(Source::Stream {
        url: text.to_owned(),
        fps,
    })
}

/// Whether `program` is an executable file in a folder of the PATH.
pub(super) fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}
