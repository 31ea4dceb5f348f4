//! Caption tasks: "describe the image in detail" answered with a complete, deterministic
//! description of the scene ground truth, for the ablation that trains the perception stage by
//! supervised fine-tuning on captions instead of by RL.
//!
//! A caption lists every object in reading order with its size, colour, shape and a coarse
//! position on a 3×3 grid of the canvas (see [`caption`]); distractor noise pixels are not
//! mentioned.

use std::collections::HashSet;

use serde_json::json;

use super::scene::{Object, Scene};
use crate::error::{DataError, Result};
use crate::task::{Capability, Task};

/// The `source` of caption tasks.
pub const CAPTION_SOURCE: &str = "captions";

/// The prompt of caption tasks: the image marker ([`crate::task::IMAGE_MARKER`]) on its own
/// line, then the instruction.
pub const CAPTION_PROMPT: &str = "<image>\nDescribe the image in detail.";

/// Names of the grid rows, top to bottom.
const ROWS: [&str; 3] = ["top", "middle", "bottom"];
/// Names of the grid columns, left to right.
const COLUMNS: [&str; 3] = ["left", "centre", "right"];

/// The grid cell of `coordinate` along an axis of `extent` pixels: ⌊3·coordinate / extent⌋,
/// clamped to 2 (for coordinates outside the canvas, which generated scenes never have).
fn band(coordinate: u32, extent: u32) -> usize {
    let cell = u64::from(coordinate) * 3 / u64::from(extent.max(1));
    cell.min(2) as usize
}

/// The position phrase of `object`: `in the centre` for the middle cell, else
/// `at the <row> <column>` (`at the top left`, `at the middle right`, `at the bottom centre`).
fn position(object: &Object, scene: &Scene) -> String {
    let row = band(object.y, scene.height);
    let column = band(object.x, scene.width);
    if (row, column) == (1, 1) {
        "in the centre".to_string()
    } else {
        format!("at the {} {}", ROWS[row], COLUMNS[column])
    }
}

/// A complete description of `scene`, written from its ground truth alone:
/// `"<n> objects: a <size> <colour> <shape> <position>, …, a <size> <colour> <shape> <position>."`
/// (`"1 object: …"` for one object, `"0 objects."` for none), e.g.
/// `"3 objects: a large red circle at the top left, a small blue square in the centre, a small
/// green triangle at the bottom right."`
///
/// Position is the cell of the object's centre on a 3×3 grid of the canvas: row
/// r = min(⌊3y / height⌋, 2) named top / middle / bottom, column c = min(⌊3x / width⌋, 2) named
/// left / centre / right; the phrase is `in the centre` for (r, c) = (1, 1), else
/// `at the <row> <column>`.
///
/// Reading order: objects sorted by row band r (top first), then by centre column x (left
/// first), then by centre row y (top first); objects equal in all three keep their order in
/// [`Scene::objects`]. Noise pixels are not mentioned.
pub fn caption(scene: &Scene) -> String {
    let mut objects: Vec<&Object> = scene.objects.iter().collect();
    objects.sort_by_key(|o| (band(o.y, scene.height), o.x, o.y));
    let phrases: Vec<String> = objects
        .iter()
        .map(|o| format!("a {} {} {} {}", o.size.name(), o.color.name(), o.kind.name(), position(o, scene)))
        .collect();
    match phrases.len() {
        0 => "0 objects.".to_string(),
        1 => format!("1 object: {}.", phrases[0]),
        n => format!("{n} objects: {}.", phrases.join(", ")),
    }
}

/// The scene stored in `task.meta["scene"]`: `None` when the key is absent or `null`, an error
/// naming the task when it does not deserialise as a [`Scene`].
fn meta_scene(task: &Task) -> Result<Option<Scene>> {
    match task.meta.get("scene") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| DataError::Meta { id: task.id.clone(), reason: format!("malformed scene: {e}") }),
    }
}

/// One caption task per task of `tasks` that carries a scene in `meta.scene` (tasks without
/// one are skipped), in input order: id `<task id>-caption`, the source task's images and
/// level, prompt [`CAPTION_PROMPT`], answer [`caption`] of the scene, capability
/// [`Capability::Perception`], no difficulty, source [`CAPTION_SOURCE`] and meta
/// `{"scene": <scene>, "parent": <task id>}`. A task whose id repeats an earlier one's yields
/// no second caption task.
///
/// Fails with [`DataError::Meta`] naming the task when its `meta.scene` is present but is not a
/// valid scene.
pub fn caption_tasks(tasks: &[Task]) -> Result<Vec<Task>> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for task in tasks {
        let Some(scene) = meta_scene(task)? else { continue };
        let id = format!("{}-caption", task.id);
        if !seen.insert(id.clone()) {
            continue;
        }
        out.push(Task {
            id,
            prompt: CAPTION_PROMPT.to_string(),
            images: task.images.clone(),
            answer: caption(&scene),
            capability: Capability::Perception,
            level: task.level,
            pass_rate: None,
            source: CAPTION_SOURCE.to_string(),
            meta: json!({ "scene": scene, "parent": task.id }),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scene::{Color, Shape, Size};
    use crate::synth::{generate, SynthConfig};
    use crate::task::IMAGE_MARKER;

    fn object(kind: Shape, color: Color, size: Size, x: u32, y: u32) -> Object {
        Object { kind, color, size, x, y }
    }

    fn scene(width: u32, height: u32, objects: Vec<Object>) -> Scene {
        Scene { width, height, background: [255; 3], objects, noise_pixels: 40, noise_seed: 7 }
    }

    #[test]
    fn prompt_is_marker_then_instruction() {
        assert_eq!(CAPTION_PROMPT, format!("{IMAGE_MARKER}\nDescribe the image in detail."));
        assert_eq!(crate::task::count_image_markers(CAPTION_PROMPT), 1);
    }

    #[test]
    fn hand_built_scenes_give_exact_captions() {
        use Color::*;
        use Shape::*;
        use Size::*;
        // 96×96 canvas: cells are [0, 32), [32, 64), [64, 96) on both axes. Given in scrambled
        // order; reading order is by row band, then x (then y).
        let s = scene(
            96,
            96,
            vec![
                object(Triangle, Green, Small, 80, 90),  // bottom right
                object(Square, Blue, Small, 48, 48),     // centre
                object(Circle, Red, Large, 20, 25),      // top left, x = 20
                object(Square, Yellow, Small, 10, 31),   // top left, x = 10: before the red circle
                object(Circle, Purple, Small, 64, 32),   // middle right (3·64/96 = 2, 3·32/96 = 1)
                object(Triangle, Orange, Large, 31, 64), // bottom left (3·31/96 = 0, 3·64/96 = 2)
                object(Circle, Green, Small, 90, 5),     // top right
                object(Square, Red, Large, 40, 63),      // middle centre → in the centre
                object(Circle, Blue, Small, 10, 50),     // middle left
                object(Triangle, Purple, Small, 50, 70), // bottom centre
                object(Square, Orange, Small, 50, 10),   // top centre
            ],
        );
        assert_eq!(
            caption(&s),
            "11 objects: a small yellow square at the top left, a large red circle at the top left, \
             a small orange square at the top centre, a small green circle at the top right, \
             a small blue circle at the middle left, a large red square in the centre, \
             a small blue square in the centre, a small purple circle at the middle right, \
             a large orange triangle at the bottom left, a small purple triangle at the bottom centre, \
             a small green triangle at the bottom right."
        );
        // Non-square canvas: columns use the width, rows the height.
        let wide =
            scene(150, 60, vec![object(Triangle, Blue, Small, 75, 30), object(Circle, Red, Large, 99, 19)]);
        assert_eq!(
            caption(&wide),
            "2 objects: a large red circle at the top centre, a small blue triangle in the centre."
        );
        let one = scene(128, 128, vec![object(Triangle, Yellow, Large, 100, 100)]);
        assert_eq!(caption(&one), "1 object: a large yellow triangle at the bottom right.");
        assert_eq!(caption(&scene(96, 96, vec![])), "0 objects.");
    }

    /// The task ids are 1:1 with caption ids and dedup keeps only the first of a repeated id.
    #[test]
    fn generated_tasks_get_complete_captions() {
        let mut tasks: Vec<Task> =
            generate(&SynthConfig::uniform(20), 3).unwrap().into_iter().map(|t| t.task).collect();
        let with_scene: Vec<&Task> = tasks.iter().filter(|t| t.meta.get("scene").is_some()).collect();
        assert!(with_scene.len() >= 40, "{} tasks with a scene", with_scene.len());
        assert!(with_scene.len() < tasks.len(), "text tasks must be skipped");
        let captions = caption_tasks(&tasks).unwrap();
        assert_eq!(captions.len(), with_scene.len());
        let mut ids = HashSet::new();
        for (c, source) in captions.iter().zip(&with_scene) {
            assert!(ids.insert(c.id.clone()), "duplicate id {}", c.id);
            assert_eq!(c.id, format!("{}-caption", source.id));
            assert_eq!(c.images, source.images);
            assert!(!c.images.is_empty());
            assert_eq!(c.prompt, CAPTION_PROMPT);
            assert_eq!(c.capability, Capability::Perception);
            assert_eq!(c.source, CAPTION_SOURCE);
            assert_eq!(c.level, source.level);
            assert_eq!(c.pass_rate, None);
            assert_eq!(c.meta["parent"], source.id.as_str());
            assert_eq!(c.meta["scene"], source.meta["scene"]);
            let s: Scene = serde_json::from_value(source.meta["scene"].clone()).unwrap();
            assert_eq!(c.answer, caption(&s));
            let n = s.objects.len();
            let noun = if n == 1 { "object" } else { "objects" };
            assert!(c.answer.starts_with(&format!("{n} {noun}: ")), "{}", c.answer);
            assert!(!c.answer.contains("noise") && !c.answer.contains("pixel"), "{}", c.answer);
            // Every object is named: each "<size> <color> <shape>" phrase occurs as often as
            // objects of that description, and there are n phrases in all.
            let mut total = 0;
            for o in &s.objects {
                let phrase = format!("{} {} {}", o.size.name(), o.color.name(), o.kind.name());
                let expected = s
                    .objects
                    .iter()
                    .filter(|p| (p.size, p.color, p.kind) == (o.size, o.color, o.kind))
                    .count();
                assert_eq!(c.answer.matches(&phrase).count(), expected, "{phrase} in {}", c.answer);
            }
            for size in [Size::Small, Size::Large] {
                for color in Color::ALL {
                    for kind in Shape::ALL {
                        let phrase = format!("{} {} {}", size.name(), color.name(), kind.name());
                        total += c.answer.matches(&phrase).count();
                    }
                }
            }
            assert_eq!(total, n, "{}", c.answer);
        }
        // A repeated task id yields a single caption task.
        let first = with_scene[0].clone();
        tasks.push(first);
        assert_eq!(caption_tasks(&tasks).unwrap().len(), captions.len());
    }

    #[test]
    fn malformed_scene_names_the_task() {
        let tasks = generate(&SynthConfig::uniform(1), 0).unwrap();
        let mut task = tasks.into_iter().map(|t| t.task).find(|t| t.meta.get("scene").is_some()).unwrap();
        task.id = "broken-17".into();
        task.meta["scene"] = json!({ "width": "wide", "objects": 3 });
        let err = caption_tasks(std::slice::from_ref(&task)).unwrap_err();
        assert!(matches!(err, DataError::Meta { ref id, .. } if id == "broken-17"), "{err:?}");
        assert!(err.to_string().contains("broken-17"), "{err}");
        // No scene at all is skipped, not an error.
        task.meta = json!({ "other": 1 });
        assert!(caption_tasks(&[task]).unwrap().is_empty());
    }
}
