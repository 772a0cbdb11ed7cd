//! Producer retry cases (SPEC P10, B5): a push with `PushOptions::retry_for` waits through a
//! store that fails its pushes (the `FaultyStore` switch) and is written once when the store is
//! back; past its deadline it fails with the last error and nothing is written; a push that was
//! written but whose answer was lost is retried and still written once.

use crate::backend::Backend;
use crate::support::{faulty_bus, unique, within};
use busmq_core::{ConsumeOptions, Error, PushOptions};
use futures::StreamExt;
use std::time::Duration;

/// P10, B5: pushes that fail while the store is down are retried with their key until it is
/// back, then written once each, in order, and resolve to their ids.
pub async fn a_retrying_push_waits_for_the_store_and_is_written_once(backend: &dyn Backend) {
    let (b, faults) = faulty_bus(backend).await;
    let q = b.queue(unique("push-retry")).unwrap();
    q.attach().await.unwrap();
    faults.fail(&["push"]);
    let retry = || PushOptions::new().retry_for(Duration::from_secs(60));
    let first = q.push_with(&"a", retry().dedupe("a"));
    let second = q.push_with(&"b", retry());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(q.count().await.unwrap(), 0, "nothing written while pushes fail");
    faults.heal();
    let (first, second) = within("the retried pushes", async { (first.await, second.await) }).await;
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(first < second);
    assert_eq!(q.count().await.unwrap(), 2);
    let again = q.push_with(&"a", retry().dedupe("a")).await.unwrap();
    assert_eq!(again, first, "the retried push wrote its key");
}

/// P10: past its deadline a retrying push fails with the last (retryable) error; nothing is
/// written, and a plain push without retry fails at once as before.
pub async fn a_retrying_push_fails_with_the_last_error_after_its_deadline(backend: &dyn Backend) {
    let (b, faults) = faulty_bus(backend).await;
    let q = b.queue(unique("push-retry-deadline")).unwrap();
    q.attach().await.unwrap();
    faults.fail(&["push"]);
    let plain = q.push(&"plain").await;
    assert!(matches!(plain, Err(Error::Offline { .. })), "{plain:?}");
    let options = PushOptions::new().retry_for(Duration::from_millis(700));
    let failed = within("the retrying push", q.push_with(&"late", options)).await;
    assert!(matches!(failed, Err(Error::Offline { .. })), "{failed:?}");
    faults.heal();
    assert_eq!(q.count().await.unwrap(), 0);
}

/// P10, Q7: a detach (and so a bus disconnect, which detaches every handle) waits for the pushes
/// it accepted, but not for a retrying push's deadline: the push fails with its last error and
/// the detach returns. (On a paused clock the hour passes at once; the Redis rows are the test.)
pub async fn a_detach_does_not_wait_out_a_retrying_push(backend: &dyn Backend) {
    let (b, faults) = faulty_bus(backend).await;
    let q = b.queue(unique("push-retry-detach")).unwrap();
    q.attach().await.unwrap();
    faults.fail(&["push"]);
    let push = q.push_with(&"never", PushOptions::new().retry_for(Duration::from_secs(3600)));
    let (detached, pushed) = within("the detach and the retrying push", async {
        tokio::join!(
            async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                q.detach().await
            },
            push
        )
    })
    .await;
    detached.unwrap();
    assert!(matches!(pushed, Err(Error::Offline { .. })), "{pushed:?}");
    faults.heal();
}

/// P10, B5: a push that was written but whose answer was lost (a timeout after the store ran
/// it) is retried with its key, resolves to the id it was written with, and the queue holds it
/// once.
pub async fn a_retried_push_whose_answer_was_lost_is_written_once(backend: &dyn Backend) {
    let (b, faults) = faulty_bus(backend).await;
    let q = b.queue(unique("push-retry-lost")).unwrap();
    q.attach().await.unwrap();
    faults.lose_answers(&["push"]);
    let pushed = q.push_with(&"once", PushOptions::new().retry_for(Duration::from_secs(60)));
    let pushed = tokio::spawn(pushed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pushed.is_finished(), "a push whose answers are lost must keep retrying");
    assert_eq!(q.count().await.unwrap(), 1, "written once, however often it was retried");
    faults.heal();
    let id = within("the retried push", pushed).await.unwrap().unwrap();
    assert_eq!(q.count().await.unwrap(), 1);
    let mut messages = q.consume_with::<String>(ConsumeOptions::new().max(1)).await.unwrap();
    let delivery = within("the message", messages.next()).await.unwrap().unwrap();
    assert_eq!((delivery.id(), delivery.body().as_str()), (id, "once"));
}
