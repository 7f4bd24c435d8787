//! `ascii`: the image as HTML text art, answered instead of an image. Not a step: the job's
//! answer ([`crate::plan::image::Answer::Ascii`]), rendered from the image its steps made.

use super::pixels::luma;
use super::resize::{resample, ResizeGeometry};
use crate::pipeline::error::Result;
use crate::plan::image::Ascii;
use crate::plan::Rgba;
use image::{DynamicImage, GenericImageView};

/// From dense to sparse: dark pixels take dense characters (for dark text on a light page);
/// `reverse` turns the ramp round. None of them needs escaping in HTML.
const RAMP: &[u8] = b"@%#*+=-:. ";

/// `size` characters a line; lines are half as many per pixel (characters are about twice as
/// tall as wide). With `colored`, each character is drawn in its pixel's colour.
pub fn html(img: &DynamicImage, spec: &Ascii) -> Result<String> {
    let (w, h) = img.dimensions();
    let cols = spec.size.clamp(1, w.max(1));
    let rows = ((cols as f64 * h as f64 / w as f64 / 2.0).round() as u32).max(1);
    let flat = DynamicImage::ImageRgb8(flatten(img, spec.background));
    let small = resample(&flat, ResizeGeometry::whole(w, h, (cols, rows)))?.to_rgb8();
    let mut text = String::with_capacity((rows * cols * if spec.colored { 40 } else { 1 } + rows) as usize);
    for y in 0..rows {
        for x in 0..cols {
            let [r, g, b] = small.get_pixel(x, y).0;
            let mut at = luma(r, g, b) as usize * RAMP.len() / 256;
            if spec.reverse {
                at = RAMP.len() - 1 - at;
            }
            let c = RAMP[at] as char;
            if spec.colored {
                text.push_str(&format!("<span style=\"color:{}\">{c}</span>", hex(Rgba([r, g, b, 255]))));
            } else {
                text.push(c);
            }
        }
        text.push('\n');
    }
    Ok(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ascii</title></head>\
         <body style=\"margin:0;background:{}\"><pre style=\"color:{};font-family:monospace;font-size:8px;\
         line-height:1\">\n{text}</pre></body></html>\n",
        hex(spec.background),
        hex(spec.foreground),
    ))
}

/// The image over `background` (transparent parts show the page's colour).
fn flatten(img: &DynamicImage, background: Rgba) -> image::RgbImage {
    let mut out = image::RgbImage::new(img.width(), img.height());
    for ((_, _, p), q) in img.pixels().zip(out.pixels_mut()) {
        let a = p.0[3] as u32;
        q.0 = [0, 1, 2].map(|c| ((p.0[c] as u32 * a + background.0[c] as u32 * (255 - a) + 127) / 255) as u8);
    }
    out
}

/// A CSS colour: `#rrggbb`, or `rgba(…)` when not opaque.
fn hex(Rgba([r, g, b, a]): Rgba) -> String {
    if a == 255 {
        format!("#{r:02x}{g:02x}{b:02x}")
    } else {
        format!("rgba({r},{g},{b},{:.3})", a as f64 / 255.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn spec() -> Ascii {
        Ascii { foreground: Rgba::BLACK, background: Rgba::WHITE, colored: false, size: 20, reverse: false }
    }

    /// Black left half, white right half, 200×100.
    fn halves() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(200, 100, |x, _| Rgb([if x < 100 { 0 } else { 255 }; 3])))
    }

    fn lines(html: &str) -> Vec<String> {
        let pre = &html[html.find("<pre").unwrap()..html.find("</pre>").unwrap()];
        pre.lines().skip(1).map(str::to_string).collect()
    }

    #[test]
    fn dark_pixels_are_dense_characters_and_the_shape_follows_the_size() {
        let out = html(&halves(), &spec()).unwrap();
        assert!(out.starts_with("<!DOCTYPE html>") && out.contains("background:#ffffff"));
        let rows = lines(&out);
        assert_eq!(rows.len(), 5, "20 columns of a 2:1 image, characters twice as tall");
        for row in &rows {
            assert_eq!(row.len(), 20);
            assert!(row.starts_with("@@@@@@@@") && row.ends_with("        "), "{row:?}");
        }
        let reversed = lines(&html(&halves(), &Ascii { reverse: true, ..spec() }).unwrap());
        assert!(reversed[0].starts_with("        ") && reversed[0].ends_with("@@@@@@@@"));
    }

    #[test]
    fn colored_characters_carry_their_pixel_colour() {
        let red = DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 40, Rgb([255, 0, 0])));
        let out = html(&red, &Ascii { colored: true, size: 10, ..spec() }).unwrap();
        assert_eq!(out.matches("<span style=\"color:#ff0000\">").count(), 10 * 5);
    }
}
