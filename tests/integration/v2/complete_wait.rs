//! `POST /builds/{id}/complete` while another build's live claim holds a member
//! (docs/v2.md, "Two processes, one DAG"): the SDK counts a task done once its
//! target exists, which the other process writes just before it reports, so the
//! completion waits (bounded) for that report instead of refusing at once.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

#[tokio::test]
async fn complete_waits_for_a_member_another_build_is_finishing() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let holder = api.flow(&["k"], &[leaf("k")], true).await;
    let waiter = api.flow(&["k"], &[leaf("k")], true).await;
    let exec = api.claim(&holder.plan, "k", None).await;

    // The waiter completes while the holder is still finishing `k`: its answer
    // comes once the holder's report lands, and it is the completion.
    let complete = format!("/builds/{}/complete", waiter.build);
    let empty = json!({});
    let started = Instant::now();
    let (done, reported) = tokio::join!(api.post(&complete, &empty), async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        api.complete(&holder.plan, "k", &exec).await
    });
    reported.expect(200);
    let done = done.expect(200);
    assert_eq!(done["status"], "completed", "{done}");
    assert!(started.elapsed() >= Duration::from_millis(400));

    // The holder's own build is not made to wait for itself: a member it still holds
    // is refused at once.
    let own = api.flow(&["m"], &[leaf("m")], true).await;
    let own_exec = api.claim(&own.plan, "m", None).await;
    let started = Instant::now();
    let d = refused(
        &api.post_empty(&format!("/builds/{}/complete", own.build))
            .await,
        409,
        "plan_incomplete",
    );
    assert_eq!(d["reason"], "members_incomplete", "{d}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no wait on its own claim"
    );

    // When the other build's execution fails instead, the waiter's answer is the
    // refusal, as soon as the claim ends.
    let other = api.flow(&["m"], &[leaf("m")], true).await;
    let complete = format!("/builds/{}/complete", other.build);
    let started = Instant::now();
    let (answer, failed) = tokio::join!(api.post_empty(&complete), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.fail(&own.plan, "m", &own_exec).await
    });
    failed.expect(200);
    let d = refused(&answer, 409, "plan_incomplete");
    assert_eq!(d["task_ids"], json!([tid("m")]), "{d}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused once the claim ended"
    );

    // A member nobody holds is refused at once, as before.
    let idle = api.flow(&["n"], &[leaf("n")], true).await;
    let started = Instant::now();
    let d = refused(
        &api.post_empty(&format!("/builds/{}/complete", idle.build))
            .await,
        409,
        "plan_incomplete",
    );
    assert_eq!(d["reason"], "members_incomplete", "{d}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
