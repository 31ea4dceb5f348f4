//! Phase plans of the built-in policies and their compositions, and the adaptive samplers'
//! behaviour and resume.

use seethink_curriculum::*;
use seethink_data::{Capability, Task};

use Capability::{Perception as P, TextReasoning as T, VisualReasoning as V};

/// A task of `capability` with pass rate `pass_rate`, level `level`, from `source`.
fn task(id: usize, capability: Capability, pass_rate: Option<f64>, level: u32, source: &str) -> Task {
    Task {
        id: format!("t{id}"),
        prompt: "?".into(),
        images: Vec::new(),
        answer: "1".into(),
        capability,
        level: Some(level),
        pass_rate: pass_rate,
        source: source.into(),
        meta: serde_json::Value::Null,
    }
}

/// 0–3 perception, 4–6 text, 7–9 visual; pass rates with ties (0.5 twice in perception, 1.0 in
/// each capability).
fn pool() -> Vec<Task> {
    let rates = [0.5, 1.0, 0.25, 0.5, 0.0, 1.0, 0.75, 0.5, 1.0, 0.125];
    let caps = [P, P, P, P, T, T, T, V, V, V];
    (0..10).map(|i| task(i, caps[i], Some(rates[i]), 1 + (i % 2) as u32, "synth")).collect()
}

fn names(phases: &[Phase]) -> Vec<&str> {
    phases.iter().map(|p| p.name.as_str()).collect()
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort();
    v
}

#[test]
fn the_paper_stages_capabilities_in_order_with_the_vision_tower_frozen_for_text() {
    let phases = Staged::paper().phases(&pool(), 0).unwrap();
    assert_eq!(names(&phases), ["perception", "text_reasoning", "visual_reasoning"]);
    assert_eq!(sorted(phases[0].tasks.clone()), [0, 1, 2, 3]);
    assert_eq!(sorted(phases[1].tasks.clone()), [4, 5, 6]);
    assert_eq!(sorted(phases[2].tasks.clone()), [7, 8, 9]);
    assert!(phases.iter().all(|p| p.order == Order::Shuffled));
    let sets: Vec<_> = phases.iter().map(|p| p.settings.set.clone()).collect();
    assert_eq!(sets, [vec![], vec!["actor.freeze_vision=true".to_string()], vec![]]);
}

#[test]
fn reverse_permutations_and_subsets() {
    assert_eq!(
        names(&Staged::reverse().phases(&pool(), 0).unwrap()),
        ["visual_reasoning", "text_reasoning", "perception"]
    );
    let subset = Staged::new([V, P]).phases(&pool(), 0).unwrap();
    assert_eq!(names(&subset), ["visual_reasoning", "perception"]);
    assert!(matches!(Staged::new([P, P]).phases(&pool(), 0), Err(CurriculumError::RepeatedStage { .. })));
    let text_only: Vec<Task> = pool().into_iter().filter(|t| t.capability == T).collect();
    let error = Staged::paper().phases(&text_only, 0).unwrap_err();
    assert!(error.to_string().contains("phase `perception` has no tasks"), "{error}");
}

#[test]
fn easy_to_hard_sorts_by_descending_pass_rate_and_shuffles_ties_by_seed() {
    let pool = pool();
    let phases = Staged::paper().within(EasyToHard).phases(&pool, 0).unwrap();
    assert!(phases.iter().all(|p| p.order == Order::Listed));
    let rates = |p: &Phase| p.tasks.iter().map(|&i| pool[i].pass_rate.unwrap()).collect::<Vec<_>>();
    assert_eq!(rates(&phases[0]), [1.0, 0.5, 0.5, 0.25]);
    assert_eq!(phases[1].tasks, [5, 6, 4]);
    assert_eq!(phases[2].tasks, [8, 7, 9]);
    // the tie (tasks 0 and 3 at 0.5) is broken by the seed: both orders occur, each reproducibly
    let tie = |seed| Staged::paper().within(EasyToHard).phases(&pool, seed).unwrap()[0].tasks[1..3].to_vec();
    let orders: std::collections::BTreeSet<_> = (0..16).map(tie).collect();
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert_eq!(tie(3), tie(3));
    // difficulty only: the whole pool in one easy → hard list
    let merged = Merged::new().within(EasyToHard).phases(&pool, 0).unwrap();
    assert_eq!(merged.len(), 1);
    let all = rates(&merged[0]);
    assert!(all.windows(2).all(|w| w[0] >= w[1]), "{all:?}");
    assert_eq!(all.len(), 10);
}

#[test]
fn solved_tasks_are_dropped_and_bands_keep_their_range() {
    let pool = pool();
    let phases = Staged::paper().within((DropSolved, EasyToHard)).phases(&pool, 0).unwrap();
    assert_eq!(phases[1].tasks, [6, 4]);
    assert_eq!(phases[2].tasks, [7, 9]);
    assert!(phases.iter().flat_map(|p| &p.tasks).all(|&i| pool[i].pass_rate < Some(1.0)));
    let band = Merged::new().within(PassRateBand { low: 0.2, high: 0.6 }).phases(&pool, 0).unwrap();
    assert_eq!(sorted(band[0].tasks.clone()), [0, 2, 3, 7]);
    assert_eq!(band[0].order, Order::Shuffled, "a filter alone keeps shuffled epochs");
}

#[test]
fn a_task_without_a_pass_rate_is_named() {
    let mut pool = pool();
    pool[5].pass_rate = None;
    let error = Staged::paper().within(EasyToHard).phases(&pool, 0).unwrap_err();
    assert!(error.to_string().contains("`t5` has no pass rate"), "{error}");
    // without a difficulty axis, pass rates are not needed
    assert!(Staged::paper().phases(&pool, 0).is_ok());
}

#[test]
fn sources_restrict_a_phase() {
    let mut pool = pool();
    pool.push(task(10, P, None, 1, "captions"));
    let captions = PhaseSettings { sources: Some(vec!["captions".into()]), ..Default::default() };
    let phases = Staged::paper().with(P, captions).phases(&pool, 0).unwrap();
    assert_eq!(phases[0].tasks, [10]);
    assert_eq!(sorted(phases[2].tasks.clone()), [7, 8, 9]);
}

#[test]
fn default_samplers_follow_the_phase_order() {
    let pool = pool();
    let curriculum = Staged::paper().within(EasyToHard);
    let phases = curriculum.phases(&pool, 0).unwrap();
    let mut listed = curriculum.sampler(&phases[1], &pool, 0).unwrap();
    assert_eq!(listed.next_batch(4), [5, 6, 4, 5]);
    let shuffled_phase = &Staged::paper().phases(&pool, 0).unwrap()[0];
    let epoch = Staged::paper().sampler(shuffled_phase, &pool, 4).unwrap().next_batch(4);
    assert_eq!(sorted(epoch), [0, 1, 2, 3]);
}

#[test]
fn configs_build_the_same_plans_and_name_bad_phase_settings() {
    let pool = pool();
    let config: CurriculumConfig = ron::from_str(
        r#"(policy: Paper, within: [DropSolved, EasyToHard],
            phases: { "visual_reasoning": (steps: Some(7), set: ["actor.lr=3e-7"]) })"#,
    )
    .unwrap();
    let phases = config.build().unwrap().phases(&pool, 0).unwrap();
    let direct = Staged::paper().within((DropSolved, EasyToHard)).phases(&pool, 0).unwrap();
    assert_eq!(
        phases.iter().map(|p| &p.tasks).collect::<Vec<_>>(),
        direct.iter().map(|p| &p.tasks).collect::<Vec<_>>()
    );
    assert_eq!(
        (phases[2].settings.steps, phases[2].settings.set.clone()),
        (Some(7), vec!["actor.lr=3e-7".into()])
    );
    assert_eq!(phases[1].settings.set, ["actor.freeze_vision=true"]);

    let reverse: CurriculumConfig =
        ron::from_str("(policy: Staged([visual_reasoning, perception]))").unwrap();
    assert_eq!(
        names(&reverse.build().unwrap().phases(&pool, 0).unwrap()),
        ["visual_reasoning", "perception"]
    );

    let typo: CurriculumConfig =
        ron::from_str(r#"(policy: Paper, phases: { "perceptoin": (steps: Some(1)) })"#).unwrap();
    let error = typo.build().err().unwrap().to_string();
    assert!(
        error.contains("`perceptoin`") && error.contains("perception, text_reasoning, visual_reasoning"),
        "{error}"
    );
    let merged: CurriculumConfig =
        ron::from_str(r#"(policy: Merged, phases: { "perception": () })"#).unwrap();
    assert!(merged.build().err().unwrap().to_string().contains("its phases: merged"));
    let bandit: CurriculumConfig =
        ron::from_str("(policy: LearningProgress(temperature: 0.0, alpha: 0.5))").unwrap();
    assert!(bandit.build().err().unwrap().to_string().contains("temperature > 0"));
}

/// One result per drawn task, the |advantage| of perception level 1 high and the rest 0.
fn results(drawn: &[usize], pool: &[Task]) -> Vec<GroupResult> {
    drawn
        .iter()
        .map(|&task| {
            let hot = pool[task].capability == P && pool[task].level == Some(1);
            let advantage = if hot { 4.0 } else { 0.0 };
            GroupResult {
                task,
                capability: pool[task].capability,
                level: pool[task].level,
                rewards: vec![0.0, 1.0],
                reward: 0.5,
                accuracy: 0.5,
                response_length: 3.0,
                mean_abs_advantage: advantage,
            }
        })
        .collect()
}

#[test]
fn the_learning_progress_bandit_draws_where_advantages_are_and_resumes_exactly() {
    let pool = pool();
    let bandit = LearningProgress { temperature: 0.5, alpha: 0.5, settings: Default::default() };
    let phases = bandit.phases(&pool, 0).unwrap();
    assert_eq!(names(&phases), ["learning_progress"]);
    let mut sampler = bandit.sampler(&phases[0], &pool, 1).unwrap();
    let first = sampler.next_batch(40);
    assert_eq!(
        sorted(first.clone()).into_iter().collect::<std::collections::BTreeSet<_>>().len(),
        10,
        "uniform at the start"
    );
    for _ in 0..5 {
        let drawn = sampler.next_batch(8);
        sampler.observe(&results(&drawn, &pool));
    }
    let hot = |batch: &[usize]| {
        batch.iter().filter(|&&t| pool[t].capability == P && pool[t].level == Some(1)).count()
    };
    let mut resumed = bandit.sampler(&phases[0], &pool, 1).unwrap();
    resumed.restore(&serde_json::from_str(&sampler.state().to_string()).unwrap()).unwrap();
    let later = sampler.next_batch(100);
    assert_eq!(resumed.next_batch(100), later, "a restored bandit draws the same tasks");
    // 6 cells; the hot one (value → 4, others 0, τ = 0.5) takes nearly every draw
    assert!(hot(&later) > 90, "{} of 100 draws from the learning cell", hot(&later));
    let other_phase = Phase { tasks: vec![0, 4], ..phases[0].clone() };
    let error = bandit.sampler(&other_phase, &pool, 1).unwrap().restore(&sampler.state()).unwrap_err();
    assert!(error.contains("cells"), "{error}");
}
