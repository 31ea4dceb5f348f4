//! Stage chaining: a curriculum's phases run back to back (each from the previous one's final
//! model, with its own settings), batches mix text-only and image tasks, a run interrupted
//! between or inside phases resumes to bitwise-identical weights (adaptive samplers included),
//! and a sampler can end a phase early; with TensorBoard on, steps and held-out evaluations are
//! events.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{logged, tiny_config, vision_and_text, weights, I};
use seethink_curriculum::{
    default_sampler, AccuracyBand, Curriculum, CurriculumConfig, E2h, GroupResult, Learnability, Merged,
    Phase, PlateauConfig, Policy, Replay, Staged, TaskSampler, Watched,
};
use seethink_data::synth::{generate, write_tasks, SynthConfig};
use seethink_data::{Capability, Task};
use seethink_models::AnyVlm;
use seethink_rl::config::{HeldOutConfig, RewardKind, TrainConfig, Trainer};
use seethink_rl::phases::{train_curriculum, train_phases, PhasesOutcome};
use seethink_rl::tensorboard::{read_scalars, TENSORBOARD_DIR};

/// Procedural tasks: `n` per capability, images in memory.
fn tasks(n: usize, seed: u64) -> Vec<Task> {
    generate(&SynthConfig::uniform(n), seed).unwrap().into_iter().map(|t| t.task).collect()
}

/// A curriculum run of `policy` in `dir`: 2 GRPO steps of 2 prompts per phase, mixed batches
/// where the phase has both kinds, evaluated on 3 held-out tasks per capability.
fn config(dir: &Path, policy: Policy) -> TrainConfig {
    let heldout = dir.join("heldout");
    if !heldout.exists() {
        write_tasks(&heldout, &tasks(1, 99)).unwrap();
    }
    let mut config = tiny_config(&dir.join("run"), Trainer::Grpo, 2, 2);
    config.algorithm.reward = RewardKind::Direct;
    config.curriculum =
        Some(CurriculumConfig { policy, within: Vec::new(), phases: Default::default(), plateau: None });
    config.eval = Some(HeldOutConfig {
        data: heldout,
        capability: None,
        k: 2,
        temperature: 1.0,
        max_new_tokens: None,
        top_p: None,
        batch_size: 4,
        attribute_errors: true,
        benchmarks: Vec::new(),
    });
    config
}

fn run(config: &TrainConfig) -> PhasesOutcome {
    train_phases::<common::B>(config, tasks(2, 7), config.algorithm.reward.reward(), &Default::default())
        .unwrap()
}

fn final_weights(outcome: &PhasesOutcome) -> Vec<f32> {
    weights(&AnyVlm::<I>::load(outcome.finals.last().unwrap(), &Default::default()).unwrap())
}

#[test]
fn the_paper_stages_chain_their_models_and_settings_and_resume_between_and_inside_phases() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), Policy::Paper);
    let straight = run(&config);
    let run_dir = dir.path().join("run");
    let names: Vec<_> =
        straight.finals.iter().map(|f| f.parent().unwrap().file_name().unwrap().to_owned()).collect();
    assert_eq!(names, ["01-perception", "02-text_reasoning", "03-visual_reasoning"]);
    let phase_config = |name: &str| TrainConfig::load(&run_dir.join(name).join("config.ron"), &[]).unwrap();
    let text = phase_config("02-text_reasoning");
    assert_eq!(text.model, straight.finals[0], "phase 2 starts from phase 1's final model");
    assert!(text.actor.freeze_vision && !phase_config("03-visual_reasoning").actor.freeze_vision);
    // phase 2 (text only, vision frozen) leaves the vision tower as phase 1 left it
    let load = |i: usize| AnyVlm::<I>::load(&straight.finals[i], &Default::default()).unwrap();
    assert_eq!(vision_and_text(&load(0)).0, vision_and_text(&load(1)).0);
    assert_ne!(vision_and_text(&load(0)).1, vision_and_text(&load(1)).1);
    let stages: Vec<_> = straight.reports.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(stages, ["start", "perception", "text_reasoning", "visual_reasoning"]);
    assert!(straight.reports.iter().all(|(_, r)| r.overall.tasks == 3 && r.attribution.is_some()));
    let summary = std::fs::read_to_string(run_dir.join("summary.md")).unwrap();
    assert_eq!(summary.lines().count(), 2 + 4, "{summary}");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan.as_array().unwrap().len(), 3);

    // killed inside phase 3, after its step 1: its final model, step-2 checkpoint and evaluation gone
    let phase3 = run_dir.join("03-visual_reasoning");
    std::fs::remove_dir_all(phase3.join("final")).unwrap();
    std::fs::remove_dir_all(phase3.join("eval")).unwrap();
    for file in ["model-2.mpk", "optim-2.mpk", "scheduler-2.mpk", "state-2.json"] {
        std::fs::remove_file(phase3.join("checkpoint").join(file)).unwrap();
    }
    let resumed = run(&config);
    assert_eq!(final_weights(&resumed), final_weights(&straight), "resumed inside a phase");
    assert_eq!(logged(&phase3, "step"), [1.0, 2.0]);
    // killed between phases 2 and 3
    std::fs::remove_dir_all(&phase3).unwrap();
    let resumed = run(&config);
    assert_eq!(final_weights(&resumed), final_weights(&straight), "resumed between phases");
    assert_eq!(resumed.reports, straight.reports);
}

#[test]
fn evaluations_beside_the_next_phase_s_training_report_what_one_after_the_other_do() {
    use seethink_models::parallel::{cores, map_parallel};
    // on the host's cores each evaluation runs beside the next phase's training; inside a
    // one-core worker (a second item keeps the other core) one after the other
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let configs = dirs.each_ref().map(|dir| config(dir.path(), Policy::Paper));
    let beside = run(&configs[0]);
    let mut alone =
        map_parallel(vec![Some(&configs[1]), None], 2, |config| config.map(|config| (cores(), run(config))));
    let (threads, after) = alone.remove(0).unwrap();
    assert_eq!(threads, 1, "the second run evaluates one thing at a time");
    assert_eq!(beside.reports, after.reports);
    assert_eq!(final_weights(&beside), final_weights(&after));
    let read = |config: &TrainConfig, file: &str| std::fs::read(config.trainer.out.join(file)).unwrap();
    assert_eq!(read(&configs[0], "summary.md"), read(&configs[1], "summary.md"));
    for point in ["eval-start", "01-perception/eval", "03-visual_reasoning/eval"] {
        let report = format!("{point}/report.json");
        assert_eq!(read(&configs[0], &report), read(&configs[1], &report), "{report}");
    }
}

#[test]
fn merged_batches_mix_text_and_image_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(&config(dir.path(), Policy::Merged));
    assert_eq!(outcome.finals.len(), 1);
    let pool = tasks(2, 7);
    let mut config = config(dir.path(), Policy::Merged);
    config.trainer.prompts_per_step = pool.len();
    config.trainer.out = dir.path().join("all-at-once");
    // one step whose batch holds every task: text-only and image prompts together
    let outcome = run(&config);
    let kinds: std::collections::BTreeSet<bool> = pool.iter().map(|t| t.images.is_empty()).collect();
    assert_eq!(kinds.len(), 2, "the pool has both kinds");
    assert_eq!(logged(&dir.path().join("all-at-once/01-merged"), "step"), [1.0, 2.0]);
    assert!(outcome.finals[0].join("config.json").exists());
}

#[test]
fn the_learning_progress_bandit_resumes_bitwise_and_a_plateau_ends_a_phase_early() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), Policy::LearningProgress { temperature: 0.5, alpha: 0.5 });
    config.trainer.steps = 3;
    config.eval = None;
    let straight = run(&config);
    let phase = dir.path().join("run/01-learning_progress");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(phase.join("checkpoint/state-3.json")).unwrap())
            .unwrap();
    assert_eq!(state["sampler"]["draws"], 6, "the bandit's state is in the checkpoint: {state}");
    std::fs::remove_dir_all(phase.join("final")).unwrap();
    for file in ["model-3.mpk", "optim-3.mpk", "scheduler-3.mpk", "state-3.json"] {
        std::fs::remove_file(phase.join("checkpoint").join(file)).unwrap();
    }
    let resumed = run(&config);
    assert_eq!(final_weights(&resumed), final_weights(&straight));

    // a plateau that no step can beat: the phase ends after the step that sets its best, and one more
    let mut config = self::config(&dir.path().join("plateau"), Policy::Staged(vec![Capability::Perception]));
    config.trainer.steps = 5;
    config.eval = None;
    config.curriculum.as_mut().unwrap().plateau =
        Some(PlateauConfig { window: 1, patience: 1, min_delta: 10.0, watched: Watched::Reward });
    config.trainer.save_every = 10;
    let outcome = run(&config);
    let phase = dir.path().join("plateau/run/01-perception");
    assert_eq!(logged(&phase, "step"), [1.0, 2.0]);
    assert!(outcome.finals[0].join("config.json").exists());
    // the early end, between save steps, is checkpointed with the sampler's last state
    let plateau = sampler_state(&phase, 2);
    assert!(!plateau.is_null(), "no sampler state at the early end");
    // killed after that checkpoint, before final/: the resumed phase takes no further step
    std::fs::remove_dir_all(phase.join("final")).unwrap();
    let resumed = run(&config);
    assert_eq!(logged(&phase, "step"), [1.0, 2.0], "the ended phase ran on");
    assert_eq!(final_weights(&resumed), final_weights(&outcome));
}

#[test]
fn with_tensorboard_on_every_step_and_every_held_out_evaluation_is_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        config(dir.path(), Policy::Staged(vec![Capability::Perception, Capability::TextReasoning]));
    config.trainer.tensorboard = true;
    let outcome = run(&config);
    let run_dir = dir.path().join("run");
    // each phase's steps, every numeric metric of metrics.jsonl, as in the file
    let phase = run_dir.join("01-perception");
    let scalars = read_scalars(&phase.join(TENSORBOARD_DIR)).unwrap();
    let reward: Vec<(i64, f64)> = scalars
        .iter()
        .filter(|(tag, _, _)| tag == "train/reward")
        .map(|(_, s, v)| (*s, f64::from(*v)))
        .collect();
    let logged_reward = logged(&phase, "reward");
    assert_eq!(reward.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2]);
    for ((_, v), l) in reward.iter().zip(&logged_reward) {
        assert!((v - l).abs() < 1e-6, "{reward:?} vs {logged_reward:?}");
    }
    assert!(scalars.iter().any(|(tag, _, _)| tag == "train/kl"), "{scalars:?}");
    // the run's held-out accuracy at the start (step 0) and after each phase (steps 2, 4)
    let heldout = read_scalars(&run_dir.join(TENSORBOARD_DIR)).unwrap();
    let overall: Vec<(i64, f32)> =
        heldout.iter().filter(|(tag, _, _)| tag == "heldout/overall").map(|(_, s, v)| (*s, *v)).collect();
    let reported: Vec<f32> = outcome.reports.iter().map(|(_, r)| r.overall.accuracy as f32).collect();
    assert_eq!(overall, [0, 2, 4].into_iter().zip(reported).collect::<Vec<_>>());
}

/// A phase's checkpointed sampler state after `step`.
fn sampler_state(phase: &Path, step: usize) -> serde_json::Value {
    let path = phase.join(format!("checkpoint/state-{step}.json"));
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    state["sampler"].clone()
}

#[test]
fn published_methods_run_as_curricula_and_checkpoint_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), Policy::Merged);
    config.eval = None;
    config.trainer.steps = 3;
    let (perception, text) = (Capability::Perception, Capability::TextReasoning);
    let methods: [(&str, Box<dyn Curriculum>); 4] = [
        ("e2h", Box::new(E2h::new(Merged::new(), 3))),
        ("learnability", Box::new(Learnability { inner: Merged::new() })),
        ("replay", Box::new(Replay { inner: Staged::new([perception, text]), share: 0.5 })),
        ("dynamic_sampling", Box::new(AccuracyBand::dynamic_sampling(Merged::new()))),
    ];
    for (name, curriculum) in methods {
        config.trainer.out = dir.path().join(name);
        let reward = config.algorithm.reward.reward();
        let outcome = train_curriculum::<common::B>(
            &config,
            curriculum.as_ref(),
            tasks(2, 7),
            reward,
            &Default::default(),
        )
        .unwrap();
        assert!(outcome.finals.last().unwrap().join("config.json").exists(), "{name}");
    }
    let levels: std::collections::BTreeSet<_> = tasks(2, 7).iter().map(|t| t.level).collect();
    let e2h = sampler_state(&dir.path().join("e2h/01-merged"), 3);
    assert_eq!(e2h["step"].as_u64(), Some(3), "{e2h}");
    assert_eq!(e2h["next"].as_array().map(Vec::len), Some(levels.len()), "{e2h}");
    let learnability = sampler_state(&dir.path().join("learnability/01-merged"), 3);
    assert!(!learnability["observed"].as_object().unwrap().is_empty(), "{learnability}");
    // phase 2 replayed half of its 6 draws from phase 1's perception tasks
    let replay = sampler_state(&dir.path().join("replay/02-text_reasoning"), 3);
    assert_eq!(replay["replays"]["position"], 3, "{replay}");
    // plan.json shows the share: none in phase 1 (nothing to replay), half of phase 2's draws
    // from phase 1's tasks; a curriculum that only lists tasks records no sampler
    let plan = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name).join("plan.json")).unwrap())
            .unwrap()
    };
    let replay_plan = plan("replay");
    let perception_tasks = replay_plan[0]["tasks"].as_array().unwrap().len();
    assert_eq!(replay_plan[0]["sampler"]["replay_share"], 0.0, "{replay_plan}");
    assert_eq!(replay_plan[1]["sampler"]["replay_share"], 0.5, "{replay_plan}");
    assert_eq!(replay_plan[1]["sampler"]["replayed_tasks"], perception_tasks, "{replay_plan}");
    assert!(plan("e2h")[0].get("sampler").is_none(), "{}", plan("e2h"));
}

/// Merged epochs whose gate admits the groups of even-numbered tasks only, logging every
/// question it is asked and every group it is told about.
struct EvenTasks {
    log: Arc<Mutex<GateLog>>,
}

#[derive(Default)]
struct GateLog {
    asked: Vec<usize>,
    observed: Vec<usize>,
    /// Each draw: whether it was a refill, and the tasks it gave.
    draws: Vec<(bool, Vec<usize>)>,
}

impl Curriculum for EvenTasks {
    fn phases(&self, pool: &[Task], seed: u64) -> seethink_curriculum::Result<Vec<Phase>> {
        Merged::new().phases(pool, seed)
    }

    fn sampler(
        &self,
        phase: &Phase,
        _: &[Task],
        seed: u64,
    ) -> seethink_curriculum::Result<Box<dyn TaskSampler>> {
        Ok(Box::new(EvenGate { epochs: default_sampler(phase, seed), log: self.log.clone() }))
    }
}

struct EvenGate {
    epochs: Box<dyn TaskSampler>,
    log: Arc<Mutex<GateLog>>,
}

impl TaskSampler for EvenGate {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        let drawn = self.epochs.next_batch(count);
        self.log.lock().unwrap().draws.push((false, drawn.clone()));
        drawn
    }
    fn refill(&mut self, count: usize) -> Vec<usize> {
        let drawn = self.epochs.refill(count);
        self.log.lock().unwrap().draws.push((true, drawn.clone()));
        drawn
    }
    fn observe(&mut self, results: &[GroupResult]) {
        self.log.lock().unwrap().observed.extend(results.iter().map(|r| r.task));
        assert!(results.iter().all(|r| r.rewards.len() == 4), "each group's rewards, n = 4");
    }
    fn state(&self) -> serde_json::Value {
        self.epochs.state()
    }
    fn restore(&mut self, state: &serde_json::Value) -> Result<(), String> {
        self.epochs.restore(state)
    }
    fn admit(&mut self, group: &GroupResult) -> bool {
        self.log.lock().unwrap().asked.push(group.task);
        group.task.is_multiple_of(2)
    }
}

#[test]
fn an_admission_gate_sees_every_group_and_rejected_groups_are_refilled() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), Policy::Merged);
    config.eval = None;
    config.trainer.steps = 2;
    config.trainer.prompts_per_step = 3;
    let log = Arc::new(Mutex::new(GateLog::default()));
    let reward = config.algorithm.reward.reward();
    let pool = tasks(2, 7);
    train_curriculum::<common::B>(
        &config,
        &EvenTasks { log: log.clone() },
        pool,
        reward,
        &Default::default(),
    )
    .unwrap();
    let log = log.lock().unwrap();
    // every drawn group is asked about once (no online filter here) and then observed, in draw order
    assert_eq!(log.asked, log.observed);
    let run = dir.path().join("run/01-merged");
    let (groups, kept) = (logged(&run, "groups"), logged(&run, "groups_kept"));
    assert_eq!(groups.iter().sum::<f64>() as usize, log.asked.len());
    // the pool's 6 tasks hold 3 even ones, so refills always find 3 admissible groups
    assert_eq!(kept, [3.0, 3.0]);
    assert!(groups.iter().sum::<f64>() > 6.0, "odd tasks were drawn and refilled: {groups:?}");
    assert!(log.asked.iter().any(|t| t % 2 == 1));
    // a step draws its 3 prompts, then refills just the groups still missing
    let mut admitted = 0;
    for (refill, drawn) in &log.draws {
        match refill {
            false => assert_eq!((admitted % 3, drawn.len()), (0, 3), "a step's batch: {:?}", log.draws),
            true => {
                assert_eq!(drawn.len(), 3 - admitted % 3, "a refill asks for the missing: {:?}", log.draws)
            }
        }
        admitted += drawn.iter().filter(|&&t| t % 2 == 0).count();
    }
    assert!(log.draws.iter().any(|(refill, _)| *refill), "some step refilled: {:?}", log.draws);
}

#[test]
fn a_phase_overrides_any_run_key_and_a_bad_override_stops_the_run_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        config(dir.path(), Policy::Staged(vec![Capability::Perception, Capability::TextReasoning]));
    config.eval = None;
    let set = |overrides: &[&str]| seethink_curriculum::PhaseSettings {
        set: overrides.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let curriculum = config.curriculum.as_mut().unwrap();
    let text = set(&["rollout.temperature=0.5", "actor.schedule=Warmup(warmup: 1)", "trainer.steps=1"]);
    curriculum.phases.insert("text_reasoning".into(), text);
    run(&config);
    let phase =
        |name: &str| TrainConfig::load(&dir.path().join("run").join(name).join("config.ron"), &[]).unwrap();
    let (perception, text) = (phase("01-perception"), phase("02-text_reasoning"));
    assert_eq!((text.rollout.temperature, text.trainer.steps), (0.5, 1));
    assert_eq!(text.actor.schedule, seethink_rl::optim::LrSchedule::Warmup { warmup: 1 });
    assert_eq!((perception.rollout.temperature, perception.trainer.steps), (config.rollout.temperature, 2));
    assert_eq!(logged(&dir.path().join("run/02-text_reasoning"), "reward").len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let mut config = self::config(dir.path(), Policy::Paper);
    let bad = set(&["rollout.temprature=0.5"]);
    config.curriculum.as_mut().unwrap().phases.insert("visual_reasoning".into(), bad);
    let reward = config.algorithm.reward.reward();
    let error =
        train_phases::<common::B>(&config, tasks(2, 7), reward, &Default::default()).unwrap_err().to_string();
    assert!(error.contains("visual_reasoning") && error.contains("rollout.temprature"), "{error}");
    assert!(!dir.path().join("run/plan.json").exists(), "nothing ran");
}

#[test]
fn a_phase_s_set_changes_exactly_its_keys_as_the_typed_settings_did() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_config(&dir.path().join("run"), Trainer::Grpo, 2, 2);
    let overrides = ["actor.freeze_vision=true", "actor.lr=3e-7", "algorithm.trainer=Sft"];
    let settings = seethink_curriculum::PhaseSettings {
        set: overrides.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let phased = seethink_rl::phases::with_phase_settings(&base, &settings).unwrap();
    let mut expected = TrainConfig { curriculum: None, eval: None, ..base };
    (expected.actor.freeze_vision, expected.actor.lr, expected.algorithm.trainer) =
        (true, 3e-7, Trainer::Sft);
    assert_eq!(phased, expected, "every other key as it was, bitwise");
}
