//! Scenes of coloured shapes: the ground truth every image-based synthetic task is built on.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Highest level of the image-based families.
pub const MAX_SCENE_LEVEL: u32 = 3;

/// Minimum free pixels between the bounding circles of two objects.
const GAP: u32 = 3;
/// Minimum free pixels between an object's bounding circle and the canvas border.
const MARGIN: u32 = 2;
/// Placement attempts per object before the whole scene is restarted.
const ATTEMPTS_PER_OBJECT: usize = 200;
/// Whole-scene restarts before generation gives up.
const SCENE_RESTARTS: usize = 1000;

/// The kind of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A filled disc.
    Circle,
    /// A filled axis-aligned square.
    Square,
    /// A filled equilateral triangle pointing up.
    Triangle,
}

impl Shape {
    /// All shapes.
    pub const ALL: [Shape; 3] = [Shape::Circle, Shape::Square, Shape::Triangle];

    /// Singular English name (`circle`).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
        }
    }
}

/// The colour of an object; each has a distinct, saturated RGB value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Color {
    /// RGB (220, 30, 30).
    Red,
    /// RGB (30, 160, 50).
    Green,
    /// RGB (30, 70, 220).
    Blue,
    /// RGB (235, 205, 20).
    Yellow,
    /// RGB (140, 50, 180).
    Purple,
    /// RGB (250, 130, 20).
    Orange,
}

impl Color {
    /// All colours.
    pub const ALL: [Color; 6] =
        [Color::Red, Color::Green, Color::Blue, Color::Yellow, Color::Purple, Color::Orange];

    /// English name (`red`).
    pub fn name(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::Green => "green",
            Color::Blue => "blue",
            Color::Yellow => "yellow",
            Color::Purple => "purple",
            Color::Orange => "orange",
        }
    }

    /// The RGB value used when rendering.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Color::Red => [220, 30, 30],
            Color::Green => [30, 160, 50],
            Color::Blue => [30, 70, 220],
            Color::Yellow => [235, 205, 20],
            Color::Purple => [140, 50, 180],
            Color::Orange => [250, 130, 20],
        }
    }
}

/// The size class of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// Bounding radius 7 px.
    Small,
    /// Bounding radius 14 px.
    Large,
}

impl Size {
    /// English name (`small`).
    pub fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }

    /// Radius in pixels of the circle every shape of this size is inscribed in.
    pub fn radius(self) -> u32 {
        match self {
            Size::Small => 7,
            Size::Large => 14,
        }
    }
}

/// One shape in a scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    /// Which shape.
    pub kind: Shape,
    /// Fill colour.
    pub color: Color,
    /// Size class.
    pub size: Size,
    /// Centre column in pixels.
    pub x: u32,
    /// Centre row in pixels (0 = top).
    pub y: u32,
}

/// A canvas with non-overlapping objects, plus the recipe of its distractor noise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scene {
    /// Canvas width in pixels.
    pub width: u32,
    /// Canvas height in pixels.
    pub height: u32,
    /// Background RGB.
    pub background: [u8; 3],
    /// The objects, in placement order.
    pub objects: Vec<Object>,
    /// Number of single distractor pixels drawn on the background.
    pub noise_pixels: u32,
    /// Seed of the distractor pixels' positions and colours.
    pub noise_seed: u64,
}

/// Per-level scene parameters.
struct Spec {
    canvas: u32,
    min_objects: usize,
    max_objects: usize,
    noise_pixels: u32,
    large_probability: f64,
}

/// The parameters of `level`, tabulated on [`Scene::generate`].
fn spec(level: u32) -> Result<Spec> {
    let spec = match level {
        1 => Spec { canvas: 96, min_objects: 2, max_objects: 4, noise_pixels: 0, large_probability: 0.4 },
        2 => Spec { canvas: 128, min_objects: 4, max_objects: 6, noise_pixels: 40, large_probability: 0.35 },
        3 => Spec { canvas: 128, min_objects: 7, max_objects: 9, noise_pixels: 120, large_probability: 0.3 },
        _ => return Err(DataError::Config(format!("scene level {level} is outside 1..={MAX_SCENE_LEVEL}"))),
    };
    Ok(spec)
}

/// The scenes of the first look, a size curriculum before the benchmark's scenes, on a 64×64
/// canvas (the sandbox's largest image side, so never scaled down), white, no noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Look {
    /// One large object.
    One,
    /// Two or three objects, each large with probability 0.4: at this canvas, objects about 1.5×
    /// (large) and 2× (small) the size level 1's objects have once its 96×96 image is scaled to
    /// 64×64.
    Few,
}

impl Look {
    /// The looks in curriculum order.
    pub const ALL: [Look; 2] = [Look::One, Look::Few];

    /// Lower-case name (`one`).
    pub fn name(self) -> &'static str {
        match self {
            Look::One => "one",
            Look::Few => "few",
        }
    }

    fn spec(self) -> Spec {
        let (min_objects, max_objects, large_probability) = match self {
            Look::One => (1, 1, 1.0),
            Look::Few => (2, 3, 0.4),
        };
        Spec { canvas: 64, min_objects, max_objects, noise_pixels: 0, large_probability }
    }
}

impl Scene {
    /// Generates a scene of the given level: objects get uniform kinds and colours, sizes by a per-level probability of
    /// being large, and uniform positions, redrawn until every pair of bounding circles is at
    /// least 3 px apart and 2 px inside the canvas.
    ///
    /// Level 1: 96×96, 2–4 objects, white, no noise. Level 2: 128×128, 4–6 objects, light
    /// grey, 40 noise pixels. Level 3: 128×128, 7–9 objects, light grey, 120 noise pixels.
    pub fn generate(level: u32, rng: &mut impl Rng) -> Result<Scene> {
        Scene::from_spec(&spec(level)?, rng)
    }

    /// Generates a scene of the first look `look`, drawn as [`Scene::generate`] draws its.
    pub fn first_look(look: Look, rng: &mut impl Rng) -> Result<Scene> {
        Scene::from_spec(&look.spec(), rng)
    }

    /// A scene of `spec`: the object count, a white background without noise (else light grey),
    /// the noise seed, then placements (rules on [`Scene::generate`]).
    fn from_spec(spec: &Spec, rng: &mut impl Rng) -> Result<Scene> {
        let n = rng.random_range(spec.min_objects..=spec.max_objects);
        let background = if spec.noise_pixels == 0 {
            [255, 255, 255]
        } else {
            let g = rng.random_range(225..=250);
            [g, g, g]
        };
        let noise_seed = rng.random();
        for _ in 0..SCENE_RESTARTS {
            if let Some(objects) = place_objects(spec, n, rng) {
                return Ok(Scene {
                    width: spec.canvas,
                    height: spec.canvas,
                    background,
                    objects,
                    noise_pixels: spec.noise_pixels,
                    noise_seed,
                });
            }
        }
        Err(DataError::Config(format!("could not place {n} objects on a {0}×{0} canvas", spec.canvas)))
    }
}

/// One attempt at placing `n` objects; `None` when some object found no free spot.
fn place_objects(spec: &Spec, n: usize, rng: &mut impl Rng) -> Option<Vec<Object>> {
    let mut objects: Vec<Object> = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = Shape::ALL[rng.random_range(0..Shape::ALL.len())];
        let color = Color::ALL[rng.random_range(0..Color::ALL.len())];
        let size = if rng.random_bool(spec.large_probability) { Size::Large } else { Size::Small };
        let lo = size.radius() + MARGIN;
        let hi = spec.canvas - 1 - lo;
        let spot = (0..ATTEMPTS_PER_OBJECT)
            .map(|_| (rng.random_range(lo..=hi), rng.random_range(lo..=hi)))
            .find(|&(x, y)| objects.iter().all(|o| apart(o, size, x, y)))?;
        objects.push(Object { kind, color, size, x: spot.0, y: spot.1 });
    }
    Some(objects)
}

/// Whether an object of `size` centred at (`x`, `y`) keeps [`GAP`] pixels from `other`:
/// distance between centres ≥ r₁ + r₂ + GAP.
fn apart(other: &Object, size: Size, x: u32, y: u32) -> bool {
    let dx = i64::from(other.x) - i64::from(x);
    let dy = i64::from(other.y) - i64::from(y);
    let min = i64::from(other.size.radius() + size.radius() + GAP);
    dx * dx + dy * dy >= min * min
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn scenes_respect_their_level() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for level in 1..=MAX_SCENE_LEVEL {
            let s = spec(level).unwrap();
            for _ in 0..100 {
                let scene = Scene::generate(level, &mut rng).unwrap();
                assert_eq!((scene.width, scene.height), (s.canvas, s.canvas));
                let n = scene.objects.len();
                assert!((s.min_objects..=s.max_objects).contains(&n));
                for (i, a) in scene.objects.iter().enumerate() {
                    let r = a.size.radius() + MARGIN;
                    assert!(a.x >= r && a.x + r < scene.width);
                    assert!(a.y >= r && a.y + r < scene.height);
                    for b in &scene.objects[i + 1..] {
                        assert!(apart(a, b.size, b.x, b.y), "{a:?} overlaps {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn unknown_level_is_an_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let err = Scene::generate(4, &mut rng).unwrap_err();
        assert!(err.to_string().contains("scene level 4"), "{err}");
        assert!(Scene::generate(0, &mut rng).is_err());
    }

    #[test]
    fn colours_are_distinct() {
        for (i, a) in Color::ALL.iter().enumerate() {
            for b in &Color::ALL[i + 1..] {
                assert_ne!(a.rgb(), b.rgb());
            }
        }
    }
}
