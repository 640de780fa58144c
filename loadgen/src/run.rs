//! Runs a scenario: drivers are prepared, every workload's schedule is executed on time
//! (closed users loop; open and pulse arrivals start at their intended instants, with latency
//! measured from there), progress is sampled each second, and the report is assembled.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::drivers::{Ctx, Driver};
use crate::generator::CpuMonitor;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::report::{Report, WorkloadInfo, WorkloadReport, SCHEMA};
use crate::scenario::{ModelSpec, Scenario, WorkloadSpec};
use crate::shard::Shard;
use crate::workload::Schedule;

/// Arrivals of a zero-width pulse are spawned this long before their instant: each prepares
/// (signs its token, opens its own connection) and then waits on the timer, so the pulse is
/// released by one timer tick with nothing left to do but send, like a synchronizing timer.
/// Spread arrivals start at their instant and share keep-alive connections.
const PULSE_LEAD: Duration = Duration::from_secs(3);

/// Pauses before a closed-model user starts a session again after one that ended early, as
/// real clients reconnect: 1 s doubling to 20 s, each ±50%.
const SESSION_BACKOFF: push_client::Backoff = push_client::Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(20),
};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which share of every workload to run.
    pub shard: Shard,
    /// Wall-clock start shared by all shards.
    pub start_at: Option<SystemTime>,
    /// Show live progress (only on a terminal).
    pub live: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            shard: Shard::WHOLE,
            start_at: None,
            live: false,
        }
    }
}

struct Running {
    spec: WorkloadSpec,
    driver: Arc<Driver>,
    metrics: Arc<Metrics>,
    duration: Duration,
}

/// Runs `scenario` and returns its report (thresholds evaluated).
pub async fn run(scenario: &Scenario, options: &RunOptions) -> anyhow::Result<Report> {
    scenario.check()?;
    raise_open_files_limit();
    let mut drivers = Vec::new();
    for w in &scenario.workloads {
        let d = Driver::new(&w.driver, options.shard.index == 0)
            .await
            .map_err(|e| anyhow::anyhow!("workload {:?}: {e}", w.name))?;
        drivers.push(Arc::new(d));
    }
    if let Some(at) = options.start_at {
        match at.duration_since(SystemTime::now()) {
            Ok(wait) => tokio::time::sleep(wait).await,
            Err(late) => tracing::warn!(
                "--start-at passed {:.1} s ago; starting now",
                late.duration().as_secs_f64()
            ),
        }
    }
    let t0 = Instant::now();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut cpu = CpuMonitor::new();
    let running: Vec<Running> = scenario
        .workloads
        .iter()
        .zip(drivers)
        .map(|(w, driver)| Running {
            spec: w.clone(),
            driver,
            metrics: Arc::new(Metrics::new(t0)),
            duration: scenario.workload_duration(w),
        })
        .collect();
    let hard_stop = CancellationToken::new();
    let mut workloads = JoinSet::new();
    for r in &running {
        workloads.spawn(run_workload(
            r.spec.clone(),
            r.driver.clone(),
            r.metrics.clone(),
            t0 + r.spec.start,
            r.duration,
            options.shard,
            hard_stop.clone(),
        ));
    }
    let end = t0 + scenario.duration;
    let mut live = Live::new(options.live, scenario.duration);
    let mut tick =
        tokio::time::interval_at((t0 + Duration::from_secs(1)).into(), Duration::from_secs(1));
    let deadline = tokio::time::sleep_until((end + scenario.grace).into());
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = workloads.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                for r in &running {
                    r.metrics.sample(now);
                }
                let cores = cpu.sample();
                live.show(now - t0, cores, &running.iter().map(|r| (r.spec.name.as_str(), r.spec.driver.primary(), &*r.metrics)).collect::<Vec<_>>());
            }
            _ = &mut deadline, if !hard_stop.is_cancelled() => {
                hard_stop.cancel();
            }
        }
    }
    live.finish();
    let mut reports = Vec::new();
    let mut dropped = 0;
    let mut worst_lag = 0.0f64;
    for r in running {
        let info = WorkloadInfo {
            name: r.spec.name.clone(),
            driver: r.spec.driver.kind().to_string(),
            target: r.spec.driver.target().to_string(),
            model: serde_json::to_value(&r.spec.model)?,
            primary: r.spec.driver.primary().to_string(),
            thresholds: r.spec.thresholds.clone(),
            active_secs: r.duration.as_secs_f64(),
        };
        let w = WorkloadReport::build(info, r.metrics.finish(), t0);
        dropped += w.arrivals.dropped;
        worst_lag = worst_lag.max(w.arrivals.start_lag.p99_ms);
        reports.push(w);
    }
    let mut report = Report {
        schema: SCHEMA.to_string(),
        scenario: scenario.name.clone(),
        started_unix_ms,
        duration_secs: scenario.duration.as_secs_f64(),
        shards: vec![options.shard],
        generators: vec![cpu.report(options.shard, dropped, worst_lag)],
        workloads: reports,
        thresholds: Vec::new(),
        passed: true,
    };
    report.evaluate();
    Ok(report)
}

async fn run_workload(
    spec: WorkloadSpec,
    driver: Arc<Driver>,
    metrics: Arc<Metrics>,
    start: Instant,
    duration: Duration,
    shard: Shard,
    hard_stop: CancellationToken,
) {
    let end = start + duration;
    let session = spec.driver.is_session();
    let workload: Arc<str> = spec.name.as_str().into();
    let mut tasks = JoinSet::new();
    match Schedule::new(&spec.model, duration, shard) {
        Schedule::Closed(users) => {
            for user in users {
                let (driver, metrics, stop) = (driver.clone(), metrics.clone(), hard_stop.clone());
                let workload = workload.clone();
                tasks.spawn(async move {
                    tokio::time::sleep_until((start + user.at).into()).await;
                    let _active = metrics.active();
                    let mut attempt = 0;
                    while Instant::now() < end && !stop.is_cancelled() {
                        let began = Instant::now();
                        let ctx = Ctx {
                            workload: &workload,
                            index: user.index,
                            intended: Instant::now(),
                            pulse: None,
                            end,
                            stop: &stop,
                            metrics: &metrics,
                            started: Default::default(),
                        };
                        driver.iterate(&ctx).await;
                        if session {
                            // A session that ended early (refused, failed, or over) is
                            // restarted after a backoff, as a real client reconnects; also in
                            // the last pause before the end.
                            let pause =
                                SESSION_BACKOFF.after_session(&mut attempt, began.elapsed());
                            let retry_at = (Instant::now() + pause).min(end);
                            if retry_at < end {
                                metrics.restarted();
                            }
                            tokio::time::sleep_until(retry_at.into()).await;
                        }
                    }
                });
            }
        }
        Schedule::Arrivals {
            arrivals,
            max_in_flight,
        } => {
            let lead = if matches!(spec.model, ModelSpec::Pulse { window, .. } if window.is_zero())
            {
                PULSE_LEAD
            } else {
                Duration::ZERO
            };
            let in_flight = Arc::new(AtomicU64::new(0));
            for a in arrivals {
                let intended = start + a.at;
                if intended >= end || hard_stop.is_cancelled() {
                    break;
                }
                tokio::time::sleep_until((intended.checked_sub(lead).unwrap_or(intended)).into())
                    .await;
                if in_flight.load(Relaxed) >= max_in_flight {
                    metrics.dropped();
                    continue;
                }
                in_flight.fetch_add(1, Relaxed);
                let (driver, metrics, stop, in_flight) = (
                    driver.clone(),
                    metrics.clone(),
                    hard_stop.clone(),
                    in_flight.clone(),
                );
                let workload = workload.clone();
                tasks.spawn(async move {
                    let _active = metrics.active();
                    let ctx = Ctx {
                        workload: &workload,
                        index: a.index,
                        intended,
                        pulse: a.pulse,
                        end,
                        stop: &stop,
                        metrics: &metrics,
                        started: Default::default(),
                    };
                    driver.iterate(&ctx).await;
                    in_flight.fetch_sub(1, Relaxed);
                });
                // Reap finished tasks so a long open run does not keep every handle.
                while tasks.try_join_next().is_some() {}
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Raises the soft open-files limit to the hard one: every user holds a socket.
fn raise_open_files_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
