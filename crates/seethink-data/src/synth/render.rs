//! Hand-rasterised rendering of a [`Scene`] to pixels and PNG bytes.

use image::{ImageFormat, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::scene::{Color, Object, Scene, Shape};
use crate::error::{DataError, Result};
use crate::task::ImageRef;

/// Renders `scene`: background, then `noise_pixels` single pixels of random palette colours at
/// random positions (from `noise_seed`), then every object as a filled shape on top.
///
/// A pixel belongs to an object when its offset (dx, dy) from the object's centre pixel
/// satisfies, with r the size's radius: circle dx² + dy² ≤ r²; square |dx|, |dy| ≤ ⌊r/√2⌋;
/// triangle: inside the upward equilateral triangle inscribed in the circle of radius r. Every
/// shape therefore lies inside its bounding circle, so objects placed apart never touch.
pub fn render(scene: &Scene) -> RgbImage {
    let mut image = RgbImage::from_pixel(scene.width, scene.height, Rgb(scene.background));
    let mut rng = ChaCha8Rng::seed_from_u64(scene.noise_seed);
    for _ in 0..scene.noise_pixels {
        let x = rng.random_range(0..scene.width);
        let y = rng.random_range(0..scene.height);
        let color = Color::ALL[rng.random_range(0..Color::ALL.len())];
        image.put_pixel(x, y, Rgb(color.rgb()));
    }
    for object in &scene.objects {
        draw(&mut image, object);
    }
    image
}

/// Encodes `image` as PNG bytes (deterministic for a given `image` crate version).
pub fn encode_png(image: &RgbImage) -> std::result::Result<Vec<u8>, image::ImageError> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png)?;
    Ok(bytes.into_inner())
}

/// The rendered, PNG-encoded `scene` as the in-memory image of task `id`.
pub(crate) fn png_image(scene: &Scene, id: &str) -> Result<ImageRef> {
    encode_png(&render(scene))
        .map(ImageRef::Bytes)
        .map_err(|source| DataError::Png { id: id.to_string(), source })
}

fn draw(image: &mut RgbImage, object: &Object) {
    let r = object.size.radius();
    let x0 = object.x.saturating_sub(r);
    let y0 = object.y.saturating_sub(r);
    let x1 = (object.x + r).min(image.width() - 1);
    let y1 = (object.y + r).min(image.height() - 1);
    for py in y0..=y1 {
        for px in x0..=x1 {
            let dx = f64::from(px) - f64::from(object.x);
            let dy = f64::from(py) - f64::from(object.y);
            if covers(object.kind, f64::from(r), dx, dy) {
                image.put_pixel(px, py, Rgb(object.color.rgb()));
            }
        }
    }
}

/// Whether offset (`dx`, `dy`) from the centre lies in `kind` with bounding radius `r`
/// (rules on [`render`]).
fn covers(kind: Shape, r: f64, dx: f64, dy: f64) -> bool {
    match kind {
        Shape::Circle => dx * dx + dy * dy <= r * r,
        Shape::Square => {
            let half = (r / std::f64::consts::SQRT_2).floor();
            dx.abs() <= half && dy.abs() <= half
        }
        Shape::Triangle => {
            // Vertices (0, -r), (-r·√3/2, r/2), (r·√3/2, r/2); inside = same side of all edges.
            let h = r * 3f64.sqrt() / 2.0;
            let v = [(0.0, -r), (h, r / 2.0), (-h, r / 2.0)];
            (0..3).all(|i| {
                let (ax, ay) = v[i];
                let (bx, by) = v[(i + 1) % 3];
                (bx - ax) * (dy - ay) - (by - ay) * (dx - ax) >= 0.0
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scene::Size;

    fn scene_with(kind: Shape, size: Size) -> Scene {
        Scene {
            width: 40,
            height: 40,
            background: [255, 255, 255],
            objects: vec![Object { kind, color: Color::Blue, size, x: 20, y: 20 }],
            noise_pixels: 0,
            noise_seed: 0,
        }
    }

    fn painted(image: &RgbImage) -> usize {
        image.pixels().filter(|p| p.0 == Color::Blue.rgb()).count()
    }

    #[test]
    fn shapes_cover_their_centre_and_stay_in_the_bounding_circle() {
        for kind in Shape::ALL {
            for size in [Size::Small, Size::Large] {
                let scene = scene_with(kind, size);
                let image = render(&scene);
                assert_eq!(image.get_pixel(20, 20).0, Color::Blue.rgb());
                let r = i64::from(size.radius());
                for (x, y, p) in image.enumerate_pixels() {
                    if p.0 == Color::Blue.rgb() {
                        let (dx, dy) = (i64::from(x) - 20, i64::from(y) - 20);
                        assert!(dx * dx + dy * dy <= r * r, "{kind:?} {size:?} at {x},{y}");
                    }
                }
            }
        }
    }

    #[test]
    fn areas_order_as_expected() {
        let area = |kind, size| painted(&render(&scene_with(kind, size)));
        for kind in Shape::ALL {
            assert!(area(kind, Size::Large) > 3 * area(kind, Size::Small));
        }
        // Circle ⊃ square and circle ⊃ triangle, both inscribed.
        assert!(area(Shape::Circle, Size::Large) > area(Shape::Square, Size::Large));
        assert!(area(Shape::Square, Size::Large) > area(Shape::Triangle, Size::Large));
        // A triangle is not a square: its top row is narrower than its bottom row.
        let image = render(&scene_with(Shape::Triangle, Size::Large));
        let row = |y| (0..40).filter(|&x| image.get_pixel(x, y).0 == Color::Blue.rgb()).count();
        assert!(row(10) < row(25));
    }

    #[test]
    fn noise_pixels_are_deterministic_and_counted() {
        let mut scene = scene_with(Shape::Circle, Size::Small);
        scene.objects.clear();
        scene.noise_pixels = 30;
        scene.noise_seed = 9;
        let a = render(&scene);
        assert_eq!(a, render(&scene));
        let coloured = a.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(coloured > 20 && coloured <= 30, "{coloured}");
        let png = encode_png(&a).unwrap();
        assert_eq!(png, encode_png(&render(&scene)).unwrap());
        assert_eq!(image::load_from_memory(&png).unwrap().to_rgb8(), a);
    }
}
