use std::time::Duration;

use palisade_node::background::Background;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn jobs_run_on_the_workers_and_return_their_results() {
    let bg = Background::spawn("test-bg", 2, 0).unwrap();
    let here = std::thread::current().id();
    let (out, ran_on) = bg
        .run_blocking(|| (6 * 7, std::thread::current().id()))
        .unwrap();
    assert_eq!(out, 42);
    assert_ne!(ran_on, here, "the job ran on the caller's thread");
    let name = runtime()
        .block_on(bg.run(|| std::thread::current().name().map(str::to_owned)))
        .unwrap();
    assert_eq!(name.as_deref(), Some("test-bg"));
}

#[test]
fn a_panicking_job_gives_none_and_the_workers_go_on() {
    let bg = Background::spawn("test-bg-panic", 1, 0).unwrap();
    let r: Option<u32> = bg.run_blocking(|| panic!("job failed"));
    assert_eq!(r, None);
    let r: Option<u32> = runtime().block_on(bg.run(|| panic!("async job failed")));
    assert_eq!(r, None);
    assert_eq!(bg.run_blocking(|| 7), Some(7));
}

#[test]
fn more_jobs_than_the_queue_holds_all_complete() {
    // Callers that do not wait for each other: 200 jobs against a queue of
    // 64 and one worker; every one must come back, none lost or doubled.
    let bg = Background::spawn("test-bg-queue", 1, 0).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut sum = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..200u64 {
            let bg = bg.clone();
            set.spawn(async move {
                bg.run(move || {
                    std::thread::sleep(Duration::from_micros(200));
                    i
                })
                .await
            });
        }
        let mut got = Vec::new();
        while let Some(r) = set.join_next().await {
            got.push(r.unwrap().unwrap());
        }
        got
    });
    sum.sort_unstable();
    assert_eq!(sum, (0..200).collect::<Vec<_>>());
}

#[cfg(target_os = "linux")]
#[test]
fn workers_run_at_the_lower_priority_and_callers_keep_theirs() {
    let before = rustix::process::getpriority_process(None).unwrap();
    let bg = Background::spawn("test-bg-nice", 1, 5).unwrap();
    let theirs = bg
        .run_blocking(|| rustix::process::getpriority_process(None).unwrap())
        .unwrap();
    assert_eq!(theirs, (before + 5).min(19));
    assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
}

#[test]
fn the_workers_say_when_they_have_all_stopped() {
    let bg = Background::spawn("test-bg-stop", 2, 0).unwrap();
    assert_eq!(bg.live_threads(), 2);
    let stopped = bg.stopped();
    // Still running: it waits.
    let rt = runtime();
    assert!(rt
        .block_on(async { tokio::time::timeout(Duration::from_millis(50), bg.stopped()).await })
        .is_err());
    // The last handle gone, the threads end, and it completes.
    drop(bg);
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), stopped).await })
        .expect("the workers' end was not reported");
}
