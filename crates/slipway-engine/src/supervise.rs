//! Background tasks that outlive their own failures: a task that panics or fails is logged and
//! started again after a pause that grows while it keeps failing.

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use futures::FutureExt;

/// First pause before a restart.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between restarts.
const LONGEST_PAUSE: Duration = Duration::from_secs(30);
/// A task that ran this long before failing starts again after the first pause.
const HEALTHY: Duration = Duration::from_secs(60);

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

/// Runs `fut`, turning a panic inside it into an error with the panic's message.
pub async fn catch<T>(fut: impl Future<Output = T>) -> Result<T, String> {
    std::panic::AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|p| panic_message(p.as_ref()))
}

/// Pauses between restarts: doubling from [`FIRST_PAUSE`] to [`LONGEST_PAUSE`], and back to
/// the first after a task stayed up for a while.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_PAUSE }
    }
}

impl Backoff {
    /// The pause before the next try, given how long the last one ran.
    pub fn after(&mut self, ran: Duration) -> Duration {
        if ran >= HEALTHY {
            self.next = FIRST_PAUSE;
        }
        let pause = self.next;
        self.next = (self.next * 2).min(LONGEST_PAUSE);
        pause
    }
}

/// Runs the task `start` makes until it ends well (`Ok`); when it fails or panics, logs why and
/// starts a new one after a backoff.
pub async fn restarting<F, Fut>(name: &'static str, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut backoff = Backoff::default();
    loop {
        let began = tokio::time::Instant::now();
        let why = match catch(start()).await {
            Ok(Ok(())) => return,
            Ok(Err(why)) => format!("failed: {why}"),
            Err(why) => format!("panicked: {why}"),
        };
        let pause = backoff.after(began.elapsed());
        tracing::error!(
            task = name,
            "background task {why}; restarting in {pause:?}"
        );
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_and_fails_is_started_again_until_it_ends_well() {
        let tries = Arc::new(AtomicUsize::new(0));
        let t = tries.clone();
        restarting("test", move || {
            let t = t.clone();
            async move {
                match t.fetch_add(1, Ordering::SeqCst) {
                    0 => panic!("boom"),
                    1 => Err("broken".to_string()),
                    _ => Ok(()),
                }
            }
        })
        .await;
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_pause_doubles_up_to_a_limit_and_resets_after_a_healthy_run() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(1);
        assert_eq!(b.after(short), FIRST_PAUSE);
        assert_eq!(b.after(short), FIRST_PAUSE * 2);
        for _ in 0..20 {
            b.after(short);
        }
        assert_eq!(b.after(short), LONGEST_PAUSE);
        assert_eq!(b.after(HEALTHY), FIRST_PAUSE);
    }

    #[tokio::test]
    async fn a_panic_becomes_its_message() {
        assert_eq!(
            catch(async { panic!("at {}", 3) }).await,
            Err::<(), _>("at 3".into())
        );
        assert_eq!(catch(async { 5 }).await, Ok(5));
    }
}
