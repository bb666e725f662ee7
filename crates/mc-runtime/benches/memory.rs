//! Resident memory of a process that hosts one runtime. Prints a table; not a criterion bench.
//!
//! The bench runs itself a second time as a child process (the "app"), so the development IDP,
//! which the parent serves, is not counted. The child reports its own `VmRSS` (and `VmHWM`, the
//! peak) from `/proc/self/status` at each step:
//!
//! 1. baseline: the child with its tokio runtime, before `MasterController::start`;
//! 2. after StartEvent, one anonymous enrollment (store in a directory, as an app keeps it)
//!    and one token exchange, then 2 s idle: goal at most 15 MB in total;
//! 3. 10,000 ExchangeIamTokenEvents with forceUpdate posted at once while the IDP is paused
//!    (the parent blocks the IDP's only thread for a few seconds): the first one sends the
//!    exchange and waits for the IDP, the other 9,999 join it (the runtime lets one exchange per
//!    user and audience run at a time), so all 10,000 are in flight in the runtime at once,
//!    each with its pending entry, its future and its waiter;
//! 4. after all 10,000 were answered, and 2 s later.
//!
//! A second child run (`slow-listener`) measures what a slow listener costs: a memory-store
//! runtime with one listener that sleeps 2 ms per event, and 200,000 GetInformationEvents
//! posted one after the other (each awaited, so the runtime is never behind; only the
//! listener is). The listener would need 400 s to take them all; its queue is what grows.
//! Goal: at most 64 MB resident after the 200,000 posts. Run it alone with
//! `cargo bench -p mc-runtime --bench memory -- slow-listener`.
//!
//! Linux only (reads `/proc`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_ok, cold_exchange_event, enroll_event, host_runtime, LocalIdp};
use mc_events::{Event, ExchangeIamTokenEvent, GetInformationEvent, StartEvent, StatusType};
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};

const CHILD_ENV: &str = "MC_RUNTIME_MEMORY_BENCH_IDP";
const IN_FLIGHT: usize = 10_000;
const IDP_PAUSE: Duration = Duration::from_secs(4);
const IDLE_GOAL_KB: u64 = 15 * 1024;
const STEP_ENV: &str = "MC_RUNTIME_MEMORY_BENCH_STEP";
const SLOW_LISTENER_POSTS: usize = 200_000;
const SLOW_LISTENER_DELAY: Duration = Duration::from_millis(2);
const SLOW_LISTENER_GOAL_KB: u64 = 64 * 1024;

/// `VmRSS` and `VmHWM` of this process, in kB.
fn resident_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One measurement line for the parent: `RSS <kB> <peak kB> <label>`.
fn report(label: &str) {
    let (rss, peak) = resident_kb();
    println!("RSS {rss} {peak} {label}");
}

fn main() {
    if let Ok(base_url) = std::env::var(CHILD_ENV) {
        if std::env::var(STEP_ENV).as_deref() == Ok("slow-listener") {
            return slow_listener_child(&base_url);
        }
        return child(&base_url);
    }
    // `cargo bench` passes --bench; `cargo test --benches` does not: skip the measurement there.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("memory: measured only under `cargo bench`");
        return;
    }
    let only_slow_listener = std::env::args().any(|arg| arg == "slow-listener");
    if !only_slow_listener {
        parent();
    }
    slow_listener_parent();
}

// ---- a slow listener --------------------------------------------------------------------------

fn slow_listener_child(base_url: &str) {
    let host = host_runtime();
    report("baseline: host process with its tokio runtime, no mc-runtime");
    let runtime = MasterController::start(RuntimeConfig::new(base_url, StoreLocation::Memory))
        .expect("the runtime starts");
    let seen = Arc::new(AtomicUsize::new(0));
    let listener = {
        let seen = Arc::clone(&seen);
        runtime.add_event_listener(move |_event: &Event| {
            seen.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(SLOW_LISTENER_DELAY);
        })
    };
    let started = Instant::now();
    host.block_on(async {
        assert_ok(&runtime.post_event(StartEvent::new()).await, "StartEvent");
        for _ in 0..SLOW_LISTENER_POSTS {
            let event = runtime.post_event(GetInformationEvent::new()).await;
            assert_ok(&event, "GetInformationEvent");
        }
    });
    println!(
        "NOTE {SLOW_LISTENER_POSTS} posts answered in {:.1} s; the listener had taken {} events by then",
        started.elapsed().as_secs_f64(),
        seen.load(Ordering::Relaxed)
    );
    report("SLOW LISTENER: 200,000 posts answered, listener 2 ms per event");
    runtime.remove_event_listener(listener);
    runtime.shutdown();
    println!("DONE");
}

fn slow_listener_parent() {
    let exe = std::env::current_exe().expect("the bench binary's path");
    // No IDP: the requests need none.
    let output = Command::new(exe)
        .env(CHILD_ENV, "http://127.0.0.1:1")
        .env(STEP_ENV, "slow-listener")
        .stderr(Stdio::inherit())
        .output()
        .expect("the child process runs");
    assert!(output.status.success(), "the child process failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut baseline = 0;
    println!("\nA listener sleeping 2 ms per event, {SLOW_LISTENER_POSTS} posts (child process)");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("RSS ") {
            let mut parts = rest.splitn(3, ' ');
            let rss_kb: u64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            let peak_kb: u64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            let label = parts.next().unwrap_or_default();
            if baseline == 0 {
                baseline = rss_kb;
            }
            println!("{:<62} {:>9} (peak {:>9})", label, mb(rss_kb), mb(peak_kb));
            if label.starts_with("SLOW LISTENER") {
                println!(
                    "slow listener: {} resident after the posts (goal at most {}): {}",
                    mb(rss_kb),
                    mb(SLOW_LISTENER_GOAL_KB),
                    if rss_kb <= SLOW_LISTENER_GOAL_KB {
                        "met"
                    } else {
                        "MISSED"
                    }
                );
            }
        } else if let Some(note) = line.strip_prefix("NOTE ") {
            println!("{note}");
        }
    }
}

// ---- the app process ------------------------------------------------------------------------

fn child(base_url: &str) {
    let host = host_runtime();
    let store = tempfile::tempdir().expect("a store directory");
    report("baseline: host process with its tokio runtime, no mc-runtime");

    let runtime = MasterController::start(RuntimeConfig::new(
        base_url,
        StoreLocation::Directory(store.path().into()),
    ))
    .expect("the runtime starts");
    report("MasterController::start (store open, actors up)");

    host.block_on(async {
        assert_ok(&runtime.post_event(StartEvent::new()).await, "StartEvent");
        assert_ok(&runtime.post_event(enroll_event()).await, "enrollment");
        assert_ok(
            &runtime
                .post_event(ExchangeIamTokenEvent::new(common::AUDIENCE))
                .await,
            "exchange",
        );
    });
    report("StartEvent, enrolled one user, one exchange");
    std::thread::sleep(Duration::from_secs(2));
    report("IDLE: one enrolled user, 2 s later");

    // Ask the parent to pause the IDP, then wait until it did.
    println!("PAUSE {}", IDP_PAUSE.as_millis());
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .expect("the parent answers");
    assert_eq!(answer.trim(), "paused", "unexpected answer from the parent");

    let answered = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let results = host.block_on(async {
        let requests: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let runtime = runtime.clone();
                let answered = Arc::clone(&answered);
                async move {
                    let event = runtime.post_event(cold_exchange_event()).await;
                    answered.fetch_add(1, Ordering::Relaxed);
                    event
                }
            })
            .collect();
        let all = tokio::spawn(futures::future::join_all(requests));
        // Long enough for every request to reach the runtime, well within the IDP's pause.
        tokio::time::sleep(IDP_PAUSE / 4).await;
        let done = answered.load(Ordering::Relaxed);
        assert_eq!(done, 0, "requests were answered while the IDP was paused");
        report("IN FLIGHT: 10,000 exchanges waiting for the IDP");
        all.await.expect("the requests complete")
    });
    let took = started.elapsed();
    let ok = results
        .iter()
        .filter(|e| matches!(e, Event::ExchangeIamTokenResultEvent(_)))
        .filter(|e| e.status() == Some(StatusType::Ok))
        .count();
    println!(
        "NOTE {ok} of {IN_FLIGHT} answered OK, all answered {:.2} s after posting",
        took.as_secs_f64()
    );
    drop(results);
    report("all 10,000 answered (results dropped)");
    std::thread::sleep(Duration::from_secs(2));
    report("2 s later");
    runtime.shutdown();
    println!("DONE");
}

// ---- the bench process: IDP, child, table -----------------------------------------------------

struct Row {
    rss_kb: u64,
    peak_kb: u64,
    label: String,
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn parent() {
    let idp = LocalIdp::start();
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut child = Command::new(exe)
        .env(CHILD_ENV, idp.base_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the child process starts");
    let mut to_child = child.stdin.take().expect("child stdin");
    let from_child = BufReader::new(child.stdout.take().expect("child stdout"));

    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut exchanges_before_pause = 0;
    for line in from_child.lines() {
        let line = line.expect("child output");
        if let Some(rest) = line.strip_prefix("RSS ") {
            let mut parts = rest.splitn(3, ' ');
            let number = |part: Option<&str>| part.and_then(|p| p.parse().ok()).unwrap_or(0);
            let rss_kb = number(parts.next());
            let peak_kb = number(parts.next());
            let label = parts.next().unwrap_or_default().to_string();
            rows.push(Row {
                rss_kb,
                peak_kb,
                label,
            });
        } else if line.starts_with("PAUSE ") {
            exchanges_before_pause = idp.idp().stats().token_exchange;
            idp.pause(IDP_PAUSE);
            // Let the IDP's thread pick up the pause before the child posts.
            std::thread::sleep(Duration::from_millis(200));
            writeln!(to_child, "paused").expect("write to the child");
            to_child.flush().expect("write to the child");
        } else if let Some(note) = line.strip_prefix("NOTE ") {
            notes.push(note.to_string());
        } else if line == "DONE" {
            break;
        } else {
            println!("{line}");
        }
    }
    let status = child.wait().expect("the child ends");
    assert!(status.success(), "the child process failed: {status}");
    let exchanges = idp.idp().stats().token_exchange - exchanges_before_pause;
    notes.push(format!(
        "the IDP received {exchanges} exchange request(s) for the {IN_FLIGHT} requests"
    ));

    let baseline = rows.first().map(|r| r.rss_kb).unwrap_or(0);
    println!("\nMemory of a process hosting one runtime (child process; the dev IDP runs in the bench process)");
    println!(
        "{:<58} {:>9} {:>14} {:>9}",
        "step", "VmRSS", "vs baseline", "VmHWM"
    );
    for row in &rows {
        let delta = row.rss_kb as i64 - baseline as i64;
        println!(
            "{:<58} {:>9} {:>+11.1} MB {:>9}",
            row.label,
            mb(row.rss_kb),
            delta as f64 / 1024.0,
            mb(row.peak_kb)
        );
    }
    if let Some(idle) = rows.iter().find(|r| r.label.starts_with("IDLE")) {
        println!(
            "idle with one enrolled user: {} in total (goal at most {}): {}; {:.1}x the baseline process",
            mb(idle.rss_kb),
            mb(IDLE_GOAL_KB),
            if idle.rss_kb <= IDLE_GOAL_KB { "met" } else { "MISSED" },
            idle.rss_kb as f64 / baseline.max(1) as f64
        );
    }
    let idle = rows.iter().find(|r| r.label.starts_with("IDLE"));
    let busy = rows.iter().find(|r| r.label.starts_with("IN FLIGHT"));
    if let (Some(idle), Some(busy)) = (idle, busy) {
        let per_request = (busy.rss_kb as f64 - idle.rss_kb as f64) * 1024.0 / IN_FLIGHT as f64;
        println!(
            "10,000 in flight: +{} over idle, about {per_request:.0} bytes per request in flight",
            mb(busy.rss_kb.saturating_sub(idle.rss_kb))
        );
    }
    for note in notes {
        println!("{note}");
    }
}
