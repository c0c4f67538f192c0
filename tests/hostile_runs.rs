//! The hostile cases of a run folder, against both trainers through their library entries (what
//! the `train` and `discrete_vae` programs call): the same case must have the same outcome, one
//! line naming the file, or the setting by its key (which the programs name by its flag:
//! `learning_rate` is `--lr`), nothing written that a later run would trip on.
//!
//! Each case is a row of [`CASES`]: a name, what it does to a trainer, and what it expects.

use std::path::{Path, PathBuf};

use burn_gumbel::Estimator;
use burn_gumbel_support::{reference_device, rng_lock};
use categorical_vae::config::TrainingConfig;
use categorical_vae::model::VaeConfig;
use mnist_run::Error;
use mnist_run::data::{DataSource, Mnist};
use mnist_run::files::lock_run;
use mnist_run::signals::StopFlag;

/// The two trainers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trainer {
    /// `categorical_vae::training::train`, the dense loop.
    Dense,
    /// `discrete_vae::training::run`, through burn-train.
    Discrete,
}

/// What a case sets of a run.
#[derive(Clone, Debug)]
struct Settings {
    data: DataSource,
    epochs: usize,
    learning_rate: f64,
    adam_epsilon: f64,
    gumbel_rao: Option<usize>,
    stop: Option<usize>,
}

impl Settings {
    fn new(data: &Path) -> Self {
        Self {
            data: DataSource::Idx(data.to_path_buf()),
            epochs: 1,
            learning_rate: 1e-3,
            adam_epsilon: mnist_run::limits::ADAM_EPSILON,
            gumbel_rao: None,
            stop: None,
        }
    }
}

/// What a call returned: its error, if any, and the lines of its events.
struct Outcome {
    error: Option<Error>,
    events: Vec<String>,
}

impl Outcome {
    fn message(&self) -> String {
        self.error
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }
}

impl Trainer {
    /// Runs `settings` into `dir` (small models: 300 images, 3 steps an epoch).
    fn run(self, dir: &Path, settings: &Settings, resume: bool) -> Outcome {
        let device = reference_device();
        let stop = settings.stop.map(|signal| {
            let stop = StopFlag::new();
            stop.request(signal);
            stop
        });
        let estimator = match settings.gumbel_rao {
            Some(samples) => Estimator::GumbelRao { samples },
            None => Estimator::StraightThrough,
        };
        let mut events = Vec::new();
        let error = match self {
            Trainer::Dense => {
                let model = VaeConfig::new()
                    .with_hidden1(32)
                    .with_hidden2(16)
                    .with_hard(true)
                    .with_estimator(estimator);
                let config = TrainingConfig::new(model)
                    .with_epochs(settings.epochs)
                    .with_learning_rate(settings.learning_rate)
                    .with_adam_epsilon(settings.adam_epsilon)
                    .with_data(settings.data.clone());
                let options = categorical_vae::training::RunOptions {
                    interrupt: stop,
                    ..categorical_vae::training::RunOptions::new(dir).with_resume(resume)
                };
                config.data.load().and_then(|data| {
                    categorical_vae::training::train(&config, &data, &device, &options, |e| {
                        events.push(format!("{e:?}"))
                    })
                    .map(drop)
                })
            }
            Trainer::Discrete => {
                let mut config = discrete_vae::training::RunConfig::new(settings.data.clone());
                config.model = config
                    .model
                    .with_channels(2)
                    .with_codes(8)
                    .with_estimator(estimator);
                config.epochs = settings.epochs;
                config.learning_rate = settings.learning_rate;
                config.adam_epsilon = settings.adam_epsilon;
                let options = discrete_vae::training::RunOptions {
                    resume,
                    plain: true,
                    stop,
                };
                discrete_vae::training::run(&config, &device, dir, options, |e| {
                    events.push(format!("{e:?}"))
                })
                .map(drop)
            }
        };
        Outcome {
            error: error.err(),
            events,
        }
    }

    /// Whether the run in `dir` has a complete checkpoint.
    fn has_checkpoint(self, dir: &Path) -> bool {
        match self {
            Trainer::Dense => categorical_vae::checkpoint::latest_checkpoint(dir)
                .unwrap()
                .is_some(),
            Trainer::Discrete => {
                discrete_vae::checkpoint::latest(&discrete_vae::checkpoint::checkpoint_dir(dir))
                    .unwrap()
                    .is_some()
            }
        }
    }

    /// The model record of the newest checkpoint in `dir`.
    fn newest_model_record(self, dir: &Path) -> PathBuf {
        match self {
            Trainer::Dense => categorical_vae::checkpoint::require_checkpoint(dir)
                .unwrap()
                .dir
                .join("model.bpk"),
            Trainer::Discrete => {
                let checkpoints = discrete_vae::checkpoint::checkpoint_dir(dir);
                let found = discrete_vae::checkpoint::latest(&checkpoints)
                    .unwrap()
                    .unwrap();
                found.generation.record(&checkpoints, "model")
            }
        }
    }
}

/// A case: its name and what it does to a trainer in a fresh folder, with the data in `data`
/// (300 training and 100 test images), asserting its outcome.
type Case = (&'static str, fn(Trainer, &Path, &Path));

const CASES: [Case; 11] = [
    ("empty test split", |t, dir, _| {
        let empty = idx_data("empty-test", 300, 0);
        let out = t.run(dir, &Settings::new(&empty), false);
        assert_eq!(
            out.message(),
            format!(
                "data: the test set of MNIST IDX files in {} has no image",
                empty.display()
            )
        );
        assert!(!dir.exists(), "nothing written");
    }),
    ("empty training split", |t, dir, _| {
        let empty = idx_data("empty-train", 0, 100);
        let out = t.run(dir, &Settings::new(&empty), false);
        assert!(
            out.message()
                .starts_with("data: the training set of MNIST IDX files in "),
            "{}",
            out.message()
        );
        assert!(!dir.exists(), "nothing written");
    }),
    ("a learning rate that diverges", |t, dir, data| {
        let settings = Settings {
            learning_rate: 1e30,
            ..Settings::new(data)
        };
        let out = t.run(dir, &settings, false);
        assert!(
            out.message().starts_with("learning_rate: the loss became "),
            "{}",
            out.message()
        );
        assert!(out.message().ends_with("the run diverged; lower it"));
        assert!(
            !t.has_checkpoint(dir),
            "weights that are not finite were saved"
        );
    }),
    (
        "a fresh run into a folder that holds a run",
        |t, dir, data| {
            assert!(t.run(dir, &Settings::new(data), false).error.is_none());
            let out = t.run(dir, &Settings::new(data), false);
            assert_eq!(
                out.message(),
                format!(
                    "{}: holds a run already: resume it, or choose another folder",
                    dir.display()
                )
            );
        },
    ),
    (
        "a stale checkpoint folder without config.json",
        |t, dir, data| {
            std::fs::create_dir_all(dir.join("checkpoint")).unwrap();
            std::fs::write(dir.join("checkpoint").join("model-2.bpk"), b"stale").unwrap();
            let out = t.run(dir, &Settings::new(data), false);
            assert!(
                out.message()
                    .ends_with("holds a run already: resume it, or choose another folder"),
                "{}",
                out.message()
            );
            assert!(!dir.join("config.json").exists());
        },
    ),
    ("fewer epochs on resume, and more", |t, dir, data| {
        let two = Settings {
            epochs: 2,
            ..Settings::new(data)
        };
        assert!(t.run(dir, &two, false).error.is_none());
        let out = t.run(dir, &Settings::new(data), true);
        assert_eq!(
            out.message(),
            "epochs: may only grow when the run is resumed: the run has 2 epochs (2 done), got 1"
        );
        let three = Settings {
            epochs: 3,
            ..Settings::new(data)
        };
        let out = t.run(dir, &three, true);
        assert!(out.error.is_none(), "{}", out.message());
        assert!(
            out.events[0].starts_with("EpochsExtended { from: 2, to: 3 }"),
            "{:?}",
            out.events
        );
        let stored = std::fs::read_to_string(dir.join("config.json")).unwrap();
        assert!(stored.contains("\"epochs\": 3"), "recorded: {stored}");
    }),
    ("a folder in use by another run", |t, dir, data| {
        std::fs::create_dir_all(dir).unwrap();
        let held = lock_run(dir).unwrap();
        let out = t.run(dir, &Settings::new(data), false);
        assert!(out.message().starts_with("out_dir: "), "{}", out.message());
        assert!(out.message().contains("is in use by another run (process "));
        assert!(!dir.join("config.json").exists(), "nothing written");
        drop(held);
    }),
    (
        "bytes overwritten inside the newest checkpoint",
        |t, dir, data| {
            assert!(t.run(dir, &Settings::new(data), false).error.is_none());
            let record = t.newest_model_record(dir);
            let mut bytes = std::fs::read(&record).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle..middle + 64].fill(0xFF);
            std::fs::write(&record, bytes).unwrap();
            let two = Settings {
                epochs: 2,
                ..Settings::new(data)
            };
            let out = t.run(dir, &two, true);
            // Named, never loaded: the dense run keeps one checkpoint and stops with the line; the
            // discrete run passes over to the one before, or with none (here) stops with it.
            let damaged = format!(
                "{}: damaged: its SHA-256 differs from the checkpoint's manifest",
                record.display()
            );
            let said =
                out.message().contains(&damaged) || out.events.iter().any(|e| e.contains(&damaged));
            assert!(said, "{} {:?}", out.message(), out.events);
        },
    ),
    ("a signal", |t, dir, data| {
        let stopped = Settings {
            stop: Some(2),
            ..Settings::new(data)
        };
        let out = t.run(dir, &stopped, false);
        let Some(error @ Error::Interrupted { step: 1, .. }) = &out.error else {
            panic!("{}", out.message())
        };
        assert_eq!(error.exit_code(), 130);
        assert!(t.has_checkpoint(dir), "the step reached is saved");
        let out = t.run(dir, &Settings::new(data), true);
        assert!(out.error.is_none(), "{}", out.message());
    }),
    ("an Adam ε that is 0 in f32", |t, dir, data| {
        // In (0, 1] as an f64, but Adam keeps it in f32, where it is 0: refused as such, not
        // blamed on the learning rate after the run diverges.
        let settings = Settings {
            adam_epsilon: 1e-50,
            ..Settings::new(data)
        };
        let out = t.run(dir, &settings, false);
        assert_eq!(
            out.message(),
            "adam_epsilon: must be at least 1.1754944e-38, f32's smallest normal (Adam keeps it \
             in f32), got 1e-50"
        );
        assert!(!dir.exists(), "nothing written");
    }),
    ("Gumbel-Rao without bound", |t, dir, data| {
        let settings = Settings {
            gumbel_rao: Some(100_000),
            ..Settings::new(data)
        };
        let out = t.run(dir, &settings, false);
        assert!(
            out.message()
                .starts_with("model.estimator: gumbel-rao needs at most 1000 samples"),
            "{}",
            out.message()
        );
        assert!(!dir.exists(), "nothing written");
    }),
];

/// IDX files of the first `train` training and `test` test digits of the embedded subset, in a
/// folder named `name` (written once per process).
fn idx_data(name: &str, train: usize, test: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hostile-{name}-{}", std::process::id()));
    if dir.join("t10k-labels-idx1-ubyte").is_file() {
        return dir;
    }
    let mnist = Mnist::embedded();
    std::fs::create_dir_all(&dir).unwrap();
    for (prefix, images, n) in [("train", &mnist.train, train), ("t10k", &mnist.test, test)] {
        let images = images.clone().truncate(n);
        let header = |magic: u32, dims: &[u32]| -> Vec<u8> {
            let mut out = magic.to_be_bytes().to_vec();
            dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
            out
        };
        let mut pixels = header(0x803, &[n as u32, 28, 28]);
        pixels.extend_from_slice(&images.pixels);
        let mut labels = header(0x801, &[n as u32]);
        labels.extend_from_slice(&images.labels);
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), pixels).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
    dir
}

#[test]
fn both_trainers_meet_each_hostile_case_alike() {
    let _rng = rng_lock();
    let data = idx_data("small", 300, 100);
    for (name, case) in CASES {
        for trainer in [Trainer::Dense, Trainer::Discrete] {
            let dir = std::env::temp_dir().join(format!(
                "hostile-run-{}-{trainer:?}-{}",
                name.replace(' ', "-"),
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            println!("{trainer:?}: {name}");
            case(trainer, &dir, &data);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
