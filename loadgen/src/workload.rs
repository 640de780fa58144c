//! Who arrives when: closed virtual users, open arrival rates (constant or ramping) and
//! pulses, computed exactly and lazily, and split across shards by global arrival index.

use std::time::Duration;

use crate::scenario::ModelSpec;
use crate::shard::Shard;

/// One arrival of an open or pulse workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Global index across all shards (unique per workload).
    pub index: u64,
    /// Intended start, from the workload's start.
    pub at: Duration,
    /// Which pulse it belongs to (pulse models only).
    pub pulse: Option<u32>,
}

/// One closed-model virtual user.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct User {
    /// Global user index across all shards.
    pub index: u64,
    /// When the user starts, from the workload's start.
    pub at: Duration,
}

/// The arrivals of one workload on one shard.
pub enum Schedule {
    /// Users that loop until the end.
    Closed(Vec<User>),
    /// Arrivals that each run one iteration; at most `max_in_flight` at once.
    Arrivals {
        /// The arrival sequence, lazily computed.
        arrivals: Box<dyn Iterator<Item = Arrival> + Send>,
        /// Iterations allowed in flight.
        max_in_flight: u64,
    },
}

impl Schedule {
    /// The schedule of `model` over `duration` for `shard`.
    pub fn new(model: &ModelSpec, duration: Duration, shard: Shard) -> Self {
        match model {
            ModelSpec::Closed { users, ramp } => Schedule::Closed(
                shard
                    .indices(*users)
                    .map(|index| User {
                        index,
                        at: ramp.mul_f64(index as f64 / *users as f64),
                    })
                    .collect(),
            ),
            ModelSpec::Open {
                rate,
                start_rate,
                stages,
                max_in_flight,
            } => {
                let plan = RatePlan::new(*rate, *start_rate, stages, duration);
                Schedule::Arrivals {
                    arrivals: Box::new(OpenArrivals {
                        plan,
                        next: shard.index,
                        step: shard.count,
                        end: duration,
                    }),
                    max_in_flight: *max_in_flight,
                }
            }
            ModelSpec::Pulse {
                count,
                window,
                at,
                repeat,
                every,
            } => {
                let (count, window, at, every) = (*count, *window, *at, *every);
                let total = count.saturating_mul(*repeat);
                let arrivals = shard
                    .indices(total)
                    .map(move |index| {
                        let rep = index / count;
                        let j = index % count;
                        Arrival {
                            index,
                            at: at + every * rep as u32 + window.mul_f64(j as f64 / count as f64),
                            pulse: Some(rep as u32),
                        }
                    })
                    .filter(move |a| a.at < duration);
                Schedule::Arrivals {
                    arrivals: Box::new(arrivals),
                    max_in_flight: u64::MAX,
                }
            }
        }
    }
}

/// Piecewise-linear arrival rate.
struct RatePlan {
    /// (start time, length, rate at start, rate at end, arrivals before the stage)
    stages: Vec<(Duration, Duration, f64, f64, f64)>,
}

impl RatePlan {
    fn new(rate: f64, start_rate: f64, stages: &[crate::scenario::Stage], total: Duration) -> Self {
        let mut out = Vec::new();
        let mut t = Duration::ZERO;
        let mut before = 0.0;
        if stages.is_empty() {
            out.push((t, total, rate, rate, 0.0));
        } else {
            let mut r0 = start_rate;
            for s in stages {
                out.push((t, s.duration, r0, s.target, before));
                before += (r0 + s.target) / 2.0 * s.duration.as_secs_f64();
                t += s.duration;
                r0 = s.target;
            }
            if t < total {
                out.push((t, total - t, r0, r0, before));
            }
        }
        Self { stages: out }
    }

    /// When the cumulative arrival count reaches `n`, if it ever does.
    fn time_of(&self, n: f64) -> Option<Duration> {
        for &(start, len, r0, r1, before) in &self.stages {
            let secs = len.as_secs_f64();
            let inside = (r0 + r1) / 2.0 * secs;
            let m = n - before;
            if m < 0.0 || m >= inside {
                continue;
            }
            let t = if (r1 - r0).abs() < f64::EPSILON {
                m / r0
            } else {
                let a = (r1 - r0) / (2.0 * secs);
                (-r0 + (r0 * r0 + 4.0 * a * m).max(0.0).sqrt()) / (2.0 * a)
            };
            return Some(start + Duration::from_secs_f64(t.clamp(0.0, secs)));
        }
        None
    }
}

struct OpenArrivals {
    plan: RatePlan,
    next: u64,
    step: u64,
    end: Duration,
}

impl Iterator for OpenArrivals {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        let index = self.next;
        let at = self.plan.time_of(index as f64)?;
        if at >= self.end {
            return None;
        }
        self.next += self.step;
        Some(Arrival {
            index,
            at,
            pulse: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Stage;

    fn arrivals(model: &ModelSpec, secs: u64, shard: Shard) -> Vec<Arrival> {
        match Schedule::new(model, Duration::from_secs(secs), shard) {
            Schedule::Arrivals { arrivals, .. } => arrivals.collect(),
            Schedule::Closed(_) => panic!("not an arrival model"),
        }
    }

    fn open(rate: f64, start_rate: f64, stages: Vec<Stage>) -> ModelSpec {
        ModelSpec::Open {
            rate,
            start_rate,
            stages,
            max_in_flight: 10,
        }
    }

    #[test]
    fn constant_rate_is_spread_evenly() {
        let a = arrivals(&open(100.0, 0.0, vec![]), 3, Shard::WHOLE);
        assert_eq!(a.len(), 300);
        for (k, x) in a.iter().enumerate() {
            assert_eq!(x.index, k as u64);
            assert!((x.at.as_secs_f64() - k as f64 / 100.0).abs() < 1e-9);
        }
    }

    #[test]
    fn ramp_follows_the_rate() {
        let stages = vec![Stage {
            target: 200.0,
            duration: Duration::from_secs(10),
        }];
        let a = arrivals(&open(0.0, 0.0, stages), 10, Shard::WHOLE);
        // 0 → 200/s over 10 s: 1,000 arrivals, a quarter of them in the first half.
        assert_eq!(a.len(), 1000);
        let first_half = a.iter().filter(|x| x.at < Duration::from_secs(5)).count();
        assert!((249..=251).contains(&first_half), "{first_half}");
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn ramp_then_hold() {
        let stages = vec![Stage {
            target: 100.0,
            duration: Duration::from_secs(2),
        }];
        let a = arrivals(&open(0.0, 100.0, stages), 4, Shard::WHOLE);
        assert_eq!(a.len(), 400);
    }

    #[test]
    fn pulse_shape_and_repeats() {
        let model = ModelSpec::Pulse {
            count: 1000,
            window: Duration::from_secs(1),
            at: Duration::from_secs(2),
            repeat: 2,
            every: Duration::from_secs(5),
        };
        let a = arrivals(&model, 20, Shard::WHOLE);
        assert_eq!(a.len(), 2000);
        assert_eq!(a[0].at, Duration::from_secs(2));
        assert_eq!(a[1000].at, Duration::from_secs(7));
        assert_eq!(a[1999].pulse, Some(1));
        let per_100ms = a[..1000]
            .iter()
            .filter(|x| x.at < Duration::from_millis(2100))
            .count();
        assert_eq!(per_100ms, 100);
    }

    #[test]
    fn instant_pulse() {
        let model = ModelSpec::Pulse {
            count: 50,
            window: Duration::ZERO,
            at: Duration::from_secs(1),
            repeat: 1,
            every: Duration::ZERO,
        };
        let a = arrivals(&model, 5, Shard::WHOLE);
        assert!(a.iter().all(|x| x.at == Duration::from_secs(1)));
    }

    #[test]
    fn shards_partition_the_arrivals_exactly() {
        let model = open(333.0, 0.0, vec![]);
        let whole = arrivals(&model, 3, Shard::WHOLE);
        let mut parts: Vec<Arrival> = (0..3)
            .flat_map(|i| arrivals(&model, 3, Shard { index: i, count: 3 }))
            .collect();
        parts.sort_by_key(|a| a.index);
        assert_eq!(parts, whole);
        let closed = ModelSpec::Closed {
            users: 10,
            ramp: Duration::from_secs(10),
        };
        let Schedule::Closed(users) = Schedule::new(
            &closed,
            Duration::from_secs(5),
            Shard { index: 1, count: 2 },
        ) else {
            panic!("closed");
        };
        assert_eq!(
            users.iter().map(|u| u.index).collect::<Vec<_>>(),
            [1, 3, 5, 7, 9]
        );
        assert_eq!(users[1].at, Duration::from_secs(3));
    }
}
