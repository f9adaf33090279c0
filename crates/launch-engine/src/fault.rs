//! Deliberate faults, for the tests of the host's last line of defence: a debug build panics
//! at the point named by `LAUNCH_HOST_FAULT`. Release builds compile this to nothing.

/// The variable that names the point to fail at.
#[cfg(debug_assertions)]
pub const VAR: &str = "LAUNCH_HOST_FAULT";

/// Panics here when `LAUNCH_HOST_FAULT` names `point` (debug builds only).
pub fn point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var(VAR).is_ok_and(|v| v == point) {
        panic!("deliberate fault at `{point}` ({VAR})");
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Whether `LAUNCH_HOST_FAULT` names `point` (debug builds only; always false in release).
pub fn active(point: &str) -> bool {
    #[cfg(debug_assertions)]
    return std::env::var(VAR).is_ok_and(|v| v == point);
    #[cfg(not(debug_assertions))]
    {
        let _ = point;
        false
    }
}
