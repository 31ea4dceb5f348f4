//! The benchmarks of the paper, loaded from VLMEvalKit's TSV files, prompted and scored as
//! VLMEvalKit prompts and scores them, and averaged as the paper averages them.
//!
//! - [`Benchmark`]: the benchmarks, each with its capability [`Group`], the TSV columns it
//!   needs and how it is scored; [`Benchmark::load`] reads a TSV file into a [`BenchmarkData`].
//! - [`matching`]: VLMEvalKit's rule-based answer extraction (`can_infer`, `YOrN_Extraction`).
//! - [`mcq`] (MMStar, RealWorldQA, A-OKVQA), [`pope`], [`wemath`], [`math`] (MathVista,
//!   MathVerse, MathVision), [`dynamath`]: prompts and scores of each family.
//! - [`predictions`]: reading a predictions file (JSONL or VLMEvalKit's TSV) for offline scoring.
//! - [`summary`]: the per-benchmark tables and the paper's averages ([`SuiteReport`]).
//!
//! # Where the scores differ from VLMEvalKit's
//! VLMEvalKit asks a GPT judge (the paper: Claude Haiku 4.5) wherever its rules find no answer:
//! MathVista, MathVerse and MathVision extract every free-form answer with the judge, MathVerse
//! also judges equivalence, DynaMath asks it when the response is not its JSON, and multiple
//! choice asks it when `can_infer` finds no option. seethink has no judge: where VLMEvalKit
//! would ask it, the answer is the content of the last `\boxed{}` of the response (the format
//! the paper's models are trained to), else the whole response ([`matching::judged_answer`]).
//! The extraction is then compared by VLMEvalKit's own rule (MathVista's `post_check`,
//! MATH-Vision's `is_equal`; the reward crate's MATH grader with
//! [`ScoreOptions::math_grader`]); MathVerse's judged equivalence is stood in for by the MATH
//! grader ([`seethink_reward::grade_answer`]). Scores therefore match VLMEvalKit's where its
//! rules decide, and approach a judged run for responses that box their answers. Responses are
//! scored as VLMEvalKit scores them after writing and reading back its predictions file
//! ([`matching::scored_prediction`]: after the last `</think>`, `nan` where pandas reads the
//! text as missing), and TSV cells are read as pandas reads them where a decision depends on
//! it (option cells, [`python::pandas_missing`]). The other, smaller deviations are listed in
//! each module and in `docs/benchmarks-eval.md`.

pub mod dynamath;
pub mod matching;
pub mod math;
pub mod mcq;
pub mod pope;
pub mod predictions;
pub mod python;
pub mod summary;
mod tally;
pub mod wemath;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use seethink_data::{read_tsv, Capability, DataError, ImageRef, Task, TsvRow, IMAGE_MARKER};
use serde::{Deserialize, Serialize};

use crate::error::Result;
pub use summary::{Averages, BenchmarkReport, GroupAverage, ItemResult, SuiteReport, Table, TableRow};

/// The capability a benchmark measures, as the paper groups them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Visual math (reasoning over images).
    VisualMath,
    /// Perception.
    Perception,
}

impl Group {
    /// The name in tables: `visual math` or `perception`.
    pub fn name(self) -> &'static str {
        match self {
            Group::VisualMath => "visual math",
            Group::Perception => "perception",
        }
    }

    /// The task capability a benchmark of this group is labelled with.
    pub fn capability(self) -> Capability {
        match self {
            Group::VisualMath => Capability::VisualReasoning,
            Group::Perception => Capability::Perception,
        }
    }
}

/// A benchmark of the paper, as VLMEvalKit distributes it (one TSV file).
///
/// The paper's main table (and its reference code's default suite) has MathVista (`_MINI`),
/// MathVision (`_MINI`), MathVerse (`_MINI_Vision_Intensive`) and WeMath for visual math and
/// A-OKVQA, RealWorldQA, MMStar and POPE for perception; DynaMath is in its extended table and
/// outside the averages ([`Benchmark::in_paper_average`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Benchmark {
    /// MathVista: free-form and multiple-choice math over figures.
    MathVista,
    /// MATH-Vision: competition math with figures.
    MathVision,
    /// MathVerse: the same problems with more or less of them in the image.
    MathVerse,
    /// WeMath: multi-step problems and their one-step parts (multiple choice).
    WeMath,
    /// DynaMath: variants of seed questions (worst case over variants).
    DynaMath,
    /// A-OKVQA (multiple choice): questions needing common sense about the image.
    AOkvqa,
    /// RealWorldQA: real-world spatial questions (multiple choice).
    RealWorldQa,
    /// MMStar: vision-indispensable multiple choice in six categories.
    MmStar,
    /// POPE: yes/no object-hallucination probes in three splits.
    Pope,
}

impl Benchmark {
    /// Every benchmark, visual math first, in the paper's order.
    pub const ALL: [Benchmark; 9] = [
        Benchmark::MathVista,
        Benchmark::MathVision,
        Benchmark::MathVerse,
        Benchmark::WeMath,
        Benchmark::DynaMath,
        Benchmark::AOkvqa,
        Benchmark::RealWorldQa,
        Benchmark::MmStar,
        Benchmark::Pope,
    ];

    /// The benchmark's name as the paper writes it.
    pub fn name(self) -> &'static str {
        match self {
            Benchmark::MathVista => "MathVista",
            Benchmark::MathVision => "MathVision",
            Benchmark::MathVerse => "MathVerse",
            Benchmark::WeMath => "WeMath",
            Benchmark::DynaMath => "DynaMath",
            Benchmark::AOkvqa => "A-OKVQA",
            Benchmark::RealWorldQa => "RealWorldQA",
            Benchmark::MmStar => "MMStar",
            Benchmark::Pope => "POPE",
        }
    }

    /// The capability group it counts towards.
    pub fn group(self) -> Group {
        match self {
            Benchmark::MathVista
            | Benchmark::MathVision
            | Benchmark::MathVerse
            | Benchmark::WeMath
            | Benchmark::DynaMath => Group::VisualMath,
            Benchmark::AOkvqa | Benchmark::RealWorldQa | Benchmark::MmStar | Benchmark::Pope => {
                Group::Perception
            }
        }
    }

    /// Whether the paper's group averages include it (all but DynaMath).
    pub fn in_paper_average(self) -> bool {
        self != Benchmark::DynaMath
    }

    /// The TSV columns it needs besides `index` and `image` (option columns `A`, `B`, … are
    /// read when present).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Benchmark::MathVista => &["question", "answer", "question_type", "answer_type"],
            Benchmark::MathVision => &["question", "answer"],
            Benchmark::MathVerse => &["question", "answer", "metadata"],
            Benchmark::WeMath => &["question", "answer", "ID", "key"],
            Benchmark::DynaMath => &["question", "answer", "answer_type", "qid"],
            Benchmark::AOkvqa | Benchmark::RealWorldQa | Benchmark::MmStar => &["question", "answer"],
            Benchmark::Pope => &["question", "answer"],
        }
    }

    /// How it is scored, in one line (the headline metric first).
    pub fn scoring(self) -> &'static str {
        match self {
            Benchmark::MathVista => {
                "accuracy (per task and skill); choices by can_infer, free-form answers by post_check"
            }
            Benchmark::MathVision => {
                "accuracy (per subject); choices by can_infer, free-form answers by is_equal"
            }
            Benchmark::MathVerse => {
                "accuracy (per problem version, subject, subfield); letters by can_infer_option, the MATH grader"
            }
            Benchmark::WeMath => "strict score (and loose; four-dimensional metric), answers by can_infer",
            Benchmark::DynaMath => "average-case accuracy (and worst case over variants), DynaMath's parser",
            Benchmark::AOkvqa | Benchmark::RealWorldQa | Benchmark::MmStar => {
                "accuracy (per category), answers by can_infer"
            }
            Benchmark::Pope => "F1 of `yes` (and accuracy, precision, recall per split), YOrN_Extraction",
        }
    }

    /// Reads the benchmark's TSV file and checks every row (the columns of [`Self::columns`]
    /// and what each benchmark needs of them). Errors name the file and the line.
    pub fn load(self, path: &Path) -> Result<BenchmarkData> {
        let rows = read_tsv(path, self.columns())?;
        for row in &rows {
            self.check(row).map_err(|problem| DataError::Tsv {
                path: path.to_path_buf(),
                line: row.line,
                problem,
            })?;
        }
        if rows.is_empty() {
            return Err(
                DataError::Tsv { path: path.to_path_buf(), line: 2, problem: "no rows".into() }.into()
            );
        }
        Ok(BenchmarkData { benchmark: self, path: path.to_path_buf(), rows })
    }

    /// Whether `row` has what scoring it needs.
    fn check(self, row: &TsvRow) -> std::result::Result<(), String> {
        require(row, "question")?;
        require(row, "answer")?;
        match self {
            Benchmark::MathVista => math::check_mathvista(row),
            Benchmark::MathVision => math::check_mathvision(row),
            Benchmark::MathVerse => math::check_mathverse(row),
            Benchmark::WeMath => wemath::check(row),
            Benchmark::DynaMath => dynamath::check(row),
            Benchmark::AOkvqa | Benchmark::RealWorldQa | Benchmark::MmStar => mcq::check(row),
            Benchmark::Pope => pope::check(row),
        }
    }

    /// The question text VLMEvalKit's `build_prompt` gives the model for `row` (without the
    /// images, which come first).
    pub fn prompt(self, row: &TsvRow) -> String {
        match self {
            Benchmark::MathVista | Benchmark::MathVision | Benchmark::MathVerse | Benchmark::Pope => {
                row.fields.get("question").cloned().unwrap_or_default()
            }
            Benchmark::WeMath => mcq::prompt(row, false),
            Benchmark::AOkvqa | Benchmark::RealWorldQa | Benchmark::MmStar => mcq::prompt(row, true),
            Benchmark::DynaMath => dynamath::prompt(row),
        }
    }
}

impl fmt::Display for Benchmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Benchmark {
    type Err = String;

    /// The benchmark named `s`, ignoring case and `-`, `_`, spaces (`mathvista`, `MMStar`,
    /// `a-okvqa`, `realworld_qa`, `math_vision`…); VLMEvalKit's subset suffixes (`_MINI`,
    /// `_MINI_Vision_Intensive`) are accepted. The error lists the names.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let key = |name: &str| -> String {
            name.chars().filter(|c| !matches!(c, '-' | '_' | ' ')).collect::<String>().to_lowercase()
        };
        let wanted = key(s);
        let wanted = ["minivisionintensive", "mini", "testmini"]
            .iter()
            .find_map(|suffix| wanted.strip_suffix(suffix).filter(|w| !w.is_empty()))
            .unwrap_or(&wanted);
        Benchmark::ALL.into_iter().find(|b| key(b.name()) == wanted).ok_or_else(|| {
            let names: Vec<&str> = Benchmark::ALL.iter().map(|b| b.name()).collect();
            format!("unknown benchmark `{s}` (one of {})", names.join(", "))
        })
    }
}

/// The trimmed, present value of column `name` of `row`, or an error naming the column.
pub(crate) fn require<'a>(row: &'a TsvRow, name: &str) -> std::result::Result<&'a str, String> {
    row.get(name).ok_or_else(|| format!("empty `{name}`"))
}

/// Column `name` of `row` as VLMEvalKit's pandas reads it: `None` when the column is absent or
/// the cell is one of pandas' missing values ([`python::pandas_missing`]), else the text as
/// written (untrimmed).
pub(crate) fn pandas_cell<'a>(row: &'a TsvRow, name: &str) -> Option<&'a str> {
    row.fields.get(name).map(String::as_str).filter(|text| !python::pandas_missing(text))
}

/// The prediction VLMEvalKit scores for `row` ([`matching::scored_prediction`] of its response
/// among `predictions`, row index → response; a row without one is scored as an empty response).
pub(crate) fn prediction<'a>(predictions: &'a HashMap<String, String>, row: &TsvRow) -> &'a str {
    matching::scored_prediction(predictions.get(&row.index).map_or("", String::as_str))
}

/// Choices in how benchmarks are scored; the default is VLMEvalKit's rules, the paper's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Grade MathVista's and MATH-Vision's free-form answers, once extracted, with the reward
    /// crate's MATH grader ([`seethink_reward::grade_answer`]: `5.0` is `5`, `\frac{1}{2}` is
    /// `0.5`) instead of VLMEvalKit's `post_check` and `is_equal` ([`math`]).
    pub math_grader: bool,
}

/// A benchmark's rows, checked ([`Benchmark::load`]).
#[derive(Clone, Debug)]
pub struct BenchmarkData {
    /// The benchmark.
    pub benchmark: Benchmark,
    /// The TSV file.
    pub path: PathBuf,
    /// Its rows, in file order.
    pub rows: Vec<TsvRow>,
}

impl BenchmarkData {
    /// The rows as tasks for a model: id = the row's `index`, prompt = one `<image>` line per
    /// image then [`Benchmark::prompt`], the row's images, answer = the `answer` column,
    /// capability = the group's ([`Group::capability`]), source = the benchmark's name, `meta` =
    /// every column but the image.
    pub fn tasks(&self) -> Vec<Task> {
        self.rows
            .iter()
            .map(|row| Task {
                id: row.index.clone(),
                prompt: format!("{IMAGE_MARKER}\n").repeat(row.images.len()) + &self.benchmark.prompt(row),
                images: row.images.iter().cloned().map(ImageRef::Bytes).collect(),
                answer: row.get("answer").unwrap_or_default().to_string(),
                capability: self.benchmark.group().capability(),
                level: None,
                pass_rate: None,
                source: self.benchmark.name().to_string(),
                meta: serde_json::to_value(&row.fields).unwrap_or_default(),
            })
            .collect()
    }

    /// Scores `predictions` (row index → the model's response; one for every row, see
    /// [`predictions::match_rows`]) with the benchmark's rules, VLMEvalKit's
    /// ([`ScoreOptions::default`]).
    pub fn score(&self, predictions: &HashMap<String, String>) -> Result<BenchmarkReport> {
        self.score_with(predictions, ScoreOptions::default())
    }

    /// [`Self::score`] with the choices of `options`.
    pub fn score_with(
        &self,
        predictions: &HashMap<String, String>,
        options: ScoreOptions,
    ) -> Result<BenchmarkReport> {
        let scores = match self.benchmark {
            Benchmark::MathVista => math::score_mathvista(&self.rows, predictions, options),
            Benchmark::MathVision => math::score_mathvision(&self.rows, predictions, options),
            Benchmark::MathVerse => math::score_mathverse(&self.rows, predictions),
            Benchmark::WeMath => wemath::score(&self.rows, predictions),
            Benchmark::DynaMath => dynamath::score(&self.rows, predictions),
            Benchmark::AOkvqa | Benchmark::RealWorldQa | Benchmark::MmStar => {
                mcq::score(&self.rows, predictions)
            }
            Benchmark::Pope => pope::score(&self.rows, predictions),
        };
        Ok(BenchmarkReport {
            benchmark: self.benchmark,
            data: self.path.display().to_string(),
            metric: scores.metric.to_string(),
            score: scores.score,
            tables: scores.tables,
            items: scores.items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_loosely() {
        for b in Benchmark::ALL {
            assert_eq!(b.name().parse::<Benchmark>(), Ok(b));
            assert_eq!(b.name().to_lowercase().parse::<Benchmark>(), Ok(b));
        }
        assert_eq!("mathvista".parse(), Ok(Benchmark::MathVista));
        assert_eq!("MathVista_MINI".parse(), Ok(Benchmark::MathVista));
        assert_eq!("MathVerse_MINI_Vision_Intensive".parse(), Ok(Benchmark::MathVerse));
        assert_eq!("aokvqa".parse(), Ok(Benchmark::AOkvqa));
        assert_eq!("real_world_qa".parse(), Ok(Benchmark::RealWorldQa));
        assert_eq!("pope".parse(), Ok(Benchmark::Pope));
        let e = "mmbench".parse::<Benchmark>().unwrap_err();
        assert!(e.contains("unknown benchmark `mmbench`") && e.contains("MMStar"), "{e}");
        assert!("mini".parse::<Benchmark>().is_err());
    }

    #[test]
    fn groups_follow_the_paper() {
        let average: Vec<&str> =
            Benchmark::ALL.iter().filter(|b| b.in_paper_average()).map(|b| b.name()).collect();
        assert_eq!(average.len(), 8);
        assert!(!average.contains(&"DynaMath"));
        assert_eq!(Benchmark::ALL.iter().filter(|b| b.group() == Group::Perception).count(), 4);
    }
}
