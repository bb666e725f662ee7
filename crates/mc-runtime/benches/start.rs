//! Starting on an existing store: what an app pays at launch before it can log in.
//!
//! - `start/runtime_start_existing_store`: `MasterController::start` on a **directory** store
//!   (redb file and key file, as an app has it) holding one enrolled user, then StartEvent,
//!   until its result (LOGIN_REQUIRED). Issue 9's goal: ≤ 10 ms. The runtime is shut down
//!   untimed after each iteration, so the next one opens the files afresh.
//! - `start/store_open_list`: the store part alone, for scale: `UserStore::open_default` on the
//!   same directory, the user list and the last user. It is what the runtime cannot avoid;
//!   the difference is the runtime's own start (threads, actors, protocol client).

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{enroll_event, host_runtime, LocalIdp};
use criterion::Criterion;
use mc_events::{SdkState, StartEvent, StatusType};
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use mc_store::UserStore;

/// Issue 9's goal for StartEvent on an existing store with one user.
const START_GOAL_NS: f64 = 10_000_000.0;

fn bench_start(c: &mut Criterion) {
    let idp = LocalIdp::start();
    let host = host_runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = RuntimeConfig::new(idp.base_url(), StoreLocation::Directory(dir.path().into()));

    // One enrolled user in the directory store.
    host.block_on(async {
        let runtime = MasterController::start(config.clone()).expect("the runtime starts");
        let started = runtime.post(StartEvent::new()).await;
        assert_eq!(
            started.info.status,
            StatusType::Ok,
            "StartEvent: {started:#?}"
        );
        let enrolled = runtime.post(enroll_event()).await;
        assert_eq!(
            enrolled.info.status,
            StatusType::Ok,
            "enrollment: {enrolled:#?}"
        );
        runtime.shutdown();
    });

    let mut group = c.benchmark_group("start");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.bench_function("store_open_list", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let store = UserStore::open_default(dir.path()).expect("the store opens");
                let users = store.list_users().expect("the users");
                let last = store.last_user().expect("the last user");
                timed += started.elapsed();
                assert_eq!(users.len(), 1);
                assert!(last.is_some());
            }
            timed
        })
    });

    let config = &config;
    group.bench_function("runtime_start_existing_store", |b| {
        b.to_async(&host).iter_custom(|iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let runtime = MasterController::start(config.clone()).expect("the runtime starts");
                let result = runtime.post(StartEvent::new()).await;
                timed += started.elapsed();
                assert_eq!(
                    result.info.status,
                    StatusType::Ok,
                    "StartEvent: {result:#?}"
                );
                assert_eq!(result.user_details_list.len(), 1, "one enrolled user");
                assert_eq!(result.sdk_state, SdkState::LoginRequired);
                runtime.shutdown();
            }
            timed
        })
    });
    group.finish();
}

fn main() {
    let since = SystemTime::now();
    let mut criterion = Criterion::default().configure_from_args();
    bench_start(&mut criterion);
    criterion.final_summary();
    println!("\nStart on an existing directory store with one user, measured in this run");
    for (what, id) in [
        (
            "store open + list (the store alone)",
            "start/store_open_list",
        ),
        (
            "MasterController::start + StartEvent",
            "start/runtime_start_existing_store",
        ),
    ] {
        match common::estimate_ns(id, since) {
            Some(ns) if id.ends_with("existing_store") => println!(
                "{what:<40} {:>10}  goal ≤ 10 ms: {}",
                common::format_ns(ns),
                if ns <= START_GOAL_NS { "met" } else { "MISSED" }
            ),
            Some(ns) => println!("{what:<40} {:>10}", common::format_ns(ns)),
            None => println!("{what:<40} not measured in this run"),
        }
    }
}
