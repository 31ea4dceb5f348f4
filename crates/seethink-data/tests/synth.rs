//! The synthetic benchmark: determinism, ground-truth answers, option sanity, difficulty by
//! level, and the on-disk format.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use seethink_data::synth::oracle::{answer_from_ground_truth, PerceptionNoise};
use seethink_data::synth::perception::{first_look_tasks, PerceptionMeta, OPTION_LETTERS};
use seethink_data::synth::query::PerceptionQuery;
use seethink_data::synth::render::render;
use seethink_data::synth::scene::Look;
use seethink_data::synth::text_reasoning::TextMeta;
use seethink_data::synth::visual_reasoning::{subquestion_tasks, VisualMeta};
use seethink_data::synth::{
    generate, write_benchmark, AnswerStyle, FamilySpec, SynthConfig, SynthTask, ANSWER_SUFFIX, MCQ_SUFFIX,
};
use seethink_data::{load_jsonl, Capability, ImageRef, JsonlKeys, Task, IMAGE_MARKER};

fn family(capability: Capability, count: usize, min_level: u32, max_level: u32) -> SynthConfig {
    let none = FamilySpec { count: 0, min_level: 1, max_level: 1 };
    let spec = FamilySpec { count, min_level, max_level };
    let mut config = SynthConfig::uniform(0);
    (config.perception, config.text_reasoning, config.visual_reasoning) = (none, none, none);
    match capability {
        Capability::Perception => config.perception = spec,
        Capability::TextReasoning => config.text_reasoning = spec,
        Capability::VisualReasoning => config.visual_reasoning = spec,
    }
    config
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir.join("images")).unwrap() {
        let entry = entry.unwrap();
        out.insert(entry.file_name().to_string_lossy().into_owned(), fs::read(entry.path()).unwrap());
    }
    out.insert("tasks.jsonl".into(), fs::read(dir.join("tasks.jsonl")).unwrap());
    out
}

/// Everything of a task but its id and source, which name the seed.
fn content(t: &SynthTask) -> (String, String, serde_json::Value, Vec<ImageRef>) {
    (t.task.prompt.clone(), t.task.answer.clone(), t.task.meta.clone(), t.task.images.clone())
}

#[test]
fn same_seed_same_bytes_different_seed_different_tasks() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let summary = write_benchmark(a.path(), 12, 7).unwrap();
    write_benchmark(b.path(), 12, 7).unwrap();
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert_eq!(fa.len(), 1 + 24, "one PNG per image task plus tasks.jsonl");
    assert_eq!(fa, fb);
    assert_eq!(summary.images_written, 24);
    let totals: Vec<(Capability, Option<u32>, usize)> =
        summary.counts.iter().map(|c| (c.capability, c.level, c.tasks)).collect();
    assert_eq!(totals.len(), 9);
    assert!(totals.iter().all(|&(_, _, n)| n == 4));

    let config = SynthConfig::uniform(40);
    let x = generate(&config, 7).unwrap();
    let y = generate(&config, 8).unwrap();
    assert_eq!(x, generate(&config, 7).unwrap());
    let differing = x.iter().zip(&y).filter(|(p, q)| content(p) != content(q)).count();
    assert!(differing >= 115, "only {differing} of 120 tasks differ");
    let png = |t: &SynthTask| match &t.task.images[..] {
        [ImageRef::Bytes(b)] => b.clone(),
        other => panic!("{other:?}"),
    };
    let image_tasks = x.iter().zip(&y).filter(|(p, _)| p.scene.is_some());
    assert!(image_tasks.clone().count() == 80);
    assert!(image_tasks.filter(|(p, q)| png(p) == png(q)).count() <= 2);
}

#[test]
fn tasks_do_not_depend_on_other_families_counts() {
    let small = generate(&SynthConfig::uniform(3), 11).unwrap();
    let large = generate(&SynthConfig::uniform(6), 11).unwrap();
    for t in &small {
        assert!(large.contains(t), "{} changed", t.task.id);
    }
}

#[test]
fn stored_answers_equal_ground_truth_for_every_family() {
    let tasks = generate(&SynthConfig::uniform(240), 2024).unwrap();
    let mut per_family = BTreeMap::new();
    for t in &tasks {
        *per_family.entry(t.task.capability).or_insert(0) += 1;
        assert_eq!(answer_from_ground_truth(&t.task, None).unwrap(), t.task.answer, "{}", t.task.id);
    }
    assert!(per_family.values().all(|&n| n >= 200), "{per_family:?}");
}

#[test]
fn perception_options_are_distinct_with_exactly_one_correct() {
    let tasks = generate(&family(Capability::Perception, 600, 1, 3), 5).unwrap();
    let mut types = BTreeMap::new();
    for t in &tasks {
        let meta: PerceptionMeta = serde_json::from_value(t.task.meta.clone()).unwrap();
        assert_eq!(t.scene.as_ref(), Some(&meta.scene));
        assert_eq!(meta.options.len(), 4);
        let truth = meta.query.truth(&meta.scene).unwrap();
        let correct: Vec<&str> =
            meta.options.iter().zip(OPTION_LETTERS).filter(|(o, _)| **o == truth).map(|(_, l)| l).collect();
        assert_eq!(correct, [t.task.answer.as_str()], "{}", t.task.id);
        for (i, a) in meta.options.iter().enumerate() {
            assert!(!meta.options[i + 1..].contains(a), "{:?}", meta.options);
            assert!(t.task.prompt.contains(&format!("\n{}. {a}\n", OPTION_LETTERS[i])));
        }
        assert!(t.task.prompt.starts_with(&format!("{IMAGE_MARKER}\n")));
        assert!(t.task.prompt.ends_with(MCQ_SUFFIX));
        // Counts checked independently of the query code.
        if let PerceptionQuery::Count(q) = meta.query {
            let by_hand = meta
                .scene
                .objects
                .iter()
                .filter(|o| q.kind.is_none_or(|k| k == o.kind))
                .filter(|o| q.color.is_none_or(|c| c == o.color))
                .count();
            assert_eq!(truth, by_hand.to_string());
            let level = t.task.level.unwrap();
            let named = usize::from(q.kind.is_some()) + usize::from(q.color.is_some());
            match level {
                1 => assert_eq!(named, 1, "level 1 counts one attribute"),
                2 => assert!(named >= 1, "level 2 counts name an attribute"),
                _ => {}
            }
        }
        let name = match meta.query {
            PerceptionQuery::Count(_) => "count",
            PerceptionQuery::ColorOf { .. } => "color_of",
            PerceptionQuery::Relation { .. } => "relation",
            PerceptionQuery::Largest => "largest",
        };
        *types.entry(name).or_insert(0) += 1;
    }
    assert_eq!(types.len(), 4, "every question type occurs: {types:?}");
    assert!(types.values().all(|&n| n >= 50), "{types:?}");
}

#[test]
fn images_show_the_ground_truth() {
    let tasks = generate(&SynthConfig::uniform(30), 3).unwrap();
    for t in tasks.iter().filter(|t| t.scene.is_some()) {
        let scene = t.scene.as_ref().unwrap();
        let [ImageRef::Bytes(png)] = &t.task.images[..] else { panic!("one in-memory image expected") };
        let image = image::load_from_memory(png).unwrap().to_rgb8();
        assert_eq!(image, render(scene));
        assert_eq!(image.dimensions(), (scene.width, scene.height));
        for o in &scene.objects {
            assert_eq!(image.get_pixel(o.x, o.y).0, o.color.rgb(), "{}", t.task.id);
        }
        assert_eq!(t.task.meta["scene"], serde_json::to_value(scene).unwrap());
        let level = t.task.level.unwrap();
        let expected_canvas = if level == 1 { 96 } else { 128 };
        assert_eq!(scene.width, expected_canvas);
    }
}

#[test]
fn text_reasoning_level_is_the_number_of_steps() {
    let tasks = generate(&family(Capability::TextReasoning, 400, 1, 8), 9).unwrap();
    let mut per_level = BTreeMap::new();
    for t in &tasks {
        let meta: TextMeta = serde_json::from_value(t.task.meta.clone()).unwrap();
        assert_eq!(Some(meta.expr.steps()), t.task.level);
        assert!(t.task.images.is_empty() && t.scene.is_none());
        assert!(!t.task.prompt.contains(IMAGE_MARKER));
        assert!(t.task.prompt.ends_with(ANSWER_SUFFIX));
        *per_level.entry(t.task.level.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(per_level.len(), 8);
    assert!(per_level.values().all(|&n| n == 50));
}

#[test]
fn visual_tasks_embed_askable_perception_subquestions() {
    let tasks = generate(&family(Capability::VisualReasoning, 300, 1, 3), 13).unwrap();
    for t in &tasks {
        let meta: VisualMeta = serde_json::from_value(t.task.meta.clone()).unwrap();
        assert_eq!(Some(meta.expr.steps()), t.task.level);
        let subs = subquestion_tasks(&t.task).unwrap();
        assert_eq!(subs.len(), meta.subquestions.len());
        assert!(!subs.is_empty() && subs.len() <= 4);
        let mut counts = Vec::new();
        for (sub, sq) in subs.iter().zip(&meta.subquestions) {
            assert_eq!(sub.capability, Capability::Perception);
            assert_eq!(sub.images, t.task.images);
            assert_eq!(sub.id, sq.id);
            assert!(sub.id.starts_with(&t.task.id));
            assert_eq!(answer_from_ground_truth(sub, None).unwrap(), sub.answer);
            assert_eq!(sq.options.len(), 4);
            for (i, o) in sq.options.iter().enumerate() {
                assert!(!sq.options[i + 1..].contains(o), "{:?}", sq.options);
            }
            let pm: PerceptionMeta = serde_json::from_value(sub.meta.clone()).unwrap();
            assert_eq!(pm.parent.as_deref(), Some(t.task.id.as_str()));
            assert_eq!(pm.query.truth(&meta.scene).unwrap(), sq.count.to_string());
            counts.push(sq.count);
        }
        assert_eq!(meta.expr.eval(&counts).unwrap().to_string(), t.task.answer);
        assert!(t.task.prompt.starts_with(&format!("{IMAGE_MARKER}\nLet x be the number of ")));
        assert!(t.task.prompt.ends_with(ANSWER_SUFFIX));
    }
    let text = generate(&family(Capability::TextReasoning, 1, 1, 1), 13).unwrap();
    let err = subquestion_tasks(&text[0].task).unwrap_err();
    assert!(err.to_string().contains("txt-s13-00000"), "{err}");
}

/// Accuracy of the noisy oracle on `tasks`.
fn noisy_accuracy(tasks: &[SynthTask], noise: &PerceptionNoise) -> f64 {
    let right = tasks
        .iter()
        .filter(|t| answer_from_ground_truth(&t.task, Some(noise)).unwrap() == t.task.answer)
        .count();
    right as f64 / tasks.len() as f64
}

#[test]
fn perception_noise_hurts_harder_levels_more() {
    let noise = PerceptionNoise::uniform(0.05, 99);
    // Single-object questions are about as noise-sensitive at every level; the gap comes from
    // counts over more objects with closer options, so perception needs more samples.
    for (capability, samples) in [(Capability::Perception, 1500), (Capability::VisualReasoning, 600)] {
        let accuracy: Vec<f64> = [1, 3]
            .into_iter()
            .map(|level| {
                let tasks = generate(&family(capability, samples, level, level), 77).unwrap();
                noisy_accuracy(&tasks, &noise)
            })
            .collect();
        eprintln!("{capability}: oracle accuracy at 5% noise, levels 1 and 3: {accuracy:?}");
        assert!(accuracy[0] < 1.0, "{capability}: noise has an effect");
        assert!(
            accuracy[1] < accuracy[0] - 0.02,
            "{capability}: level 3 ({}) not clearly below level 1 ({})",
            accuracy[1],
            accuracy[0]
        );
        let tasks = generate(&family(capability, 50, 2, 2), 77).unwrap();
        let none = PerceptionNoise::uniform(0.0, 1);
        assert_eq!(noisy_accuracy(&tasks, &none), 1.0);
        assert_eq!(
            noisy_accuracy(&tasks, &noise),
            noisy_accuracy(&tasks, &noise),
            "noisy answers are deterministic"
        );
    }
}

#[test]
fn written_benchmark_loads_back_with_the_same_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_benchmark(dir.path(), 20, 31).unwrap();
    let loaded = load_jsonl(&summary.tasks_file, &JsonlKeys::default()).unwrap();
    let generated = generate(&SynthConfig::uniform(20), 31).unwrap();
    assert_eq!(loaded.len(), generated.len());
    for (l, g) in loaded.iter().zip(&generated) {
        let mut g_task: Task = g.task.clone();
        match &g_task.images[..] {
            [] => {}
            [ImageRef::Bytes(bytes)] => {
                let path = dir.path().join("images").join(format!("{}.png", g_task.id));
                assert_eq!(&fs::read(&path).unwrap(), bytes);
                g_task.images = vec![ImageRef::Path(path)];
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(l, &g_task);
        assert_eq!(answer_from_ground_truth(l, None).unwrap(), l.answer);
    }
}

#[test]
fn out_of_range_levels_are_config_errors() {
    let err = generate(&family(Capability::Perception, 1, 1, 4), 0).unwrap_err();
    assert!(err.to_string().contains("perception: levels 1..=4"), "{err}");
    let err = generate(&family(Capability::TextReasoning, 1, 0, 2), 0).unwrap_err();
    assert!(err.to_string().contains("text_reasoning"), "{err}");
    let err = generate(&family(Capability::VisualReasoning, 1, 3, 2), 0).unwrap_err();
    assert!(err.to_string().contains("visual_reasoning"), "{err}");
}

#[test]
fn oracle_rejects_foreign_or_inconsistent_meta() {
    let mut task = generate(&family(Capability::Perception, 1, 1, 1), 4).unwrap().remove(0).task;
    task.meta["options"] = serde_json::json!(["w", "x", "y", "z"]);
    let err = answer_from_ground_truth(&task, None).unwrap_err();
    assert!(err.to_string().contains("is not an option"), "{err}");
    task.meta = serde_json::json!({"scene": 1});
    let err = answer_from_ground_truth(&task, None).unwrap_err();
    assert!(err.to_string().contains("task `per-s4-00000`: meta: not a perception meta"), "{err}");
    let bad_noise = PerceptionNoise::uniform(-0.1, 0);
    assert!(answer_from_ground_truth(&task, Some(&bad_noise)).is_err());
}

#[test]
fn worked_style_asks_openly_and_solutions_box_the_oracle_answer() {
    let config = SynthConfig { answers: AnswerStyle::Worked, ..SynthConfig::uniform(30) };
    let tasks = generate(&config, 9).unwrap();
    for t in &tasks {
        let answer = answer_from_ground_truth(&t.task, None).unwrap();
        assert_eq!(answer, t.task.answer, "{}", t.task.id);
        assert!(!t.task.prompt.contains("\\boxed"), "{}", t.task.prompt);
        assert!(t.solution.starts_with("<think>"), "{}", t.solution);
        assert!(t.solution.ends_with(&format!("</think>\\boxed{{{answer}}}")), "{}", t.solution);
        assert_eq!(t.solved().answer, t.solution);
        if t.task.capability == Capability::VisualReasoning {
            let meta: VisualMeta = serde_json::from_value(t.task.meta.clone()).unwrap();
            for (sub, sq) in subquestion_tasks(&t.task).unwrap().iter().zip(&meta.subquestions) {
                assert_eq!(sub.answer, sq.count.to_string());
                assert_eq!(answer_from_ground_truth(sub, None).unwrap(), sub.answer);
                // the solution reads each count as the perception answer states it
                assert!(t.solution.contains(&format!("{}: {}.", sq.query.noun_phrase(), sq.count)));
            }
        }
    }
    let per: Vec<&SynthTask> = tasks.iter().filter(|t| t.task.capability == Capability::Perception).collect();
    assert!(per.iter().any(|t| t.task.answer.parse::<i64>().is_ok()), "some counts");
    assert!(per.iter().any(|t| t.task.answer.parse::<i64>().is_err()), "some words");
    for t in tasks.iter().step_by(10) {
        println!("{}\n  -> {}", t.task.prompt, t.solution);
    }
}

#[test]
fn first_look_tasks_ask_about_few_visible_objects() {
    for look in Look::ALL {
        let tasks = first_look_tasks(look, 200, 5).unwrap();
        assert_eq!(tasks, first_look_tasks(look, 200, 5).unwrap(), "deterministic");
        assert_eq!(tasks[..50], first_look_tasks(look, 50, 5).unwrap()[..], "independent of n");
        let mut kinds = std::collections::BTreeMap::new();
        for t in &tasks {
            let scene = t.scene.as_ref().unwrap();
            assert_eq!((scene.width, scene.noise_pixels), (64, 0));
            let objects = match look {
                Look::One => 1..=1,
                Look::Few => 2..=3,
            };
            assert!(objects.contains(&scene.objects.len()), "{scene:?}");
            let [ImageRef::Bytes(png)] = &t.task.images[..] else { panic!("one in-memory image expected") };
            let image = image::load_from_memory(png).unwrap().to_rgb8();
            for object in &scene.objects {
                assert_eq!(image.get_pixel(object.x, object.y).0, object.color.rgb());
            }
            assert_eq!(answer_from_ground_truth(&t.task, None).unwrap(), t.task.answer, "{}", t.task.id);
            assert!(t.task.prompt.starts_with(IMAGE_MARKER), "{}", t.task.prompt);
            assert!(t.solution.ends_with(&format!("\\boxed{{{}}}", t.task.answer)), "{}", t.solution);
            let meta: PerceptionMeta = serde_json::from_value(t.task.meta.clone()).unwrap();
            let kind = serde_json::to_value(&meta.query).unwrap();
            let kind = kind.get("type").and_then(|k| k.as_str()).unwrap().to_string();
            *kinds.entry(kind).or_insert(0) += 1;
        }
        let expected: &[&str] = match look {
            Look::One => &["color_of", "count"],
            Look::Few => &["color_of", "count", "largest", "relation"],
        };
        assert_eq!(kinds.keys().map(String::as_str).collect::<Vec<_>>(), expected, "{look:?}");
        // every type about equally common (relation and largest fall back to counts on scenes
        // that support none, so counts may be somewhat commoner)
        let share = 200 / expected.len();
        for (kind, n) in &kinds {
            assert!(*n >= share * 6 / 10, "{look:?}: {n} {kind} questions of 200");
        }
    }
}
