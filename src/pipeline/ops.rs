//! Each task as a function from image to image.

use super::job::{Align, Fit, Op};
use super::Budget;
use crate::error::{Error, Result};
use crate::plan::Rgba;
use fast_image_resize as fir;
use image::{imageops, DynamicImage, GenericImageView, Rgba as Px, RgbaImage};

/// Apply one operation. The budget's pixel limit bounds what an operation may produce, not only
/// what is decoded: a 1×5000 input resized to `w:10000` would otherwise ask for 50 gigapixels.
pub fn apply(img: DynamicImage, op: &Op, budget: &Budget) -> Result<DynamicImage> {
    let max_pixels = budget.limits.max_pixels;
    Ok(match *op {
        Op::Resize { width, height, fit, align } => {
            let (w, h) = img.dimensions();
            let geo = resize_geometry(w, h, width, height, fit, align);
            check_upscale(&geo, budget.limits.max_upscale)?;
            check_output(geo.dst.0 as u64, geo.dst.1 as u64, max_pixels)?;
            resize(&img, geo)?
        }
        Op::Crop { x, y, width, height } => crop(img, x, y, width, height)?,
        Op::Rotate { degrees, background } => {
            let (w, h) = img.dimensions();
            let diagonal = ((w as f64).hypot(h as f64)).ceil() as u64;
            check_output(diagonal, diagonal, max_pixels)?;
            rotate(img, degrees, background, budget)?
        }
        Op::Flip => img.flipv(),
        Op::Flop => img.fliph(),
        Op::Monochrome => map_rgb(img, |[r, g, b]| {
            let l = luma(r, g, b);
            [l, l, l]
        }),
        Op::Negative => map_rgb(img, |[r, g, b]| [255 - r, 255 - g, 255 - b]),
        Op::Blur { sigma } if sigma > 0.0 => super::blur::blur(img, sigma, budget)?,
        Op::Sharpen { sigma } if sigma > 0.0 => super::blur::sharpen(img, sigma / 2.0 + 0.5, budget)?,
        Op::Blur { .. } | Op::Sharpen { .. } => img,
        Op::Sepia { tone } => sepia(img, tone),
        Op::BlackWhite { threshold } => {
            let cut = (threshold as u32 * 255 / 100) as u8;
            map_rgb(img, |[r, g, b]| if luma(r, g, b) >= cut { [255; 3] } else { [0; 3] })
        }
        Op::Pixelate { block } => pixelate(img, block)?,
        Op::Modulate { brightness, saturation, hue } => modulate(img, brightness, saturation, hue),
        Op::Circle { background } => circle(img, background),
        Op::RoundedCorners { radius, blur, background } => rounded_corners(img, radius, blur, background),
        Op::Partial { ref rects, amount, oval, pixelate } => partial(img, rects, amount, oval, pixelate, budget)?,
        Op::Watermark { .. } => return Err(Error::internal("watermark needs its overlay (pipeline::run_with)")),
        Op::Border { width, color, background } => {
            let (w, h) = img.dimensions();
            check_output(w as u64 + 2 * width as u64, h as u64 + 2 * width as u64, max_pixels)?;
            border(img, width, color, background)
        }
    })
}

/// Refuse results over the pixel limit (or over 65535 on a side) before allocating them.
fn check_output(w: u64, h: u64, max_pixels: u64) -> Result<()> {
    if w > 65_535 || h > 65_535 || w * h > max_pixels {
        return Err(Error::Unprocessable(format!(
            "the result would be {w}x{h} pixels, over the limit of {max_pixels} pixels (65535 a side)"
        )));
    }
    Ok(())
}

/// A resize may enlarge its source at most `max` times per axis: a 1×1 pixel blown up to the
/// pixel limit costs as much as the largest photo and shows nothing.
fn check_upscale(geo: &ResizeGeometry, max: f64) -> Result<()> {
    let (_, _, cw, ch) = geo.src;
    let factor = (geo.dst.0 as f64 / cw).max(geo.dst.1 as f64 / ch);
    if factor > max + 1e-9 {
        return Err(Error::bad_task(
            "resize",
            format!("the resize enlarges the image {factor:.1} times, over the limit of {max} (max_upscale)"),
        ));
    }
    Ok(())
}

/// Where a resize reads from (a crop of the source) and what size it writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResizeGeometry {
    pub src: (f64, f64, f64, f64),
    pub dst: (u32, u32),
}

/// Filestack's fits: clip fits inside the box (may enlarge), max is clip that never enlarges,
/// scale stretches to the box, crop fills the box and cuts the overflow at `align`.
pub fn resize_geometry(
    w: u32,
    h: u32,
    width: Option<u32>,
    height: Option<u32>,
    fit: Fit,
    align: Align,
) -> ResizeGeometry {
    let (sw, sh) = (w as f64, h as f64);
    let full = (0.0, 0.0, sw, sh);
    let round = |v: f64| (v.round() as u32).max(1);
    let (bw, bh) = match (width, height) {
        (Some(bw), Some(bh)) => (bw as f64, bh as f64),
        (Some(bw), None) => {
            let s = bw as f64 / sw;
            let s = if fit == Fit::Max { s.min(1.0) } else { s };
            return ResizeGeometry { src: full, dst: (round(sw * s), round(sh * s)) };
        }
        (None, Some(bh)) => {
            let s = bh as f64 / sh;
            let s = if fit == Fit::Max { s.min(1.0) } else { s };
            return ResizeGeometry { src: full, dst: (round(sw * s), round(sh * s)) };
        }
        (None, None) => return ResizeGeometry { src: full, dst: (w, h) },
    };
    match fit {
        Fit::Scale => ResizeGeometry { src: full, dst: (round(bw), round(bh)) },
        Fit::Clip | Fit::Max => {
            let mut s = (bw / sw).min(bh / sh);
            if fit == Fit::Max {
                s = s.min(1.0);
            }
            ResizeGeometry { src: full, dst: (round(sw * s), round(sh * s)) }
        }
        Fit::Crop => {
            // the largest source window with the box's aspect ratio, placed by align
            let s = (bw / sw).max(bh / sh);
            let (cw, ch) = ((bw / s).min(sw), (bh / s).min(sh));
            let x = (sw - cw) * align.x;
            let y = (sh - ch) * align.y;
            ResizeGeometry { src: (x, y, cw, ch), dst: (round(bw), round(bh)) }
        }
    }
}

fn resize(img: &DynamicImage, geo: ResizeGeometry) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    let (dw, dh) = geo.dst;
    if (dw, dh) == (w, h) && geo.src == (0.0, 0.0, w as f64, h as f64) {
        return Ok(img.clone());
    }
    let (pixel_type, bytes) = match img {
        DynamicImage::ImageRgb8(b) => (fir::PixelType::U8x3, b.as_raw().as_slice()),
        DynamicImage::ImageRgba8(b) => (fir::PixelType::U8x4, b.as_raw().as_slice()),
        _ => return Err(Error::internal("resize expects 8-bit RGB(A)")),
    };
    let src = fir::images::ImageRef::new(w, h, bytes, pixel_type).map_err(Error::internal)?;
    let mut dst = fir::images::Image::new(dw, dh, pixel_type);
    // Lanczos3 is what sharp/libvips use for downscaling photos; fir's AVX2 path makes it cheap.
    let (x, y, cw, ch) = geo.src;
    let options =
        fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3)).crop(x, y, cw, ch);
    fir::Resizer::new().resize(&src, &mut dst, &options).map_err(Error::internal)?;
    let buf = dst.into_vec();
    Ok(match pixel_type {
        fir::PixelType::U8x3 => DynamicImage::ImageRgb8(image::RgbImage::from_raw(dw, dh, buf).expect("size")),
        _ => DynamicImage::ImageRgba8(image::RgbaImage::from_raw(dw, dh, buf).expect("size")),
    })
}

fn crop(img: DynamicImage, x: u32, y: u32, width: u32, height: u32) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    if x >= w || y >= h {
        return Err(Error::bad_option("crop", "dim", format!("crop origin {x},{y} is outside the {w}x{h} image")));
    }
    // a rectangle partly outside keeps only the overlapping part
    Ok(img.crop_imm(x, y, width.min(w - x), height.min(h - y)))
}

fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 299 + g as u32 * 587 + b as u32 * 114 + 500) / 1000) as u8
}

/// Apply a per-pixel colour function, keeping alpha.
fn map_rgb(mut img: DynamicImage, f: impl Fn([u8; 3]) -> [u8; 3]) -> DynamicImage {
    match &mut img {
        DynamicImage::ImageRgb8(b) => b.pixels_mut().for_each(|p| p.0 = f(p.0)),
        DynamicImage::ImageRgba8(b) => b.pixels_mut().for_each(|p| {
            let [r, g, bl] = f([p.0[0], p.0[1], p.0[2]]);
            p.0 = [r, g, bl, p.0[3]];
        }),
        _ => {}
    }
    img
}

fn sepia(img: DynamicImage, tone: u8) -> DynamicImage {
    let t = tone as f32 / 100.0;
    map_rgb(img, |[r, g, b]| {
        let (r, g, b) = (r as f32, g as f32, b as f32);
        let sr = (r * 0.393 + g * 0.769 + b * 0.189).min(255.0);
        let sg = (r * 0.349 + g * 0.686 + b * 0.168).min(255.0);
        let sb = (r * 0.272 + g * 0.534 + b * 0.131).min(255.0);
        let mix = |orig: f32, s: f32| (orig + (s - orig) * t).round().clamp(0.0, 255.0) as u8;
        [mix(r, sr), mix(g, sg), mix(b, sb)]
    })
}

fn pixelate(img: DynamicImage, block: u32) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    if block <= 1 {
        return Ok(img);
    }
    let small = (w.div_ceil(block).max(1), h.div_ceil(block).max(1));
    let full = (0.0, 0.0, w as f64, h as f64);
    let reduced = resize(&img, ResizeGeometry { src: full, dst: small })?;
    Ok(reduced.resize_exact(w, h, imageops::FilterType::Nearest))
}

fn modulate(img: DynamicImage, brightness: f32, saturation: f32, hue: f32) -> DynamicImage {
    let img = if hue != 0.0 { img.huerotate(hue as i32) } else { img };
    map_rgb(img, |[r, g, b]| {
        let l = luma(r, g, b) as f32;
        let adj = |c: u8| ((l + (c as f32 - l) * saturation) * brightness).round().clamp(0.0, 255.0) as u8;
        [adj(r), adj(g), adj(b)]
    })
}

fn to_rgba(img: DynamicImage) -> RgbaImage {
    match img {
        DynamicImage::ImageRgba8(b) => b,
        other => other.to_rgba8(),
    }
}

/// Keep RGB when the result has no transparency the input did not have.
fn from_rgba(buf: RgbaImage, had_alpha: bool, background: Rgba) -> DynamicImage {
    let out = DynamicImage::ImageRgba8(buf);
    if !had_alpha && background.0[3] == 255 {
        DynamicImage::ImageRgb8(out.to_rgb8())
    } else {
        out
    }
}

fn rotate(img: DynamicImage, degrees: u32, background: Rgba, budget: &Budget) -> Result<DynamicImage> {
    Ok(match degrees {
        0 => img,
        90 => img.rotate90(),
        180 => img.rotate180(),
        270 => img.rotate270(),
        _ => {
            let had_alpha = img.color().has_alpha();
            from_rgba(rotate_any(&to_rgba(img), degrees as f64, background, budget)?, had_alpha, background)
        }
    })
}

/// Clockwise rotation by any angle onto a canvas that holds the whole result, bilinear sampling.
fn rotate_any(src: &RgbaImage, degrees: f64, bg: Rgba, budget: &Budget) -> Result<RgbaImage> {
    let (w, h) = (src.width() as f64, src.height() as f64);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let nw = (w * cos.abs() + h * sin.abs()).ceil() as u32;
    let nh = (w * sin.abs() + h * cos.abs()).ceil() as u32;
    let (cx, cy, ncx, ncy) = (w / 2.0, h / 2.0, nw as f64 / 2.0, nh as f64 / 2.0);
    let mut out = RgbaImage::new(nw, nh);
    for (y, row) in out.enumerate_rows_mut() {
        if y % 64 == 0 {
            budget.check()?;
        }
        for (x, _, p) in row {
            let (dx, dy) = (x as f64 + 0.5 - ncx, y as f64 + 0.5 - ncy);
            let sx = dx * cos + dy * sin + cx - 0.5;
            let sy = -dx * sin + dy * cos + cy - 0.5;
            *p = sample_bilinear(src, sx, sy, bg);
        }
    }
    Ok(out)
}

fn sample_bilinear(src: &RgbaImage, x: f64, y: f64, bg: Rgba) -> Px<u8> {
    let (w, h) = (src.width() as i64, src.height() as i64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let at = |xi: i64, yi: i64| -> [f64; 4] {
        if xi < 0 || yi < 0 || xi >= w || yi >= h {
            bg.0.map(|c| c as f64)
        } else {
            src.get_pixel(xi as u32, yi as u32).0.map(|c| c as f64)
        }
    };
    let (a, b, c, d) = (at(x0, y0), at(x0 + 1, y0), at(x0, y0 + 1), at(x0 + 1, y0 + 1));
    let mut out = [0u8; 4];
    for i in 0..4 {
        let top = a[i] * (1.0 - fx) + b[i] * fx;
        let bottom = c[i] * (1.0 - fx) + d[i] * fx;
        out[i] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Px(out)
}

fn circle(img: DynamicImage, background: Rgba) -> DynamicImage {
    let had_alpha = img.color().has_alpha();
    let mut buf = to_rgba(img);
    let (w, h) = (buf.width() as f64, buf.height() as f64);
    let (cx, cy, r) = (w / 2.0, h / 2.0, w.min(h) / 2.0);
    for (x, y, p) in buf.enumerate_pixels_mut() {
        let d = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt();
        // one pixel of anti-aliasing at the edge
        let inside = (r - d + 0.5).clamp(0.0, 1.0);
        if inside < 1.0 {
            for i in 0..4 {
                p.0[i] = (p.0[i] as f64 * inside + background.0[i] as f64 * (1.0 - inside)).round() as u8;
            }
        }
    }
    from_rgba(buf, had_alpha, background)
}

fn border(img: DynamicImage, width: u32, color: Rgba, background: Rgba) -> DynamicImage {
    if width == 0 {
        return img;
    }
    let had_alpha = img.color().has_alpha();
    let src = to_rgba(img);
    let (w, h) = (src.width() + 2 * width, src.height() + 2 * width);
    let mut out = RgbaImage::from_pixel(w, h, Px(color.0));
    imageops::overlay(&mut out, &src, width as i64, width as i64);
    from_rgba(out, had_alpha, background)
}

/// Mask the corners outside quarter circles of `radius` (`None`: as round as the image allows),
/// with `blur` pixels of soft edge.
fn rounded_corners(img: DynamicImage, radius: Option<u32>, blur: f32, background: Rgba) -> DynamicImage {
    let had_alpha = img.color().has_alpha();
    let mut buf = to_rgba(img);
    let (w, h) = (buf.width() as f64, buf.height() as f64);
    let r = radius.map(f64::from).unwrap_or(f64::MAX).min(w.min(h) / 2.0);
    let soft = (blur as f64).max(0.5);
    for (x, y, p) in buf.enumerate_pixels_mut() {
        let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
        // distance past the corner circle, for pixels in a corner square only
        let cx = if px < r {
            r
        } else if px > w - r {
            w - r
        } else {
            continue;
        };
        let cy = if py < r {
            r
        } else if py > h - r {
            h - r
        } else {
            continue;
        };
        let outside = ((px - cx).hypot(py - cy) - r + soft / 2.0) / soft;
        let keep = 1.0 - outside.clamp(0.0, 1.0);
        if keep < 1.0 {
            for i in 0..4 {
                p.0[i] = (p.0[i] as f64 * keep + background.0[i] as f64 * (1.0 - keep)).round() as u8;
            }
        }
    }
    from_rgba(buf, had_alpha, background)
}

/// Blur or pixelate regions; with `oval`, only the ellipse inscribed in each rectangle.
fn partial(
    img: DynamicImage,
    rects: &[[u32; 4]],
    amount: f32,
    oval: bool,
    pixelated: bool,
    budget: &Budget,
) -> Result<DynamicImage> {
    let had_alpha = img.color().has_alpha();
    let mut out = to_rgba(img);
    for &[x, y, rw, rh] in rects {
        budget.check()?;
        let (w, h) = out.dimensions();
        if x >= w || y >= h {
            continue;
        }
        let (rw, rh) = (rw.min(w - x), rh.min(h - y));
        let region = DynamicImage::ImageRgba8(imageops::crop_imm(&out, x, y, rw, rh).to_image());
        let treated = if pixelated {
            pixelate(region, amount.max(2.0) as u32)?
        } else {
            super::blur::blur(region, amount.max(0.5), budget)?
        };
        let treated = treated.to_rgba8();
        let (cx, cy) = (rw as f64 / 2.0, rh as f64 / 2.0);
        for (tx, ty, p) in treated.enumerate_pixels() {
            let inside = !oval || {
                let (dx, dy) = ((tx as f64 + 0.5 - cx) / cx, (ty as f64 + 0.5 - cy) / cy);
                dx * dx + dy * dy <= 1.0
            };
            if inside {
                out.put_pixel(x + tx, y + ty, *p);
            }
        }
    }
    Ok(from_rgba(out, had_alpha, Rgba::WHITE))
}

/// Overlay `mark` at `size` percent of its own size, placed by `align` (keeping its alpha).
pub fn watermark(
    img: DynamicImage,
    mark: &DynamicImage,
    size: f32,
    align: Align,
    budget: &Budget,
) -> Result<DynamicImage> {
    let max_pixels = budget.limits.max_pixels;
    let scale = (size as f64 / 100.0).max(0.0);
    let (mw, mh) = ((mark.width() as f64 * scale).round() as u32, (mark.height() as f64 * scale).round() as u32);
    if mw == 0 || mh == 0 {
        return Ok(img);
    }
    check_output(mw as u64, mh as u64, max_pixels)?;
    let mark = DynamicImage::ImageRgba8(mark.to_rgba8());
    let mark =
        resize(&mark, ResizeGeometry { src: (0.0, 0.0, mark.width() as f64, mark.height() as f64), dst: (mw, mh) })?;
    let had_alpha = img.color().has_alpha();
    let mut base = to_rgba(img);
    let x = ((base.width() as f64 - mw as f64) * align.x).round() as i64;
    let y = ((base.height() as f64 - mh as f64) * align.y).round() as i64;
    imageops::overlay(&mut base, &mark.to_rgba8(), x, y);
    Ok(from_rgba(base, had_alpha, Rgba::WHITE))
}
