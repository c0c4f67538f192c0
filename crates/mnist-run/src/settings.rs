//! The settings of a run, by key, and the flags a program sets them with.
//!
//! The libraries name a wrong setting by its key ([`Error::Invalid`]): its path in `config.json`
//! (`learning_rate`, `model.codes`, `schedule.tau_min`) or a run option that `config.json` does
//! not hold ([`OUT_DIR`], [`RESUME`]). A program keeps one table of [`Setting`]s, from its flags
//! to the settings they set; [`named_by_flags`] renames an error's setting to the flag its user
//! typed (`learning_rate` → `--lr`), and [`resumed_config`](crate::resume::resumed_config)
//! compares the flags given on a resume with the stored settings.

use crate::error::Error;

/// The key of the run folder option (`RunOptions::out_dir`; the programs' `--out`).
pub const OUT_DIR: &str = "out_dir";
/// The key of the resume option (the programs' `--resume`).
pub const RESUME: &str = "resume";

/// The run options both programs have, by key and flag (not settings of `config.json`).
const RUN_OPTIONS: [(&str, &str); 2] = [(OUT_DIR, "--out"), (RESUME, "--resume")];

/// A setting of `config.json` and the flags that set it (clap's ids: `batch_size` for
/// `--batch-size`).
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The flags, as clap names them.
    pub flags: &'static [&'static str],
    /// Where it is in `config.json`, as a JSON pointer (`/model/codes`).
    pub pointer: &'static str,
}

impl Setting {
    /// The setting at `pointer` that `flags` set.
    pub const fn new(flags: &'static [&'static str], pointer: &'static str) -> Self {
        Self { flags, pointer }
    }

    /// Its key, as errors name it: the pointer's path with dots (`/model/codes` → `model.codes`).
    pub fn key(&self) -> String {
        self.pointer.trim_start_matches('/').replace('/', ".")
    }

    /// The flag of the part `field` of this setting (`tau_min` of a schedule set by `--tau`,
    /// `--tau-min`, ...): the flag whose id is `field` or ends with `_field` (`rate` →
    /// `--anneal-rate`); all its flags when none is.
    fn flag_of_field(&self, field: &str) -> String {
        let suffix = format!("_{field}");
        self.flags
            .iter()
            .find(|id| **id == field)
            .or_else(|| self.flags.iter().find(|id| id.ends_with(&suffix)))
            .map(|id| flag(id))
            .unwrap_or_else(|| {
                self.flags
                    .iter()
                    .map(|id| flag(id))
                    .collect::<Vec<_>>()
                    .join("/")
            })
    }
}

/// The flag of clap's id `id` (`batch_size` → `--batch-size`).
pub fn flag(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

/// The flag that sets the setting `key` in a program whose table is `settings`: a run option's
/// ([`OUT_DIR`] → `--out`), the first flag of the setting at `key` (`data` → `--mnist`), or, for a
/// part of a setting (`schedule.tau_min`), the flag of that part; `None` when no flag sets it.
pub fn flag_of(settings: &[Setting], key: &str) -> Option<String> {
    if let Some((_, flag)) = RUN_OPTIONS.iter().find(|(k, _)| *k == key) {
        return Some(flag.to_string());
    }
    settings.iter().find_map(|setting| {
        let own = setting.key();
        if key == own {
            return setting.flags.first().map(|id| flag(id));
        }
        let field = key.strip_prefix(own.as_str())?.strip_prefix('.')?;
        Some(setting.flag_of_field(field))
    })
}

/// `error` as a program's user reads it: the setting of an [`Error::Invalid`] renamed to the flag
/// that sets it ([`flag_of`]); other errors, and settings no flag sets, as they are.
pub fn named_by_flags(error: Error, settings: &[Setting]) -> Error {
    match error {
        Error::Invalid { setting, message } => Error::Invalid {
            setting: flag_of(settings, &setting).unwrap_or(setting),
            message,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: [Setting; 4] = [
        Setting::new(&["lr"], "/learning_rate"),
        Setting::new(&["mnist", "embedded"], "/data"),
        Setting::new(&["codes"], "/model/codes"),
        Setting::new(
            &["tau", "tau0", "anneal_rate", "tau_min", "anneal_interval"],
            "/model/schedule",
        ),
    ];

    #[test]
    fn each_key_is_named_by_the_flag_that_sets_it() {
        let named = |key: &str| flag_of(&SETTINGS, key);
        assert_eq!(named("learning_rate").as_deref(), Some("--lr"));
        assert_eq!(named("data").as_deref(), Some("--mnist"));
        assert_eq!(named("model.codes").as_deref(), Some("--codes"));
        assert_eq!(named(OUT_DIR).as_deref(), Some("--out"));
        assert_eq!(named(RESUME).as_deref(), Some("--resume"));
        // The parts of the schedule, each by its flag.
        assert_eq!(named("model.schedule.tau").as_deref(), Some("--tau"));
        assert_eq!(
            named("model.schedule.tau_min").as_deref(),
            Some("--tau-min")
        );
        assert_eq!(
            named("model.schedule.rate").as_deref(),
            Some("--anneal-rate")
        );
        assert_eq!(
            named("model.schedule.interval").as_deref(),
            Some("--anneal-interval")
        );
        assert_eq!(
            named("model.schedule.other").as_deref(),
            Some("--tau/--tau0/--anneal-rate/--tau-min/--anneal-interval")
        );
        // A key no flag sets, and a key that only starts like one.
        assert_eq!(named("model.hidden"), None);
        assert_eq!(named("model.codes_extra"), None);
    }

    #[test]
    fn an_error_is_renamed_to_its_flag_and_nothing_else_changes() {
        let error = Error::invalid("learning_rate", "must be finite and > 0, got NaN");
        assert_eq!(
            named_by_flags(error, &SETTINGS).to_string(),
            "--lr: must be finite and > 0, got NaN"
        );
        let unknown = Error::invalid("BURN_GUMBEL_BACKEND", "no such backend");
        assert_eq!(
            named_by_flags(unknown, &SETTINGS).to_string(),
            "BURN_GUMBEL_BACKEND: no such backend"
        );
        let file = Error::file(std::path::Path::new("run/config.json"), "missing");
        assert_eq!(
            named_by_flags(file, &SETTINGS).to_string(),
            "run/config.json: missing"
        );
    }
}
