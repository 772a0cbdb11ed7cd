//! The end of a following command (`tail`, `sub`, `consume`, `chat`): Ctrl-C or a polite
//! `kill` (SIGTERM) stop it the normal way, so that it gives back what it holds and prints its
//! JSON document, instead of dying half-way.

/// Resolves when the user asks the command to stop.
pub(crate) async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
