//! The renderer: ray-casts a person's head (an ellipsoid with a nose) under a shot's pose and
//! light, paints face, hair and occluders onto it, and returns the photo with its five true
//! landmarks. Orthographic camera; head units are scaled to pixels by the shot.

use super::identity::{HairStyle, Identity};
use super::occluder::Occlusion;
use super::rng::Rng;
use super::shot::Shot;
use facegate_contract::{Landmarks5, Point};
use image::RgbImage;

/// A rendered photo and where its five landmarks are (eye centres, nose tip, mouth corners).
#[derive(Debug, Clone)]
pub struct Photo {
    /// The picture.
    pub image: RgbImage,
    /// True landmarks in photo pixels, in [`Landmarks5`] order (the subject's right eye, i.e.
    /// the one on the image's left, first).
    pub landmarks: Landmarks5,
}

type V3 = [f32; 3];

fn dot(a: V3, b: V3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn normalise(v: V3) -> V3 {
    let n = dot(v, v).sqrt().max(1e-12);
    v.map(|x| x / n)
}

fn mix(a: V3, b: V3, t: f32) -> V3 {
    [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * t)
}

/// Rotation from head space to view space: roll * yaw * pitch, row-major.
#[derive(Debug, Clone, Copy)]
struct Rotation([[f32; 3]; 3]);

impl Rotation {
    fn new(yaw: f32, pitch: f32, roll: f32) -> Self {
        let (sy, cy) = yaw.sin_cos();
        let (sp, cp) = pitch.sin_cos();
        let (sr, cr) = roll.sin_cos();
        let rx = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
        let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
        let rz = [[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]];
        Self(mul(rz, mul(ry, rx)))
    }

    fn apply(&self, v: V3) -> V3 {
        self.0.map(|row| dot(row, v))
    }

    fn apply_transposed(&self, v: V3) -> V3 {
        let m = self.0;
        [0, 1, 2].map(|c| m[0][c] * v[0] + m[1][c] * v[1] + m[2][c] * v[2])
    }
}

fn mul(a: [[f32; 3]; 3], b: [[f32; 3]; 3]) -> [[f32; 3]; 3] {
    [0, 1, 2].map(|r| [0, 1, 2].map(|c| (0..3).map(|k| a[r][k] * b[k][c]).sum()))
}

/// Where a ray along the view axis through head-space origin `o`, direction `d`, first meets
/// the axis-aligned ellipsoid at `centre` with semi-axes `axes` (the hit nearest the camera).
fn hit_ellipsoid(o: V3, d: V3, centre: V3, axes: V3) -> Option<(f32, V3)> {
    let os = [0, 1, 2].map(|i| (o[i] - centre[i]) / axes[i]);
    let ds = [0, 1, 2].map(|i| d[i] / axes[i]);
    let a = dot(ds, ds);
    let b = 2.0 * dot(os, ds);
    let c = dot(os, os) - 1.0;
    let disc = b * b - 4.0 * a * c;
    if disc < 0.0 {
        return None;
    }
    let t = (-b + disc.sqrt()) / (2.0 * a);
    let p = [0, 1, 2].map(|i| o[i] + t * d[i]);
    let n = normalise([0, 1, 2].map(|i| (p[i] - centre[i]) / (axes[i] * axes[i])));
    Some((t, n))
}

/// The person, the photo and the occluder, with the derived geometry the painter needs.
struct Scene<'a> {
    person: &'a Identity,
    shot: &'a Shot,
    occlusion: &'a Occlusion,
    rotation: Rotation,
    centre: (f32, f32),
    nose_centre: V3,
    nose_axes: V3,
}

/// What a surface point looks like before lighting.
struct Surface {
    albedo: V3,
    shine: f32,
}

impl<'a> Scene<'a> {
    fn new(person: &'a Identity, shot: &'a Shot, occlusion: &'a Occlusion, size: u32) -> Self {
        let (tip_y, half_w, length, stand_out) = person.nose;
        let surface_z = person.head_depth * (1.0 - (tip_y / person.head_height).powi(2)).sqrt();
        Self {
            person,
            shot,
            occlusion,
            rotation: Rotation::new(shot.yaw, shot.pitch, shot.roll),
            centre: (
                size as f32 / 2.0 + shot.offset.0,
                size as f32 / 2.0 + shot.offset.1,
            ),
            nose_centre: [0.0, tip_y - 0.1 * length, surface_z - 0.3 * stand_out],
            nose_axes: [half_w, length / 2.0, stand_out],
        }
    }

    /// Head-space point on the head's surface in front of face point `(u, v)`.
    fn on_surface(&self, u: f32, v: f32) -> V3 {
        let p = self.person;
        let r = 1.0 - u * u - (v / p.head_height).powi(2);
        [u, v, p.head_depth * r.max(0.0).sqrt()]
    }

    /// Photo pixel of head-space point `p`.
    fn project(&self, p: V3) -> Point {
        let v = self.rotation.apply(p);
        Point::new(
            self.centre.0 + v[0] * self.shot.scale,
            self.centre.1 + v[1] * self.shot.scale,
        )
    }

    /// The five true landmarks.
    fn landmarks(&self) -> Landmarks5 {
        let p = self.person;
        let (mouth_y, half_w, ..) = p.mouth;
        let smile = self.shot.smile;
        let corner_y = mouth_y - 0.06 * smile;
        let corner_x = half_w * (1.0 + 0.15 * smile);
        let nose = [
            0.0,
            self.nose_centre[1],
            self.nose_centre[2] + self.nose_axes[2],
        ];
        Landmarks5([
            self.project(self.on_surface(-p.eye_dx, p.eye_y)),
            self.project(self.on_surface(p.eye_dx, p.eye_y)),
            self.project(nose),
            self.project(self.on_surface(-corner_x, corner_y)),
            self.project(self.on_surface(corner_x, corner_y)),
        ])
    }

    /// Half-width of the face at height `v`, narrowing towards the chin by the jaw shape.
    fn face_half_width(&self, v: f32) -> f32 {
        let p = self.person;
        let ellipse = (1.0 - (v / p.head_height).powi(2)).max(0.0).sqrt();
        let start = p.mouth.0 - 0.35;
        if v <= start {
            return ellipse;
        }
        let t = ((v - start) / (p.head_height - start)).clamp(0.0, 1.0);
        ellipse * (1.0 - (1.0 - p.jaw) * t * t * 0.6)
    }

    /// Linear colour of view-space point `(x, y)` in head units from the head centre.
    fn shade_pixel(&self, x: f32, y: f32, fx: f32, fy: f32) -> V3 {
        let p = self.person;
        // Face-frame 2D coordinates (roll removed): for view-space overlays.
        let (sr, cr) = self.shot.roll.sin_cos();
        let (xr, yr) = (cr * x + sr * y, -sr * x + cr * y);

        let mut colour = self.background(fx, fy);
        if p.hair_style == HairStyle::Long {
            let (dx, dy) = (xr / 1.3, (yr - 0.45) / 1.65);
            if dx * dx + dy * dy < 1.0 && yr > -1.2 {
                colour = self.lit(p.hair.map(|c| c * 0.8), [0.0, 0.0, 1.0], 0.1);
            }
        }
        // Neck and shirt behind the head.
        if yr > 0.4 && xr.abs() < 0.55 {
            colour = self.lit(p.skin.map(|c| c * 0.85), [0.0, 0.0, 1.0], 0.0);
        }
        if yr > p.head_height * 1.05 + 0.25 * xr.abs() - 0.1 * xr * xr && xr.abs() < 2.5 {
            colour = self.lit(self.shot.shirt, normalise([xr * 0.2, -0.3, 1.0]), 0.0);
        }
        if let Some(c) = self.head(x, y) {
            colour = c;
        }
        match *self.occlusion {
            Occlusion::Scarf {
                top,
                colours,
                stripes,
            } => {
                let depth = yr - top - 0.06 * xr * xr;
                if depth > 0.0 && xr.abs() < 1.2 + 0.35 * depth && yr < 3.0 {
                    let along = xr * stripes.1.cos() + yr * stripes.1.sin();
                    let band = (along / stripes.0).rem_euclid(1.0) < 0.35;
                    let fold = 0.85 + 0.15 * (yr * 9.0 + xr * 2.0).sin();
                    let albedo = if band { colours.1 } else { colours.0 };
                    let normal = normalise([xr * 0.4, -0.2, 1.0]);
                    colour = self.lit(albedo.map(|c| c * fold), normal, 0.0);
                }
            }
            Occlusion::Hand {
                centre,
                angle,
                size,
                skin,
            } => {
                let (sa, ca) = angle.sin_cos();
                let (hx, hy) = (xr - centre.0, yr - centre.1);
                let (lx, ly) = ((ca * hx + sa * hy) / size, (-sa * hx + ca * hy) / size);
                if in_hand(lx, ly) {
                    let normal = normalise([lx * 0.3, ly * 0.2, 1.0]);
                    colour = self.lit(skin, normal, 0.05);
                }
            }
            _ => {}
        }
        colour
    }

    fn background(&self, fx: f32, fy: f32) -> V3 {
        let bg = &self.shot.background;
        let mut c = mix(bg.gradient.0, bg.gradient.1, fy);
        for &(bx, by, r, col) in &bg.blobs {
            let d = ((fx - bx).powi(2) + (fy - by).powi(2)).sqrt();
            if d < r {
                c = mix(c, col, (1.0 - d / r).min(0.25) * 4.0);
            }
        }
        c
    }

    /// Lambert plus a little specular under the shot's light.
    fn lit(&self, albedo: V3, normal: V3, shine: f32) -> V3 {
        let s = self.shot;
        let diffuse = dot(normal, s.light).max(0.0);
        let (key, ambient) = s.light_levels;
        let half = normalise([s.light[0], s.light[1], s.light[2] + 1.0]);
        let spec = shine * dot(normal, half).max(0.0).powi(24);
        [0, 1, 2].map(|i| (albedo[i] * (ambient + key * diffuse) + spec) * s.tint[i] * s.exposure)
    }

    /// The head (and nose) in front of view point `(x, y)`, lit; `None` when the ray misses.
    fn head(&self, x: f32, y: f32) -> Option<V3> {
        let p = self.person;
        let o = self.rotation.apply_transposed([x, y, 0.0]);
        let d = self.rotation.apply_transposed([0.0, 0.0, 1.0]);
        let skull = hit_ellipsoid(o, d, [0.0; 3], [1.0, p.head_height, p.head_depth]);
        let nose = hit_ellipsoid(o, d, self.nose_centre, self.nose_axes);
        let (surface, normal) = match (skull, nose) {
            (_, Some((tn, n))) if skull.is_none_or(|(ts, _)| tn > ts) => {
                let hit = [0, 1, 2].map(|i| o[i] + tn * d[i]);
                (self.nose_surface(hit, n), n)
            }
            (Some((ts, n)), _) => {
                let hit = [0, 1, 2].map(|i| o[i] + ts * d[i]);
                if hit[1] > 0.2 && hit[2] > -0.3 && hit[0].abs() > self.face_half_width(hit[1]) {
                    return None;
                }
                (self.paint(hit), n)
            }
            _ => return None,
        };
        Some(self.lit(surface.albedo, self.rotation.apply(normal), surface.shine))
    }

    fn nose_surface(&self, hit: V3, normal: V3) -> Surface {
        let p = self.person;
        let ny = (hit[1] - self.nose_centre[1]) / self.nose_axes[1];
        let nx = hit[0] / self.nose_axes[0];
        let mut albedo = p.skin.map(|c| c * 1.02);
        albedo[0] *= 1.0 + 0.08 * (1.0 - ny.abs());
        if normal[1] > 0.45 && ((nx.abs() - 0.45).abs() < 0.28) {
            albedo = albedo.map(|c| c * 0.25);
        }
        let mut surface = Surface {
            albedo,
            shine: 0.12,
        };
        self.paint_occluder(hit[0], hit[1], hit[2], &mut surface);
        surface
    }

    /// Albedo at head-space surface point `hit`.
    fn paint(&self, hit: V3) -> Surface {
        let p = self.person;
        let (u, v, z) = (hit[0], hit[1], hit[2]);
        let mut s = Surface {
            albedo: p.skin,
            shine: 0.08,
        };
        // Cheeks and moles.
        for side in [-1.0f32, 1.0] {
            let d2 = ((u - side * 0.5).powi(2) + (v - 0.3).powi(2)) / 0.06;
            if d2 < 1.0 {
                let b = p.blush * (1.0 - d2);
                s.albedo = [
                    s.albedo[0] * (1.0 + b),
                    s.albedo[1] * (1.0 - b),
                    s.albedo[2],
                ];
            }
        }
        for &(mx, my, r) in &p.moles {
            if (u - mx).powi(2) + (v - my).powi(2) < r * r {
                s.albedo = mix(s.albedo, [0.08, 0.04, 0.02], 0.8);
            }
        }
        self.paint_beard(u, v, &mut s);
        self.paint_mouth(u, v, &mut s);
        self.paint_eyes(u, v, &mut s);
        self.paint_brows(u, v, &mut s);
        self.paint_hair(u, v, z, &mut s);
        self.paint_occluder(u, v, z, &mut s);
        s
    }

    fn paint_eyes(&self, u: f32, v: f32, s: &mut Surface) {
        let p = self.person;
        let (half_w, half_h) = p.eye_size;
        for side in [-1.0f32, 1.0] {
            let ex = u - side * p.eye_dx;
            let ey = v - p.eye_y + side * p.eye_tilt * ex;
            let t = 1.0 - (ex / half_w).powi(2);
            if t <= -0.3 {
                continue;
            }
            // Socket shadow around the eye.
            let socket = (ex / (half_w * 1.5)).powi(2) + (ey / (half_h * 2.6)).powi(2);
            if socket < 1.0 {
                s.albedo = s.albedo.map(|c| c * (0.9 + 0.1 * socket));
            }
            if t <= 0.0 {
                continue;
            }
            let open = self.shot.eyes_open;
            let top = -half_h * t.sqrt() * (0.2 + 0.8 * open) * 1.1;
            let bottom = half_h * t.sqrt() * 0.9 * open.max(0.15);
            if open < 0.15 {
                if (ey - bottom * 0.5).abs() < 0.012 {
                    s.albedo = [0.03, 0.02, 0.02];
                }
                continue;
            }
            if ey > top && ey < bottom {
                let r = (ex * ex + ey * ey).sqrt();
                let iris_r = half_h * p.iris_size * 1.15;
                // The pupil stays matte: the eye landmark is its centre.
                (s.albedo, s.shine) = if r < iris_r * 0.42 {
                    ([0.01, 0.01, 0.01], 0.0)
                } else if r < iris_r {
                    (p.iris.map(|c| c * (0.7 + 0.3 * r / iris_r)), 0.4)
                } else {
                    ([0.62, 0.6, 0.56], 0.3)
                };
            }
            if (ey - top).abs() < 0.014 && t > 0.05 {
                s.albedo = [0.02, 0.015, 0.015];
            }
        }
    }

    fn paint_brows(&self, u: f32, v: f32, s: &mut Surface) {
        let p = self.person;
        let (gap, thick, half_len, slant) = p.brow;
        for side in [-1.0f32, 1.0] {
            let bx = u - side * (p.eye_dx + 0.02);
            let t = bx / half_len;
            if t.abs() >= 1.0 {
                continue;
            }
            let centre =
                p.eye_y - gap - self.shot.brow_raise - slant * bx * side - 0.03 * (1.0 - t * t);
            if (v - centre).abs() < thick * (1.0 - 0.5 * t * t) {
                s.albedo = mix(s.albedo, p.hair.map(|c| c * 0.7), 0.85);
            }
        }
    }

    fn paint_mouth(&self, u: f32, v: f32, s: &mut Surface) {
        let p = self.person;
        let (mouth_y, half_w, upper, lower) = p.mouth;
        let w = half_w * (1.0 + 0.15 * self.shot.smile);
        let t = 1.0 - (u / w).powi(2);
        if t <= 0.0 {
            return;
        }
        let line = mouth_y - 0.06 * self.shot.smile * (1.0 - t);
        let gap = 0.09 * self.shot.mouth_open * t.sqrt();
        let dv = v - line;
        if dv > -upper * t.sqrt() && dv < 0.0 {
            s.albedo = p.lips;
            s.shine = 0.2;
        } else if dv >= 0.0 && dv < gap {
            s.albedo = if dv < gap * 0.35 && self.shot.mouth_open > 0.3 {
                [0.7, 0.68, 0.62]
            } else {
                [0.03, 0.01, 0.01]
            };
        } else if dv >= gap && dv < gap + lower * t.sqrt() {
            s.albedo = p.lips.map(|c| c * 1.08);
            s.shine = 0.25;
        } else if (dv - gap).abs() < 0.008 {
            s.albedo = p.lips.map(|c| c * 0.5);
        }
    }

    fn paint_beard(&self, u: f32, v: f32, s: &mut Surface) {
        let p = self.person;
        if p.beard <= 0.0 {
            return;
        }
        let above_lip = v > p.mouth.0 - 0.14 && v < p.mouth.0 - 0.03 && u.abs() < p.mouth.1 * 1.2;
        let chin = v > p.mouth.0 + 0.12 || (v > p.mouth.0 - 0.05 && u.abs() > p.mouth.1 * 1.1);
        if above_lip || (chin && v > p.nose.0 + 0.1) {
            let grain = ((u * 97.0).sin() * (v * 83.0).cos() * 0.5 + 0.5) * 0.4 + 0.6;
            s.albedo = mix(s.albedo, p.hair, p.beard * grain);
        }
    }

    fn paint_hair(&self, u: f32, v: f32, z: f32, s: &mut Surface) {
        let p = self.person;
        if p.hair_style == HairStyle::Bald {
            return;
        }
        let (amp, phase) = p.hairline_wave;
        let line = p.hairline + amp * (u * 4.0 + phase).sin() + 0.25 * u * u;
        let sides = u.abs() > 0.88 && v < p.eye_y + 0.15;
        if v < line || sides || z < -0.1 {
            let strand = 0.8 + 0.2 * (u * 70.0 + v * 9.0 + (v * 13.0).sin()).sin();
            s.albedo = p.hair.map(|c| c * strand);
            s.shine = 0.15;
        }
    }

    fn paint_occluder(&self, u: f32, v: f32, z: f32, s: &mut Surface) {
        let p = self.person;
        match *self.occlusion {
            Occlusion::Sunglasses {
                lens,
                roundness,
                tint,
                frame,
            } => {
                let top = p.eye_y - lens.1 * 0.8;
                for side in [-1.0f32, 1.0] {
                    let lx = (u - side * p.eye_dx) / lens.0;
                    let ly = (v - p.eye_y - lens.1 * 0.1) / lens.1;
                    let r = lx.abs().powf(roundness) + ly.abs().powf(roundness);
                    if r < 1.0 {
                        s.albedo = mix(tint, [0.3, 0.3, 0.35], (0.5 - lx - ly).max(0.0) * 0.15);
                        s.shine = 0.3;
                        return;
                    }
                    if r < 1.35 {
                        *s = Surface {
                            albedo: frame,
                            shine: 0.4,
                        };
                        return;
                    }
                }
                let bridge = u.abs() < p.eye_dx && (v - top).abs() < 0.02;
                let temple = u.abs() > p.eye_dx + lens.0 && (v - top).abs() < 0.025 && z > -0.2;
                if bridge || temple {
                    *s = Surface {
                        albedo: frame,
                        shine: 0.4,
                    };
                }
            }
            Occlusion::Mask { top, colour } => {
                let edge = top + 0.12 * u * u;
                let inside = v > edge && u.abs() < self.face_half_width(v) * 1.02 && z > -0.1;
                let strap =
                    u.abs() > 0.8 && (v - edge - 0.05 - (u.abs() - 0.8) * 0.3).abs() < 0.018;
                if inside {
                    let pleat = 0.88 + 0.12 * ((v - edge) * 45.0).sin();
                    *s = Surface {
                        albedo: colour.map(|c| c * pleat),
                        shine: 0.02,
                    };
                } else if strap {
                    *s = Surface {
                        albedo: [0.8, 0.8, 0.8],
                        shine: 0.0,
                    };
                }
            }
            Occlusion::Hat { edge, colour } => {
                let line = edge + 0.05 * u * u;
                if v < line {
                    let band = line - v < 0.07;
                    *s = Surface {
                        albedo: colour.map(|c| if band { c * 0.6 } else { c }),
                        shine: 0.05,
                    };
                }
            }
            _ => {}
        }
    }
}

/// Whether hand-frame point `(x, y)` (palm half-height 1, fingers up) is on the hand.
fn in_hand(x: f32, y: f32) -> bool {
    if (x / 0.85).powi(2) + (y / 1.0).powi(2) < 1.0 {
        return true;
    }
    // Four fingers from the top of the palm, and a thumb to the side.
    for (i, len) in [1.05f32, 1.25, 1.2, 0.95].into_iter().enumerate() {
        let fx = -0.55 + 0.37 * i as f32;
        if (x - fx).abs() < 0.16 && y < -0.4 && y > -0.4 - len {
            return true;
        }
    }
    let (tx, ty) = (x - 0.95, y - 0.1);
    (tx * 0.8 + ty * 0.6).abs() < 0.17 && (-tx * 0.6 + ty * 0.8).abs() < 0.7 && tx > -0.3
}

/// Renders `person` in `shot` with `occlusion` as a `size` x `size` photo; `noise` draws the
/// sensor noise.
pub fn render(
    person: &Identity,
    shot: &Shot,
    occlusion: &Occlusion,
    size: u32,
    noise: &mut Rng,
) -> Photo {
    let scene = Scene::new(person, shot, occlusion, size);
    let n = size as usize;
    let mut linear = vec![[0.0f32; 3]; n * n];
    const SUB: [f32; 2] = [0.25, 0.75];
    for (j, row) in linear.chunks_mut(n).enumerate() {
        for (i, out) in row.iter_mut().enumerate() {
            let mut acc = [0.0f32; 3];
            for sy in SUB {
                for sx in SUB {
                    let (px, py) = (i as f32 + sx, j as f32 + sy);
                    let x = (px - scene.centre.0) / shot.scale;
                    let y = (py - scene.centre.1) / shot.scale;
                    let c = scene.shade_pixel(x, y, px / size as f32, py / size as f32);
                    for k in 0..3 {
                        acc[k] += c[k] / 4.0;
                    }
                }
            }
            *out = acc;
        }
    }
    if shot.blur > 0.05 {
        blur(&mut linear, n, shot.blur);
    }
    let image = RgbImage::from_fn(size, size, |i, j| {
        let c = linear[j as usize * n + i as usize];
        image::Rgb(c.map(|v| {
            let srgb = 255.0 * v.max(0.0).powf(1.0 / 2.2) + shot.noise * noise.normal();
            srgb.round().clamp(0.0, 255.0) as u8
        }))
    });
    Photo {
        image,
        landmarks: scene.landmarks(),
    }
}

/// Separable Gaussian blur of an `n` x `n` image, edges clamped.
fn blur(pixels: &mut [V3], n: usize, sigma: f32) {
    let radius = (sigma * 2.5).ceil() as isize;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|k| (-(k * k) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let tap = |k: isize| kernel[(k + radius) as usize] / total;
    let clamp = |v: isize| v.clamp(0, n as isize - 1) as usize;
    let mut tmp = vec![[0.0f32; 3]; n * n];
    for j in 0..n {
        for i in 0..n {
            let mut acc = [0.0f32; 3];
            for k in -radius..=radius {
                let c = pixels[j * n + clamp(i as isize + k)];
                (0..3).for_each(|c_| acc[c_] += tap(k) * c[c_]);
            }
            tmp[j * n + i] = acc;
        }
    }
    for j in 0..n {
        for i in 0..n {
            let mut acc = [0.0f32; 3];
            for k in -radius..=radius {
                let c = tmp[clamp(j as isize + k) * n + i];
                (0..3).for_each(|c_| acc[c_] += tap(k) * c[c_]);
            }
            pixels[j * n + i] = acc;
        }
    }
}
