//! The format prompt every question is rendered through before the chat template, as EasyR1's
//! data loader does: the template file's text stripped of surrounding whitespace, rendered as
//! Jinja with `content` = the question (`{{ content | trim }} …`).

use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// The paper's format prompt (UCSC-VLAA/VLM-CapCurriculum `training/format_prompts/math.jinja`):
/// EasyR1's math prompt plus ` i.e. <thinking> reasoning here </thinking> \boxed{final answer
/// here}`. Also shipped as `configs/format_prompts/paper.jinja`.
pub const PAPER: &str = include_str!("../../../../configs/format_prompts/paper.jinja");

/// Which format prompt a run uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum FormatPrompt {
    /// Questions as they are (`None` in configs written before the rename).
    #[serde(alias = "None")]
    Plain,
    /// [`PAPER`].
    #[default]
    Paper,
    /// A Jinja file with a `content` variable (EasyR1's `data.format_prompt`).
    File(PathBuf),
}

impl FormatPrompt {
    /// The template text, `None` for [`FormatPrompt::Plain`].
    pub fn template(&self) -> Result<Option<String>> {
        match self {
            Self::Plain => Ok(None),
            Self::Paper => Ok(Some(PAPER.to_string())),
            Self::File(path) => std::fs::read_to_string(path)
                .map(Some)
                .map_err(|source| TrainError::Io { path: path.clone(), source }),
        }
    }

    /// Renders every task's question through this format prompt ([`render`]); `origin` names
    /// the tasks in errors. Nothing happens for [`FormatPrompt::Plain`].
    pub fn apply(&self, tasks: &mut [seethink_data::Task], origin: &Path) -> Result<()> {
        if let Some(template) = self.template()? {
            for task in tasks {
                task.prompt = render(&template, &task.prompt, origin)?;
            }
        }
        Ok(())
    }
}

/// `template` (whitespace stripped at both ends, as EasyR1's `Template(text.strip())`)
/// rendered with `content`; `origin` names the template in errors.
pub fn render(template: &str, content: &str, origin: &Path) -> Result<String> {
    let error =
        |e: minijinja::Error| TrainError::Config { path: origin.to_path_buf(), message: e.to_string() };
    let mut env = Environment::new();
    env.add_template("format_prompt", template.trim()).map_err(error)?;
    env.get_template("format_prompt").map_err(error)?.render(minijinja::context! { content }).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_prompt_renders_character_for_character() {
        let rendered =
            render(PAPER, "  How many red circles are there?\n", Path::new("paper.jinja")).unwrap();
        assert_eq!(
            rendered,
            "How many red circles are there? You FIRST think about the reasoning process as an internal \
             monologue and then provide the final answer. The reasoning process MUST BE enclosed within \
             <think> </think> tags. The final answer MUST BE put in \\boxed{}. i.e. <thinking> reasoning \
             here </thinking> \\boxed{final answer here}"
        );
        let easyr1 = include_str!("../../../../configs/format_prompts/easyr1_math.jinja");
        let rendered =
            render(easyr1, "<image>Which shape is largest? ", Path::new("easyr1_math.jinja")).unwrap();
        assert!(rendered.starts_with("<image>Which shape is largest? You FIRST think"));
        assert!(rendered.ends_with("The final answer MUST BE put in \\boxed{}."));
    }

    #[test]
    fn a_broken_template_names_its_file() {
        let err = render("{{ content ", "x", Path::new("mine.jinja")).unwrap_err().to_string();
        assert!(err.contains("mine.jinja"), "{err}");
    }
}
