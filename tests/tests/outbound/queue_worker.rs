//! The queue worker: continuous claims (a slow destination holds up only
//! itself), lease renewal during a long delivery, claims lost or given back,
//! and one worker finishing a message — with a second store handle on the
//! same database as a second node.

use super::test_mx::{Stall, TestMx};
use super::{BODY, local, queue_empty, remote, submit, wait_for_mail, wait_until};
use pillarbox_store::queue::{
    OutboundMessage, OutboundRecipient, Outcome, QueueHolder, RecipientState,
};
use pillarbox_tests::{TestDb, backends};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_slow_destination_does_not_hold_up_mail_to_others() {
    for backend in backends() {
        let remote = remote(backend).await;
        let port = remote.addr("smtp").port();
        // slow.test's MX on the same port as remote.test's, at 127.0.0.2.
        let slow = TestMx::start(SocketAddr::from(([127, 0, 0, 2], port)), Stall::EndOfData).await;
        let local = local(backend, |c| c.smtp.queue.mx_port = port).await;

        let (_, done) = submit(&local, &["someone@slow.test"], BODY).await;
        assert!(done.starts_with("250"), "{done}");
        wait_until(
            Duration::from_secs(30),
            "slow.test has the data",
            async || slow.count(|s| &s.messages) == 1,
        )
        .await;

        // Queued after the stalled one: delivered while slow.test still stalls.
        let (_, done) = submit(&local, &["bob@remote.test"], BODY).await;
        assert!(done.starts_with("250"), "{done}");
        let started = Instant::now();
        let bob = wait_for_mail(&remote, "bob@remote.test", 1).await;
        assert!(bob[0].ends_with(BODY), "{}", bob[0]);
        assert_eq!(
            slow.count(|s| &s.answered),
            0,
            "{backend:?}: slow.test was still stalling when bob's message arrived"
        );
        let took = started.elapsed();
        eprintln!(
            "{backend:?}: bob's message arrived {took:?} after its submission, slow.test stalling"
        );
        assert!(took < Duration::from_secs(10), "{backend:?}: took {took:?}");

        slow.release();
        queue_empty(&local).await;
        assert_eq!(slow.count(|s| &s.messages), 1);
        assert_eq!(slow.count(|s| &s.connections), 1);
        local.stop().await;
        remote.stop().await;
    }
}

/// A short lease for the tests: 3 s, renewed every second.
fn short_lease(c: &mut pillarbox::config::Config, port: u16) {
    c.smtp.queue.mx_port = port;
    c.smtp.queue.lease_secs = 3;
    c.smtp.queue.lease_renew_secs = 1;
}

#[tokio::test]
async fn the_lease_is_renewed_while_a_long_delivery_runs() {
    for backend in backends() {
        let slow = TestMx::start(SocketAddr::from(([127, 0, 0, 2], 0)), Stall::EndOfData).await;
        let port = slow.addr.port();
        let local = local(backend, |c| short_lease(c, port)).await;
        // A second node on the same database.
        let node_b = local.db.store().await;
        let holder_b = QueueHolder::new();

        let (_, done) = submit(&local, &["someone@slow.test"], BODY).await;
        assert!(done.starts_with("250"), "{done}");
        wait_until(
            Duration::from_secs(30),
            "slow.test has the data",
            async || slow.count(|s| &s.messages) == 1,
        )
        .await;

        // Three leases long, the other node finds nothing to claim, and
        // the recipient's lease keeps moving on.
        let stalled = Instant::now();
        let mut lease_seen = 0;
        while stalled.elapsed() < Duration::from_secs(9) {
            let claimed = node_b
                .queue_claim(&holder_b, 100, Duration::from_secs(3))
                .await
                .unwrap();
            assert!(
                claimed.is_empty(),
                "{backend:?}: node B claimed a recipient in delivery after {:?}: {claimed:?}",
                stalled.elapsed()
            );
            let list = node_b.queue_list().await.unwrap();
            let r = &list[0].recipients[0];
            assert!(r.claimed_by.is_some(), "{r:?}");
            assert!(r.lease_until >= lease_seen, "{r:?}");
            lease_seen = r.lease_until;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let first = node_b.queue_list().await.unwrap()[0].recipients[0].clone();
        assert!(
            first.lease_until > pillarbox_now(),
            "{backend:?}: renewed: {first:?}"
        );

        slow.release();
        queue_empty(&local).await;
        assert_eq!(
            slow.count(|s| &s.messages),
            1,
            "{backend:?}: delivered exactly once"
        );
        assert_eq!(slow.count(|s| &s.connections), 1);
        node_b.close().await;
        local.stop().await;
    }
}

#[tokio::test]
async fn a_message_removed_during_its_delivery_is_dropped_before_the_data() {
    for backend in backends() {
        let slow = TestMx::start(SocketAddr::from(([127, 0, 0, 2], 0)), Stall::Greeting).await;
        let port = slow.addr.port();
        let local = local(backend, |c| short_lease(c, port)).await;
        let (_, done) = submit(&local, &["someone@slow.test"], BODY).await;
        assert!(done.starts_with("250"), "{done}");
        wait_until(
            Duration::from_secs(30),
            "the worker connects to slow.test",
            async || slow.count(|s| &s.connections) == 1,
        )
        .await;
        let id = local.store().queue_list().await.unwrap()[0].id;
        assert!(local.store().queue_remove(id).await.unwrap());
        // The next renewal (within a second) finds the claim gone.
        wait_until(
            Duration::from_secs(5),
            "the worker drops the connection",
            async || slow.count(|s| &s.dropped) == 1,
        )
        .await;
        slow.release();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(slow.count(|s| &s.messages), 0, "{backend:?}");
        local.stop().await;
    }
}

/// Two nodes on one database: when the first one's lease ended and the
/// second claimed the recipient, the first can neither renew nor record.
#[tokio::test]
async fn an_outcome_from_a_worker_whose_lease_passed_on_is_not_recorded() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let node_a = db.store().await;
        let node_b = db.store().await;
        let (holder_a, holder_b) = (QueueHolder::new(), QueueHolder::new());
        // Leases end on whole seconds: a 1 s lease taken at x.999 s would end
        // a millisecond later, and B's first claim below would already win.
        let lease = Duration::from_secs(3);
        node_a
            .queue(&OutboundMessage {
                sender: "alice@local.test".into(),
                data: bytes::Bytes::from_static(b"Subject: hi\r\n\r\nhi\r\n"),
                envid: None,
                ret_full: true,
                recipients: vec![OutboundRecipient {
                    address: "bob@remote.test".into(),
                    ..Default::default()
                }],
            })
            .await
            .unwrap();
        let claimed = node_a.queue_claim(&holder_a, 10, lease).await.unwrap();
        let id = claimed[0].recipients[0].id;
        assert_eq!(
            claimed[0].recipients[0].claimed_by.as_deref(),
            Some(holder_a.as_str())
        );
        assert!(
            node_b
                .queue_claim(&holder_b, 10, lease)
                .await
                .unwrap()
                .is_empty()
        );

        // A stops renewing; once the lease ends, B takes the recipient over.
        let start = Instant::now();
        let taken = loop {
            let claimed = node_b.queue_claim(&holder_b, 10, lease).await.unwrap();
            if !claimed.is_empty() {
                break claimed;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{backend:?}: never due again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(taken[0].recipients[0].id, id);

        // A, late: its renewal, its outcome and its release change nothing.
        assert!(
            node_a
                .queue_renew(&holder_a, &[id], lease)
                .await
                .unwrap()
                .is_empty()
        );
        let delivered = Outcome::Delivered {
            reply: "250 from A".into(),
        };
        assert_eq!(
            node_a
                .queue_record(&holder_a, &[(id, delivered)])
                .await
                .unwrap(),
            [id]
        );
        assert_eq!(node_a.queue_release(&holder_a, &[id]).await.unwrap(), 0);
        let r = node_a.queue_list().await.unwrap()[0].recipients[0].clone();
        assert_eq!(r.state, RecipientState::Pending, "{backend:?}: {r:?}");
        assert_eq!(r.attempts, 0);
        assert_eq!(r.claimed_by.as_deref(), Some(holder_b.as_str()));

        // B, the holder, renews and records.
        assert_eq!(
            node_b.queue_renew(&holder_b, &[id], lease).await.unwrap(),
            [id]
        );
        let deferred = Outcome::Deferred {
            next_attempt: pillarbox_now() + 600,
            error: "451 from B".into(),
        };
        assert!(
            node_b
                .queue_record(&holder_b, &[(id, deferred)])
                .await
                .unwrap()
                .is_empty()
        );
        let r = node_a.queue_list().await.unwrap()[0].recipients[0].clone();
        assert_eq!(r.state, RecipientState::Deferred, "{backend:?}: {r:?}");
        assert_eq!(r.last_error.as_deref(), Some("451 from B"));
        assert_eq!((r.attempts, r.claimed_by, r.lease_until), (1, None, 0));
        node_a.close().await;
        node_b.close().await;
        db.cleanup().await;
    }
}

fn pillarbox_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A server stopping mid-delivery waits a while, then drops the delivery and
/// gives its recipients back: after a restart they go out at once, not when
/// the (default, 5-minute) lease would have ended.
#[tokio::test]
async fn a_stopping_server_gives_back_the_recipients_it_was_delivering() {
    for backend in backends() {
        let slow = TestMx::start(SocketAddr::from(([127, 0, 0, 2], 0)), Stall::Greeting).await;
        let port = slow.addr.port();
        let mut local = local(backend, |c| c.smtp.queue.mx_port = port).await;
        let (_, done) = submit(&local, &["someone@slow.test"], BODY).await;
        assert!(done.starts_with("250"), "{done}");
        wait_until(
            Duration::from_secs(30),
            "the worker connects to slow.test",
            async || slow.count(|s| &s.connections) == 1,
        )
        .await;
        let stopping = Instant::now();
        local.restart().await;
        let stopped_in = stopping.elapsed();
        eprintln!("{backend:?}: stopped in {stopped_in:?} with a delivery stalled");
        assert!(stopped_in < Duration::from_secs(20), "{stopped_in:?}");
        assert_eq!(slow.count(|s| &s.dropped), 1, "{backend:?}");
        let r = local.store().queue_list().await.unwrap()[0].recipients[0].clone();
        assert_eq!(r.attempts, 0, "{backend:?}: no attempt counted: {r:?}");

        slow.release();
        wait_until(
            Duration::from_secs(10),
            "the restarted worker connects again",
            async || slow.count(|s| &s.connections) == 2,
        )
        .await;
        queue_empty(&local).await;
        assert_eq!(slow.count(|s| &s.messages), 1, "{backend:?}");
        local.stop().await;
    }
}

/// Finishing a message (the report, the removal) is taken by one worker
/// only, once every recipient is final; one that stopped before removing it
/// leaves it to the sweep when its lease ends.
#[tokio::test]
async fn one_worker_finishes_a_message_and_a_left_one_is_swept() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let node_a = db.store().await;
        let node_b = db.store().await;
        let (holder_a, holder_b) = (QueueHolder::new(), QueueHolder::new());
        // Whole-second leases: see the test above.
        let lease = Duration::from_secs(3);
        let id = node_a
            .queue(&OutboundMessage {
                sender: "alice@local.test".into(),
                data: bytes::Bytes::from_static(b"Subject: hi\r\n\r\nhi\r\n"),
                envid: None,
                ret_full: true,
                recipients: ["bob@remote.test", "carol@other.test"]
                    .map(|address| OutboundRecipient {
                        address: address.into(),
                        ..Default::default()
                    })
                    .to_vec(),
            })
            .await
            .unwrap();
        let claimed = node_a.queue_claim(&holder_a, 1, lease).await.unwrap();
        assert_eq!(
            claimed[0].recipients.len(),
            2,
            "{backend:?}: the message's other due recipient comes with the first"
        );
        let (bob, carol) = (claimed[0].recipients[0].id, claimed[0].recipients[1].id);
        let outcome = |text: &str| Outcome::Failed { error: text.into() };
        node_a
            .queue_record(&holder_a, &[(bob, outcome("550 no bob"))])
            .await
            .unwrap();
        assert!(
            node_b
                .queue_take_finished(&holder_b, id, lease)
                .await
                .unwrap()
                .is_none(),
            "{backend:?}: carol is not final yet"
        );
        node_a
            .queue_record(&holder_a, &[(carol, outcome("550 no carol"))])
            .await
            .unwrap();
        assert_eq!(node_a.queue_unfinished(10).await.unwrap(), [id]);
        let (a, b) = tokio::join!(
            node_a.queue_take_finished(&holder_a, id, lease),
            node_b.queue_take_finished(&holder_b, id, lease)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            a.is_some() != b.is_some(),
            "{backend:?}: exactly one takes it: {a:?} {b:?}"
        );
        assert!(node_a.queue_unfinished(10).await.unwrap().is_empty());
        // The taker stops without removing it: swept once its lease ends.
        wait_until(
            Duration::from_secs(15),
            "the message is listed for the sweep again",
            async || node_b.queue_unfinished(10).await.unwrap() == [id],
        )
        .await;
        let again = node_b.queue_take_finished(&holder_b, id, lease).await;
        assert_eq!(again.unwrap().unwrap().recipients.len(), 2);
        node_a.close().await;
        node_b.close().await;
        db.cleanup().await;
    }
}
