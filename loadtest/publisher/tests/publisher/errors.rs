//! How the publisher fails: an unreachable server, a wrong cluster id, a file too large, a missing
//! file.

use crate::support::{nowhere, publisher_at};

on_each_broker! {
    #[test]
    fn an_unreachable_server_fails_the_run_with_its_url_in_the_error(broker) {
        let url = nowhere();

        let run = publisher_at(&url, &[broker.args(), &["valid", "3"]].concat());

        assert!(!run.success);
        assert!(
            run.stderr
                .contains(&format!("cannot connect to NATS at {url}")),
            "{}",
            run.stderr
        );
    }

    #[test]
    fn a_file_larger_than_the_broker_accepts_is_refused_before_connecting_and_the_limit_is_said(
        broker
    ) {
        let path = std::env::temp_dir().join(testkit::unique_name("big"));
        std::fs::write(&path, vec![b' '; 1024 * 1024]).expect("write a file");

        // Nothing listens there: the size is checked before anything else.
        let path_arg = path.to_str().expect("a UTF-8 path");
        let run = publisher_at(&nowhere(), &[broker.args(), &["file", path_arg]].concat());
        std::fs::remove_file(&path).expect("remove the file");

        assert!(!run.success);
        assert!(run.stderr.contains("has 1048576 bytes"), "{}", run.stderr);
        assert!(
            run.stderr.contains("at most 1048576 bytes (max_payload"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("cannot connect"), "{}", run.stderr);
    }
}

#[test]
fn a_wrong_cluster_id_fails_the_run_and_is_named() {
    let run = publisher_at(
        &testkit::stan_url(),
        &["--cluster-id", "no-such-cluster", "valid", "3"],
    );

    assert!(!run.success);
    assert!(run.stderr.contains("\"no-such-cluster\""), "{}", run.stderr);
}

#[test]
fn a_missing_file_is_named_and_nothing_is_published() {
    let run = publisher_at(&nowhere(), &["file", "no-such-order.json"]);

    assert!(!run.success);
    assert!(
        run.stderr.contains("cannot read no-such-order.json"),
        "{}",
        run.stderr
    );
}
