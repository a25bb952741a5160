//! An optional deadline for `tokio::select!` loops.

/// Completes at `at`, or never when there is no deadline: a `select!`
/// branch on it is simply idle while nothing is scheduled.
pub(crate) async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
