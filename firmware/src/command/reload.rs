//! `reload` (the MQTT action, SIGHUP, the unit's `ExecReload`): the config file is read and
//! checked again, as `check-config` does. A file that fails is refused with every problem and
//! the running config is kept, so a typo never takes a door down. A file that passes is taken
//! in place when only what the pipeline reads changed (people, matching, quality, decision,
//! privacy, time zone); anything else (broker, camera, model, screen, relay...) needs the
//! device opened again, which the caller does after answering.

use crate::config::{self, Config, ConfigError, Issue, LooseThreshold, Section};
use facegate_contract::ModelCard;
use std::path::Path;

/// What a checked reload asks of the device.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Take `0` in place: only the pipeline's settings or the people changed (or nothing).
    InPlace(Box<Config>),
    /// Open the device again with `cfg`: `sections` changed.
    Restart {
        /// The new config.
        cfg: Box<Config>,
        /// What changed that only a restart takes.
        sections: Vec<Section>,
    },
}

/// Why a reload was refused; the running config stays in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The device was opened from a config in memory, not from a file.
    #[error("this device was not started from a config file: there is nothing to re-read")]
    NoFile,
    /// The file cannot be read or does not check.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A person's threshold is looser than the model allows.
    #[error("{0}")]
    Threshold(#[from] LooseThreshold),
    /// The model card the new file names cannot be read.
    #[error("model card {path}: {reason}")]
    Card {
        /// The card.
        path: String,
        /// Why.
        reason: String,
    },
}

impl ReloadError {
    /// Every problem with its line and field, for the caller to fix in one pass.
    pub fn problems(&self) -> Vec<Issue> {
        match self {
            Self::Config(ConfigError::Invalid { issues, .. }) => issues.clone(),
            Self::Threshold(t) => vec![Issue {
                line: None,
                field: t.field.clone(),
                message: t.to_string(),
            }],
            Self::Card { path, reason } => vec![Issue {
                line: None,
                field: "model.card".into(),
                message: format!("{path}: {reason}"),
            }],
            Self::NoFile | Self::Config(ConfigError::Read { .. }) => Vec::new(),
        }
    }
}

/// Reads and checks the config at `path` against the `running` one and the loaded model's
/// `card`: what to do, or why nothing will be done.
pub fn plan(path: &Path, running: &Config, card: &ModelCard) -> Result<Plan, ReloadError> {
    let next = config::load(path)?;
    let sections = running.restart_needed_for(&next);
    if sections.contains(&Section::Model) {
        // Another model: people's thresholds are checked against its card before anything
        // stops, so that the restart cannot fail on them.
        let card_path = next
            .model_card
            .clone()
            .unwrap_or_else(facegate_pipeline::model::default_card);
        let other = ModelCard::load(&card_path).map_err(|e| ReloadError::Card {
            path: card_path.display().to_string(),
            reason: e.to_string(),
        })?;
        next.check_thresholds(&other)?;
    } else {
        next.check_thresholds(card)?;
    }
    Ok(if sections.is_empty() {
        Plan::InPlace(Box::new(next))
    } else {
        Plan::Restart {
            cfg: Box::new(next),
            sections,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("facegate-reload-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    }

    fn card() -> ModelCard {
        ModelCard::load(&facegate_pipeline::model::default_card()).expect("the shipped card")
    }

    const BASE: &str = "[device]\nid = \"door\"\n[storage]\ndir = \"state\"\n\
                        [source]\nkind = \"image\"\npath = \"photo.png\"\n";

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let photo = image::RgbImage::new(8, 8);
        photo.save(dir.join("photo.png")).expect("photo");
        let path = dir.join("facegate.toml");
        std::fs::write(&path, text).expect("config");
        path
    }

    #[test]
    fn a_change_of_decision_rules_is_taken_in_place_and_a_broker_change_needs_a_restart() {
        let dir = scratch("plans");
        let path = write(&dir, BASE);
        let running = config::load(&path).expect("checks");
        let unchanged = plan(&path, &running, &card()).expect("checks");
        assert_eq!(unchanged, Plan::InPlace(Box::new(running.clone())));

        write(&dir, &format!("{BASE}[decision]\nagreeing_frames = 3\n"));
        assert!(matches!(
            plan(&path, &running, &card()),
            Ok(Plan::InPlace(c)) if c.decision.agreeing_frames == 3
        ));

        write(
            &dir,
            &format!(
                "{BASE}[mqtt]\nport = 1884\n[frigate]\nenabled = true\n[metrics]\nenabled = true\n"
            ),
        );
        match plan(&path, &running, &card()) {
            Ok(Plan::Restart { sections, cfg }) => {
                assert_eq!(
                    sections,
                    [Section::Mqtt, Section::Frigate, Section::Metrics]
                );
                assert_eq!(cfg.mqtt.port, 1884);
            }
            other => panic!("expected a restart: {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_fails_its_check_is_refused_with_every_problem_and_its_line() {
        let dir = scratch("broken");
        let path = write(&dir, BASE);
        let running = config::load(&path).expect("checks");
        write(
            &dir,
            &format!(
                "{BASE}[decision]\nagreeing_frames = 0\n[mqtt]\nport = 0\n\
                 [metrics]\nenabled = true\nport = 0\n"
            ),
        );
        let err = plan(&path, &running, &card()).expect_err("refused");
        let problems = err.problems();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"decision.agreeing_frames"), "{problems:?}");
        assert!(fields.contains(&"mqtt.port"), "{problems:?}");
        assert!(fields.contains(&"metrics.port"), "{problems:?}");
        assert!(problems.iter().all(|p| p.line.is_some()), "{problems:?}");

        std::fs::remove_file(&path).expect("remove");
        let gone = plan(&path, &running, &card()).expect_err("refused");
        assert!(gone.to_string().contains("facegate.toml"), "{gone}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
