//! What `--resume` accepts, the same for both trainers.
//!
//! A run folder holds its settings (`config.json`). A resumed run takes them from there: a flag
//! given with `--resume` may only repeat its stored setting ([`resumed_config`] refuses one that
//! differs, naming the flag and both values), and `--epochs`, the total, may only grow
//! ([`check_epochs`]); the grown total is written back to `config.json` by the trainer, so that a
//! plain `--resume` later continues to it. A fresh run refuses a folder that [`holds_run`].

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;
use crate::settings::{RESUME, Setting, flag};

/// Whether `dir` holds a run: its `config.json`, or a `checkpoint/` folder (also one left without
/// a configuration, whose stale checkpoints a fresh run must not mix with its own).
pub fn holds_run(dir: &Path) -> bool {
    ["config.json", "checkpoint", "checkpoint.old"]
        .iter()
        .any(|name| dir.join(name).exists())
}

/// Refuses a fresh run into `dir` when it [`holds_run`].
///
/// # Errors
/// As said, naming the folder.
pub fn check_fresh(dir: &Path) -> Result<(), Error> {
    if holds_run(dir) {
        return Err(Error::file(
            dir,
            "holds a run already: resume it, or choose another folder",
        ));
    }
    Ok(())
}

/// Refuses to resume the run whose `config.json` (at `path`) holds `stored` with a `given`
/// configuration that differs from it but for the epochs (a library caller's mistake; the
/// programs build `given` with [`resumed_config`]).
///
/// # Errors
/// The differences, as `setting: stored → given` (setting [`RESUME`]).
pub fn check_same_settings<C: Serialize>(stored: &C, given: &C, path: &Path) -> Result<(), Error> {
    let differences = differences(stored, given);
    if !differences.is_empty() {
        return Err(Error::invalid(
            RESUME,
            format!(
                "{}: the run was made with other settings ({}); resume with its own settings or \
                 choose another folder",
                path.display(),
                differences.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The configuration of a resumed run: `stored`, with `given`'s epochs when `--epochs` was given
/// (`explicit("epochs")`), after checking that each of `settings` whose flags were given repeats
/// the stored value (but the epochs, which [`check_epochs`] checks). `config` names the stored
/// file in the message.
///
/// # Errors
/// A given flag whose value differs from the stored setting (setting [`RESUME`]), listing each as
/// `--flag gives X, the run has Y`.
pub fn resumed_config<C: Serialize + DeserializeOwned>(
    stored: &C,
    given: &C,
    explicit: &dyn Fn(&str) -> bool,
    settings: &[Setting],
    config: &Path,
) -> Result<C, Error> {
    let json = |c: &C| serde_json::to_value(c).expect("a configuration serializes");
    let (mut stored, given) = (json(stored), json(given));
    let null = Value::Null;
    let changed: Vec<String> = settings
        .iter()
        .filter(|s| s.pointer != "/epochs" && s.flags.iter().any(|f| explicit(f)))
        .filter_map(|s| {
            let (was, now) = (
                stored.pointer(s.pointer).unwrap_or(&null),
                given.pointer(s.pointer).unwrap_or(&null),
            );
            let flags: Vec<String> = s
                .flags
                .iter()
                .filter(|f| explicit(f))
                .map(|f| flag(f))
                .collect();
            (was != now).then(|| format!("{} gives {now}, the run has {was}", flags.join(" ")))
        })
        .collect();
    if !changed.is_empty() {
        return Err(Error::invalid(
            RESUME,
            format!(
                "the run of {} was made with other settings: {}; drop these flags to resume it, \
                 or train into another folder",
                config.display(),
                changed.join("; ")
            ),
        ));
    }
    if explicit("epochs") {
        stored["epochs"] = given["epochs"].clone();
    }
    Ok(serde_json::from_value(stored).expect("the stored configuration deserializes"))
}

/// Checks the total of epochs a resumed run asks for against the stored total and the epochs
/// done: it may only grow. Returns `Some((stored, requested))` when it grows (the trainer records
/// it), `None` when it is the stored total.
///
/// # Errors
/// Fewer epochs than stored or done (setting `epochs`).
pub fn check_epochs(
    stored: usize,
    done: usize,
    requested: usize,
) -> Result<Option<(usize, usize)>, Error> {
    if requested < stored.max(done) {
        return Err(Error::invalid(
            "epochs",
            format!(
                "may only grow when the run is resumed: the run has {stored} epochs ({done} done), got \
                 {requested}"
            ),
        ));
    }
    Ok((requested > stored).then_some((stored, requested)))
}

/// The leaves where two configurations differ but for `epochs`, as `path: stored → given` (the
/// names of `config.json`): what a library caller that resumes with another configuration than
/// the stored one is told.
pub fn differences<C: Serialize>(stored: &C, given: &C) -> Vec<String> {
    let json = |c: &C| {
        let mut value = serde_json::to_value(c).expect("a configuration serializes");
        if let Some(object) = value.as_object_mut() {
            object.remove("epochs");
        }
        value
    };
    let mut out = Vec::new();
    json_differences("", &json(stored), &json(given), &mut out);
    out
}

/// The leaves where two JSON values differ, with their paths.
fn json_differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<_> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let null = Value::Null;
                let (a, b) = (x.get(key).unwrap_or(&null), y.get(key).unwrap_or(&null));
                json_differences(&sub, a, b, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} → {b}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Config {
        epochs: usize,
        lr: f64,
        model: Model,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Model {
        codes: usize,
    }

    const SETTINGS: [Setting; 3] = [
        Setting::new(&["epochs"], "/epochs"),
        Setting::new(&["lr"], "/lr"),
        Setting::new(&["codes"], "/model/codes"),
    ];

    fn config(epochs: usize, lr: f64, codes: usize) -> Config {
        Config {
            epochs,
            lr,
            model: Model { codes },
        }
    }

    #[test]
    fn flags_may_repeat_the_stored_settings_and_epochs_may_change() {
        let stored = config(2, 1e-3, 8);
        let path = Path::new("run/config.json");
        // Flags at their defaults that were not given are not compared.
        let given = config(5, 0.1, 64);
        let only = |flags: &'static [&'static str]| move |f: &str| flags.contains(&f);
        let resumed = resumed_config(&stored, &given, &only(&["epochs"]), &SETTINGS, path);
        assert_eq!(resumed.unwrap(), config(5, 1e-3, 8));
        let same = config(2, 1e-3, 8);
        let resumed = resumed_config(&stored, &same, &only(&["lr", "codes"]), &SETTINGS, path);
        assert_eq!(resumed.unwrap(), stored);
        let error = resumed_config(&stored, &given, &only(&["lr", "codes"]), &SETTINGS, path)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "resume: the run of run/config.json was made with other settings: --lr gives 0.1, \
             the run has 0.001; --codes gives 64, the run has 8; drop these flags to resume it, \
             or train into another folder"
        );
    }

    #[test]
    fn epochs_may_only_grow() {
        assert_eq!(check_epochs(2, 2, 2).unwrap(), None);
        assert_eq!(check_epochs(2, 1, 5).unwrap(), Some((2, 5)));
        assert_eq!(
            check_epochs(2, 2, 1).unwrap_err().to_string(),
            "epochs: may only grow when the run is resumed: the run has 2 epochs (2 done), got 1"
        );
        assert!(check_epochs(2, 3, 2).is_err());
    }

    #[test]
    fn differences_name_the_settings_but_not_the_epochs() {
        let a = config(2, 1e-3, 8);
        assert!(differences(&a, &config(9, 1e-3, 8)).is_empty());
        assert_eq!(
            differences(&a, &config(2, 1e-3, 16)),
            ["model.codes: 8 → 16"]
        );
    }
}
