//! Recorded video as a source: Motion-JPEG and YUV4MPEG2 files made from real face photos,
//! read back frame by frame, with the damage a real recording has (junk between frames, a
//! truncated end, a thumbnail holding an end-of-image marker) reported and skipped.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use facegate_pipeline::source::recorded::{MjpegFile, Y4mFile};
use facegate_pipeline::source::{FrameSource, SourceError};
use image::RgbImage;
use std::path::{Path, PathBuf};

fn demo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/demo")
        .join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facegate-recorded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Everything the source yields: frames' sizes, or the error.
fn drain(source: &mut dyn FrameSource) -> Vec<Result<(u64, u32, u32), String>> {
    let mut out = Vec::new();
    loop {
        match source.next_frame() {
            Ok(Some(f)) => out.push(Ok((f.seq, f.image.width(), f.image.height()))),
            Ok(None) => return out,
            Err(e) => {
                assert!(e.is_recoverable(), "{e}");
                out.push(Err(e.to_string()));
            }
        }
        assert!(out.len() < 100, "the source does not end");
    }
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

#[test]
fn an_mjpeg_file_yields_every_jpeg_and_reports_the_damage() {
    let frames = [
        "frames/01-obama-another-photo.jpg",
        "frames/03-obama-masked.jpg",
        "frames/04-empty-doorway.jpg",
    ];
    let jpegs: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| std::fs::read(demo(f)).unwrap())
        .collect();
    let sizes: Vec<(u32, u32)> = frames
        .iter()
        .map(|f| image::image_dimensions(demo(f)).unwrap())
        .collect();

    // A first frame whose APP1 segment (an EXIF-like blob) holds FFD9: a naive splitter
    // would cut the frame there.
    let mut first = jpegs[0][..2].to_vec();
    let blob = b"Exif\0\0\xFF\xD9\xFF\xD8 not the end";
    first.extend_from_slice(&[0xFF, 0xE1]);
    first.extend_from_slice(&((blob.len() + 2) as u16).to_be_bytes());
    first.extend_from_slice(blob);
    first.extend_from_slice(&jpegs[0][2..]);

    let mut file = Vec::new();
    file.extend_from_slice(&first);
    file.extend_from_slice(b"junk between frames");
    file.extend_from_slice(&jpegs[1]);
    file.extend_from_slice(&jpegs[2]);
    file.extend_from_slice(&jpegs[1][..jpegs[1].len() / 2]); // cut off mid-frame
    let path = scratch("clip.mjpeg");
    std::fs::write(&path, &file).unwrap();

    let mut src = MjpegFile::open(&path).unwrap();
    let got = drain(&mut src);
    assert_eq!(got.len(), 4, "{got:?}");
    for (i, size) in sizes.iter().enumerate() {
        assert_eq!(got[i], Ok((i as u64, size.0, size.1)), "{got:?}");
    }
    let err = got[3].as_ref().unwrap_err();
    assert!(
        err.contains("clip.mjpeg") && err.contains("cut off"),
        "{err}"
    );

    // Pixels are the codec's, not approximations.
    let mut src = MjpegFile::open(&path).unwrap();
    let f = src.next_frame().unwrap().unwrap();
    let direct = image::open(demo(frames[0])).unwrap().to_rgb8();
    assert_eq!(mean_abs_diff(&f.image, &direct), 0.0);
}

#[test]
fn a_file_that_is_not_mjpeg_yields_nothing_and_a_missing_one_names_itself() {
    let path = scratch("text.mjpeg");
    std::fs::write(&path, b"hello, no JPEG here").unwrap();
    assert!(drain(&mut MjpegFile::open(&path).unwrap()).is_empty());
    let missing = scratch("missing.mjpeg");
    match MjpegFile::open(&missing) {
        Err(SourceError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{:?}", other.err()),
    }
}

/// RGB to limited-range BT.601 4:2:0 planes (what ffmpeg writes by default).
fn to_i420(img: &RgbImage) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut y = vec![0u8; w * h];
    let mut u = vec![0f32; cw * ch];
    let mut v = vec![0f32; cw * ch];
    let mut n = vec![0f32; cw * ch];
    for (x, yy, p) in img.enumerate_pixels() {
        let [r, g, b] = p.0.map(f32::from);
        let luma = 0.299 * r + 0.587 * g + 0.114 * b;
        y[yy as usize * w + x as usize] = (16.0 + luma * 219.0 / 255.0).round() as u8;
        let c = (yy as usize / 2) * cw + x as usize / 2;
        u[c] += 128.0 + (b - luma) / 1.772 * 224.0 / 255.0;
        v[c] += 128.0 + (r - luma) / 1.402 * 224.0 / 255.0;
        n[c] += 1.0;
    }
    let avg = |p: Vec<f32>| -> Vec<u8> {
        p.iter()
            .zip(&n)
            .map(|(s, k)| (s / k).round().clamp(0.0, 255.0) as u8)
            .collect()
    };
    (y, avg(u), avg(v))
}

#[test]
fn a_y4m_file_round_trips_real_faces_and_a_truncated_end_is_reported() {
    let imgs: Vec<RgbImage> = ["frames/01-obama-another-photo.jpg", "enroll/biden.jpg"]
        .iter()
        .map(|f| {
            image::open(demo(f))
                .unwrap()
                .resize_exact(161, 121, image::imageops::FilterType::Triangle)
                .to_rgb8()
        })
        .collect();
    let mut file = Vec::new();
    {
        let mut enc = y4m::encode(161, 121, y4m::Ratio::new(25, 1))
            .with_colorspace(y4m::Colorspace::C420jpeg)
            .write_header(&mut file)
            .unwrap();
        for img in &imgs {
            let (y, u, v) = to_i420(img);
            enc.write_frame(&y4m::Frame::new([&y, &u, &v], None))
                .unwrap();
        }
    }
    let whole = file.len();
    let path = scratch("clip.y4m");
    std::fs::write(&path, &file).unwrap();
    let mut src = Y4mFile::open(&path).unwrap();
    for (i, img) in imgs.iter().enumerate() {
        let f = src.next_frame().unwrap().unwrap();
        assert_eq!(f.seq, i as u64);
        // 4:2:0 halves the colour resolution: the round trip is close, not exact.
        let diff = mean_abs_diff(&f.image, img);
        assert!(diff < 6.0, "frame {i}: mean difference {diff}");
    }
    assert!(src.next_frame().unwrap().is_none());

    // The last frame cut in half: an error naming the file, then the end.
    std::fs::write(&path, &file[..whole - 5000]).unwrap();
    let got = drain(&mut Y4mFile::open(&path).unwrap());
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].is_ok());
    let err = got[1].as_ref().unwrap_err();
    assert!(err.contains("clip.y4m") && err.contains("frame 1"), "{err}");

    // Not a Y4M file at all.
    std::fs::write(&path, b"RIFF....WAVE").unwrap();
    let err = Y4mFile::open(&path).err().unwrap().to_string();
    assert!(
        err.contains("clip.y4m") && err.contains("YUV4MPEG2"),
        "{err}"
    );
}
