//! Perception queries and their ground-truth answers, computed from a [`Scene`] (never from
//! pixels).

use serde::{Deserialize, Serialize};

use super::scene::{Color, Object, Scene, Shape, Size};

/// A set of objects to count: those matching every given attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountQuery {
    /// Required shape, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Shape>,
    /// Required colour, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
}

impl CountQuery {
    /// Whether `object` has every attribute the query names.
    pub fn matches(&self, object: &Object) -> bool {
        self.kind.is_none_or(|k| k == object.kind) && self.color.is_none_or(|c| c == object.color)
    }

    /// Number of objects in `scene` matching the query.
    pub fn count(&self, scene: &Scene) -> usize {
        scene.objects.iter().filter(|o| self.matches(o)).count()
    }

    /// Plural noun phrase: `red circles`, `circles`, `red shapes` or `shapes`.
    pub fn noun_phrase(&self) -> String {
        let noun = self.kind.map_or("shape", Shape::name);
        match self.color {
            Some(c) => format!("{} {noun}s", c.name()),
            None => format!("{noun}s"),
        }
    }
}

/// A description meant to pick out exactly one object: its shape plus optional size and colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referent {
    /// Required size, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Required colour, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    /// Required shape.
    pub kind: Shape,
}

impl Referent {
    /// Whether `object` fits the description.
    pub fn matches(&self, object: &Object) -> bool {
        self.kind == object.kind
            && self.size.is_none_or(|s| s == object.size)
            && self.color.is_none_or(|c| c == object.color)
    }

    /// The single object of `scene` fitting the description; `None` when zero or several fit.
    pub fn resolve<'a>(&self, scene: &'a Scene) -> Option<&'a Object> {
        let mut fits = scene.objects.iter().filter(|o| self.matches(o));
        let first = fits.next()?;
        fits.next().is_none().then_some(first)
    }

    /// English noun phrase: `the large red circle`.
    pub fn phrase(&self) -> String {
        let mut words = vec!["the"];
        words.extend(self.size.map(Size::name));
        words.extend(self.color.map(Color::name));
        words.push(self.kind.name());
        words.join(" ")
    }

    /// The shortest description that picks out `scene.objects[index]` alone, trying in order
    /// shape; shape + colour; shape + size; shape + size + colour (the colour forms only when
    /// `with_color`). `None` when none is unique.
    pub fn shortest(scene: &Scene, index: usize, with_color: bool) -> Option<Referent> {
        let o = scene.objects.get(index)?;
        let candidates =
            [(None, None), (None, Some(o.color)), (Some(o.size), None), (Some(o.size), Some(o.color))];
        candidates
            .into_iter()
            .filter(|(_, color)| with_color || color.is_none())
            .map(|(size, color)| Referent { size, color, kind: o.kind })
            .find(|r| r.resolve(scene).is_some())
    }
}

/// The main direction from one object to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Smaller x.
    Left,
    /// Larger x.
    Right,
    /// Smaller y (image rows grow downwards).
    Above,
    /// Larger y.
    Below,
}

impl Direction {
    /// All directions.
    pub const ALL: [Direction; 4] = [Direction::Left, Direction::Right, Direction::Above, Direction::Below];

    /// English name (`left`).
    pub fn name(self) -> &'static str {
        match self {
            Direction::Left => "left",
            Direction::Right => "right",
            Direction::Above => "above",
            Direction::Below => "below",
        }
    }

    /// Where `subject` lies relative to `reference`, on the axis of larger displacement:
    /// with dx = x_s − x_r and dy = y_s − y_r, `left`/`right` by the sign of dx when
    /// |dx| ≥ |dy|, else `above`/`below` by the sign of dy.
    pub fn between(subject: &Object, reference: &Object) -> Direction {
        let dx = i64::from(subject.x) - i64::from(reference.x);
        let dy = i64::from(subject.y) - i64::from(reference.y);
        match (dx.abs() >= dy.abs(), dx < 0, dy < 0) {
            (true, true, _) => Direction::Left,
            (true, false, _) => Direction::Right,
            (false, _, true) => Direction::Above,
            (false, _, false) => Direction::Below,
        }
    }

    /// [`Direction::between`] when unambiguous to the eye: the larger displacement is at least
    /// twice the smaller.
    pub fn clearly_between(subject: &Object, reference: &Object) -> Option<Direction> {
        let dx = (i64::from(subject.x) - i64::from(reference.x)).abs();
        let dy = (i64::from(subject.y) - i64::from(reference.y)).abs();
        (dx.max(dy) >= 2 * dx.min(dy)).then(|| Direction::between(subject, reference))
    }
}

/// A multiple-choice perception question, answered from the scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PerceptionQuery {
    /// How many objects match; answer: the count.
    Count(CountQuery),
    /// Which colour the referred object has; answer: the colour name.
    ColorOf {
        /// The object asked about (described without colour).
        target: Referent,
    },
    /// Where one object lies relative to another; answer: a [`Direction`] name.
    Relation {
        /// The object whose position is asked.
        subject: Referent,
        /// The object it is compared with.
        reference: Referent,
    },
    /// Which object is the large one; answer: `<colour> <shape>` of the large objects.
    Largest,
}

impl PerceptionQuery {
    /// The correct option text for `scene`, or `None` when the scene does not determine one.
    ///
    /// Described objects need not be unique, only agree: the answer is the one shared by every
    /// object (pair, for relations) fitting the descriptions, `None` when none fits or they
    /// disagree; largest answers `<colour> <shape>` shared by every large object. Generated
    /// questions always describe exactly one object, so this only matters for perturbed scenes.
    pub fn truth(&self, scene: &Scene) -> Option<String> {
        let fits = |r: Referent| scene.objects.iter().filter(move |o| r.matches(o));
        match self {
            PerceptionQuery::Count(q) => Some(q.count(scene).to_string()),
            PerceptionQuery::ColorOf { target } => agreed(fits(*target).map(|o| o.color.name().to_string())),
            PerceptionQuery::Relation { subject, reference } => agreed(
                fits(*subject)
                    .flat_map(|s| fits(*reference).map(move |r| Direction::between(s, r).name().to_string())),
            ),
            PerceptionQuery::Largest => {
                agreed(scene.objects.iter().filter(|o| o.size == Size::Large).map(describe))
            }
        }
    }

    /// The question sentence.
    pub fn question(&self) -> String {
        match self {
            PerceptionQuery::Count(q) => format!("How many {} are there?", q.noun_phrase()),
            PerceptionQuery::ColorOf { target } => {
                format!("What color is {}?", target.phrase())
            }
            PerceptionQuery::Relation { subject, reference } => {
                format!("Relative to {}, where is {}?", reference.phrase(), subject.phrase())
            }
            PerceptionQuery::Largest => "Which object is the largest?".to_string(),
        }
    }
}

/// The value every item of `values` equals; `None` when empty or when two differ.
fn agreed(mut values: impl Iterator<Item = String>) -> Option<String> {
    let first = values.next()?;
    values.all(|v| v == first).then_some(first)
}

/// `<colour> <shape>`, the option text naming an object.
pub fn describe(object: &Object) -> String {
    format!("{} {}", object.color.name(), object.kind.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: Shape, color: Color, size: Size, x: u32, y: u32) -> Object {
        Object { kind, color, size, x, y }
    }

    fn scene(objects: Vec<Object>) -> Scene {
        Scene { width: 96, height: 96, background: [255; 3], objects, noise_pixels: 0, noise_seed: 0 }
    }

    #[test]
    fn counts_and_phrases() {
        let s = scene(vec![
            obj(Shape::Circle, Color::Red, Size::Small, 10, 10),
            obj(Shape::Circle, Color::Blue, Size::Large, 50, 10),
            obj(Shape::Square, Color::Red, Size::Small, 10, 50),
        ]);
        let q = |kind, color| CountQuery { kind, color };
        assert_eq!(q(Some(Shape::Circle), None).count(&s), 2);
        assert_eq!(q(None, Some(Color::Red)).count(&s), 2);
        assert_eq!(q(Some(Shape::Circle), Some(Color::Red)).count(&s), 1);
        assert_eq!(q(Some(Shape::Triangle), None).count(&s), 0);
        assert_eq!(q(None, Some(Color::Red)).noun_phrase(), "red shapes");
        assert_eq!(q(Some(Shape::Square), Some(Color::Red)).noun_phrase(), "red squares");
    }

    #[test]
    fn shortest_referents_are_unique_and_minimal() {
        let mut s = scene(vec![
            obj(Shape::Circle, Color::Red, Size::Small, 10, 10),
            obj(Shape::Circle, Color::Blue, Size::Large, 50, 10),
            obj(Shape::Square, Color::Red, Size::Small, 10, 50),
        ]);
        assert_eq!(Referent::shortest(&s, 2, true).unwrap().phrase(), "the square");
        assert_eq!(Referent::shortest(&s, 1, true).unwrap().phrase(), "the blue circle");
        let r = Referent::shortest(&s, 1, false).unwrap();
        assert_eq!(r.phrase(), "the large circle");
        assert_eq!(r.resolve(&s), Some(&s.objects[1]));
        s.objects.push(obj(Shape::Circle, Color::Red, Size::Large, 50, 50));
        s.objects.push(obj(Shape::Circle, Color::Green, Size::Small, 80, 80));
        // Small red circle: neither colour nor size alone singles it out; both do.
        assert_eq!(Referent::shortest(&s, 0, true).unwrap().phrase(), "the small red circle");
        assert_eq!(Referent::shortest(&s, 0, false), None);
        assert_eq!(Referent::shortest(&s, 1, false), None);
        assert_eq!(Referent::shortest(&s, 9, true), None);
    }

    #[test]
    fn directions_follow_the_dominant_axis() {
        let a = obj(Shape::Circle, Color::Red, Size::Small, 10, 40);
        let b = obj(Shape::Circle, Color::Red, Size::Small, 60, 50);
        assert_eq!(Direction::between(&a, &b), Direction::Left);
        assert_eq!(Direction::between(&b, &a), Direction::Right);
        assert_eq!(Direction::clearly_between(&a, &b), Some(Direction::Left));
        let c = obj(Shape::Circle, Color::Red, Size::Small, 20, 10);
        assert_eq!(Direction::between(&c, &a), Direction::Above);
        assert_eq!(Direction::between(&a, &c), Direction::Below);
        let d = obj(Shape::Circle, Color::Red, Size::Small, 40, 40);
        assert_eq!(Direction::clearly_between(&d, &c), None);
    }

    #[test]
    fn largest_needs_one_description() {
        let mut s = scene(vec![
            obj(Shape::Circle, Color::Red, Size::Small, 10, 10),
            obj(Shape::Square, Color::Green, Size::Large, 50, 50),
        ]);
        assert_eq!(PerceptionQuery::Largest.truth(&s).as_deref(), Some("green square"));
        s.objects[0].size = Size::Large;
        assert_eq!(PerceptionQuery::Largest.truth(&s), None);
        s.objects.clear();
        assert_eq!(PerceptionQuery::Largest.truth(&s), None);
    }

    #[test]
    fn described_objects_must_agree_not_be_unique() {
        let red = obj(Shape::Circle, Color::Red, Size::Small, 10, 10);
        let blue = obj(Shape::Square, Color::Blue, Size::Small, 60, 12);
        let mut s = scene(vec![red, red, blue]);
        let circle = Referent { size: None, color: None, kind: Shape::Circle };
        let square = Referent { kind: Shape::Square, ..circle };
        let color_of = PerceptionQuery::ColorOf { target: circle };
        let relation = PerceptionQuery::Relation { subject: circle, reference: square };
        assert_eq!(color_of.truth(&s).as_deref(), Some("red"));
        assert_eq!(relation.truth(&s).as_deref(), Some("left"));
        s.objects[1].color = Color::Green;
        s.objects[1].x = 90;
        assert_eq!(color_of.truth(&s), None);
        assert_eq!(relation.truth(&s), None);
        s.objects.retain(|o| o.kind == Shape::Square);
        assert_eq!(color_of.truth(&s), None);
        assert_eq!(relation.truth(&s), None);
    }
}
