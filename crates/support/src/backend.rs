//! The choice of backend: the cargo features `flex` (default), `ndarray` and `wgpu` build them;
//! the programs run on the most specific one enabled (wgpu, then ndarray, then flex), or on the
//! one named by the environment variable `BURN_GUMBEL_BACKEND`; the tests compare against flex.

use std::sync::{Mutex, MutexGuard};

use burn::tensor::Device;

/// The backends compiled into this build, most specific first.
pub fn enabled_backends() -> Vec<&'static str> {
    [
        ("wgpu", cfg!(feature = "wgpu")),
        ("ndarray", cfg!(feature = "ndarray")),
        ("flex", cfg!(feature = "flex")),
    ]
    .into_iter()
    .filter_map(|(name, enabled)| enabled.then_some(name))
    .collect()
}

/// The device of the backend called `name` (`flex`, `ndarray` or `wgpu`).
///
/// # Errors
/// When no backend of that name is compiled in: the message lists the enabled ones and the
/// feature to build with.
pub fn backend_device(name: &str) -> Result<Device, String> {
    match name {
        #[cfg(feature = "flex")]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)] // burn-ndarray is deprecated upstream; users still ask for it
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        // Reached in builds without every backend.
        #[allow(unreachable_patterns)]
        "flex" | "ndarray" | "wgpu" => Err(format!(
            "backend '{name}' is not compiled in (enabled: {}); build with --features {name}",
            enabled_backends().join(", ")
        )),
        _ => Err(format!(
            "unknown backend '{name}': BURN_GUMBEL_BACKEND must be flex, ndarray or wgpu \
             (enabled in this build: {})",
            enabled_backends().join(", ")
        )),
    }
}

/// The device the programs run on: `BURN_GUMBEL_BACKEND` if set, else the most specific enabled
/// backend. Returns its name too, for the programs to print.
///
/// # Errors
/// When `BURN_GUMBEL_BACKEND` names a backend that is not compiled in, or none is.
pub fn select_device() -> Result<(String, Device), String> {
    let name = match std::env::var("BURN_GUMBEL_BACKEND") {
        Ok(name) if !name.trim().is_empty() => name.trim().to_string(),
        _ => enabled_backends()
            .first()
            .ok_or("no backend compiled in: build with --features flex, ndarray or wgpu")?
            .to_string(),
    };
    let device = backend_device(&name)?;
    Ok((name, device))
}

/// [`select_device`] for programs without flags: on error, prints it and exits with code 2.
pub fn select_device_or_exit() -> (String, Device) {
    select_device().unwrap_or_else(|error| {
        eprintln!("error: {error}");
        std::process::exit(2);
    })
}

/// The reference device of the tests: flex when it is built, else the first enabled backend.
pub fn reference_device() -> Device {
    #[cfg(feature = "flex")]
    return Device::flex();
    #[cfg(not(feature = "flex"))]
    return select_device_or_exit().1;
}

/// Burn's backends seed one global generator each, so tests that seed and draw must not
/// interleave: every test that seeds a device holds this lock.
static RNG: Mutex<()> = Mutex::new(());

/// Takes the lock that serializes the device tests (a failed test does not poison the others).
pub fn rng_lock() -> MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_backend_is_a_clear_error() {
        let error = backend_device("cuda").unwrap_err();
        assert!(
            error.starts_with(
                "unknown backend 'cuda': BURN_GUMBEL_BACKEND must be flex, ndarray or wgpu"
            ),
            "{error}"
        );
        if !enabled_backends().contains(&"wgpu") {
            let error = backend_device("wgpu").unwrap_err();
            assert!(error.ends_with("build with --features wgpu"), "{error}");
        }
    }

    #[test]
    fn every_enabled_backend_has_a_device() {
        for name in enabled_backends() {
            assert!(backend_device(name).is_ok(), "{name}");
        }
    }
}
