//! The protocol flows through the runtime against the in-process development IDP, each beside
//! the same HTTP requests made by hand with reqwest and mc-jose (`common::RawClient`) in the
//! same run, against the same IDP.
//!
//! | runtime                      | baseline (same requests, nothing around them)            |
//! |------------------------------|-----------------------------------------------------------|
//! | EnrollAnonymousUserEvent     | discovery, ES256 key, RFC 7591 registration,              |
//! |                              | client_credentials + private_key_jwt, token verified      |
//! | OfflineLoginEvent            | discovery, client_credentials + private_key_jwt, verified |
//! | ExchangeIamTokenEvent        | RFC 8693 token exchange with a client assertion           |
//! |   (forceUpdate = true)       |                                                           |
//!
//! Both keep the JWKS fetched once (the runtime's protocol client caches it for 10 minutes), so
//! neither fetches it per iteration. What only the runtime does: the encrypted store (save on
//! enrollment, load + key unwrap + last-login write on login), the state machine, the actor
//! hops and the result event. Untimed between iterations: the runtime deletes its user
//! (DeleteUserEvent) after each enrollment and restarts (RestartEvent) before each login; the
//! baseline deletes its registration after each enrollment, so neither grows the IDP.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use common::{
    assert_ok, cold_exchange_event, enroll_event, host_runtime, print_ratios, Comparison, LocalIdp,
    RawClient,
};
use criterion::Criterion;
use mc_events::{DeleteUserEvent, OfflineLoginEvent, RestartEvent, StartEvent};
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};

fn bench_protocol(c: &mut Criterion) {
    let idp = LocalIdp::start();
    let host = host_runtime();
    let raw = host.block_on(RawClient::new(idp.issuer()));
    let runtime =
        MasterController::start(RuntimeConfig::new(idp.base_url(), StoreLocation::Memory))
            .expect("the runtime starts");
    assert_ok(
        &host.block_on(runtime.post_event(StartEvent::new())),
        "StartEvent",
    );
    // Plain references, so the async blocks of the benches can copy them.
    let (raw, runtime) = (&raw, &runtime);

    let mut group = c.benchmark_group("protocol");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // ---- enrollment ----
    group.bench_function("baseline_enroll", |b| {
        b.to_async(&host).iter_custom(|iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let endpoints = raw.discover().await;
                let device = raw.register(&endpoints).await;
                black_box(raw.login(&endpoints, &device).await);
                timed += started.elapsed();
                raw.delete(&device).await;
            }
            timed
        })
    });
    group.bench_function("runtime_enroll", |b| {
        b.to_async(&host).iter_custom(|iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let enrolled = runtime.post_event(enroll_event()).await;
                timed += started.elapsed();
                assert_ok(&enrolled, "enrollment");
                assert_ok(
                    &runtime.post_event(DeleteUserEvent::new()).await,
                    "DeleteUserEvent",
                );
            }
            timed
        })
    });

    // ---- offline login ----
    let (endpoints, device) = host.block_on(async {
        let endpoints = raw.discover().await;
        let device = raw.register(&endpoints).await;
        (endpoints, device)
    });
    let (endpoints, device) = (&endpoints, &device);
    assert_ok(
        &host.block_on(runtime.post_event(enroll_event())),
        "enrollment",
    );
    group.bench_function("baseline_offline_login", |b| {
        b.to_async(&host).iter(|| async move {
            let endpoints = raw.discover().await;
            raw.login(&endpoints, device).await
        })
    });
    group.bench_function("runtime_offline_login", |b| {
        b.to_async(&host).iter_custom(|iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                assert_ok(
                    &runtime.post_event(RestartEvent::new()).await,
                    "RestartEvent",
                );
                let started = Instant::now();
                let logged_in = runtime.post_event(OfflineLoginEvent::new()).await;
                timed += started.elapsed();
                assert_ok(&logged_in, "OfflineLoginEvent");
            }
            timed
        })
    });

    // ---- cold exchange (the runtime is logged in after the last login) ----
    let device_token = host.block_on(raw.login(endpoints, device));
    group.bench_function("baseline_exchange_cold", |b| {
        b.to_async(&host)
            .iter(|| raw.exchange(endpoints, device, &device_token))
    });
    group.bench_function("runtime_exchange_cold", |b| {
        b.to_async(&host).iter_custom(|iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let exchanged = runtime.post_event(cold_exchange_event()).await;
                timed += started.elapsed();
                assert_ok(&exchanged, "ExchangeIamTokenEvent");
            }
            timed
        })
    });
    group.finish();

    host.block_on(async {
        raw.delete(device).await;
        assert_ok(
            &runtime.post_event(DeleteUserEvent::new()).await,
            "DeleteUserEvent",
        );
    });
    runtime.shutdown();
}

fn main() {
    let since = SystemTime::now();
    let mut criterion = Criterion::default().configure_from_args();
    bench_protocol(&mut criterion);
    criterion.final_summary();
    print_ratios(
        "Protocol (dev IDP on loopback)",
        &[
            Comparison {
                what: "EnrollAnonymousUserEvent",
                runtime_id: "protocol/runtime_enroll",
                baseline_id: "protocol/baseline_enroll",
                goal_ratio: Some(1.25),
            },
            Comparison {
                what: "OfflineLoginEvent",
                runtime_id: "protocol/runtime_offline_login",
                baseline_id: "protocol/baseline_offline_login",
                goal_ratio: Some(1.25),
            },
            Comparison {
                what: "ExchangeIamTokenEvent (forceUpdate)",
                runtime_id: "protocol/runtime_exchange_cold",
                baseline_id: "protocol/baseline_exchange_cold",
                goal_ratio: Some(1.25),
            },
        ],
        since,
    );
}
