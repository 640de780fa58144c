//! Scenario files: TOML describing workloads (who arrives when), drivers (what each arrival
//! does) and thresholds (when a run fails).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::drivers::DriverSpec;

/// A whole load run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in reports.
    #[serde(default = "default_name")]
    pub name: String,
    /// Length of the run; each workload stops at `start + duration` unless it says otherwise.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub duration: Duration,
    /// Time allowed after the end for in-flight iterations to finish before they are cancelled.
    #[serde(
        default = "default_grace",
        deserialize_with = "de_duration",
        serialize_with = "ser_duration"
    )]
    pub grace: Duration,
    /// Workloads, all running concurrently.
    #[serde(rename = "workload")]
    pub workloads: Vec<WorkloadSpec>,
}

fn default_name() -> String {
    "load".to_string()
}

fn default_grace() -> Duration {
    Duration::from_secs(5)
}

/// One driver under one arrival model.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Unique name in the scenario and in reports.
    pub name: String,
    /// Offset from the start of the run.
    #[serde(
        default,
        deserialize_with = "de_duration",
        serialize_with = "ser_duration"
    )]
    pub start: Duration,
    /// Length of this workload; defaults to the rest of the run.
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration"
    )]
    pub duration: Option<Duration>,
    /// What each arrival does.
    pub driver: DriverSpec,
    /// When arrivals happen.
    pub model: ModelSpec,
    /// Pass/fail conditions, e.g. `p99 < 250ms`, `error_rate < 0.1%`, `stall_ratio < 1%`.
    #[serde(default)]
    pub thresholds: Vec<String>,
}

/// When arrivals happen.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelSpec {
    /// A fixed number of virtual users, each repeating its iteration until the end.
    Closed {
        /// Virtual users.
        users: u64,
        /// Users start evenly over this time.
        #[serde(
            default,
            deserialize_with = "de_duration",
            serialize_with = "ser_duration"
        )]
        ramp: Duration,
    },
    /// Arrivals at a rate, independent of how fast the server answers.
    Open {
        /// Constant arrivals per second (when `stages` is empty).
        #[serde(default)]
        rate: f64,
        /// Arrival rate at the start of the first stage.
        #[serde(default)]
        start_rate: f64,
        /// Linear ramps of the arrival rate.
        #[serde(default)]
        stages: Vec<Stage>,
        /// Iterations allowed in flight; an arrival beyond it is dropped and counted.
        #[serde(default = "default_max_in_flight")]
        max_in_flight: u64,
    },
    /// `count` arrivals spread over `window` starting at `at`, repeated `repeat` times `every`.
    Pulse {
        /// Arrivals per pulse.
        count: u64,
        /// Spread of one pulse; zero means all at one instant.
        #[serde(
            default,
            deserialize_with = "de_duration",
            serialize_with = "ser_duration"
        )]
        window: Duration,
        /// Offset of the first pulse from the workload's start.
        #[serde(
            default,
            deserialize_with = "de_duration",
            serialize_with = "ser_duration"
        )]
        at: Duration,
        /// Number of pulses.
        #[serde(default = "one")]
        repeat: u64,
        /// Time between pulse starts.
        #[serde(
            default,
            deserialize_with = "de_duration",
            serialize_with = "ser_duration"
        )]
        every: Duration,
    },
}

fn default_max_in_flight() -> u64 {
    100_000
}

fn one() -> u64 {
    1
}

/// One linear ramp of an open workload's arrival rate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Arrival rate reached at the end of the stage.
    pub target: f64,
    /// Length of the stage.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub duration: Duration,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses and checks scenario TOML.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let scenario: Scenario = toml::from_str(text)?;
        scenario.check()?;
        Ok(scenario)
    }

    /// Rejects scenarios that cannot run.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.workloads.is_empty(),
            "a scenario needs a [[workload]]"
        );
        anyhow::ensure!(self.duration > Duration::ZERO, "duration must be positive");
        for (i, w) in self.workloads.iter().enumerate() {
            anyhow::ensure!(
                !self.workloads[..i].iter().any(|o| o.name == w.name),
                "workload name {:?} is used twice",
                w.name
            );
            anyhow::ensure!(
                w.start < self.duration,
                "workload {:?} starts after the run ends",
                w.name
            );
            for t in &w.thresholds {
                crate::thresholds::Threshold::parse(t)
                    .map_err(|e| anyhow::anyhow!("workload {:?}: {e}", w.name))?;
            }
            w.driver
                .check()
                .map_err(|e| anyhow::anyhow!("workload {:?}: {e}", w.name))?;
            match &w.model {
                ModelSpec::Open {
                    rate,
                    stages,
                    max_in_flight,
                    ..
                } => {
                    anyhow::ensure!(
                        *rate > 0.0 || !stages.is_empty(),
                        "workload {:?}: an open model needs `rate` or `stages`",
                        w.name
                    );
                    anyhow::ensure!(*max_in_flight > 0, "max_in_flight must be positive");
                }
                ModelSpec::Pulse {
                    repeat,
                    every,
                    window,
                    ..
                } => anyhow::ensure!(
                    *repeat <= 1 || every >= window && !every.is_zero(),
                    "workload {:?}: repeated pulses need `every` at least as long as `window`",
                    w.name
                ),
                ModelSpec::Closed { .. } => {}
            }
        }
        Ok(())
    }

    /// How long a workload runs.
    pub fn workload_duration(&self, w: &WorkloadSpec) -> Duration {
        w.duration
            .unwrap_or_else(|| self.duration.saturating_sub(w.start))
    }
}

/// Parses `250ms`, `1.5s`, `2m`, `1h30m` (also a bare number of seconds).
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        anyhow::ensure!(secs >= 0.0 && secs.is_finite(), "bad duration {s:?}");
        return Ok(Duration::from_secs_f64(secs));
    }
    if let Some(secs) = s.strip_suffix('s').and_then(|n| n.parse::<f64>().ok()) {
        anyhow::ensure!(secs >= 0.0 && secs.is_finite(), "bad duration {s:?}");
        return Ok(Duration::from_secs_f64(secs));
    }
    humantime::parse_duration(s).map_err(|e| anyhow::anyhow!("bad duration {s:?}: {e}"))
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_secs_f64() * 1000.0)
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name = "mixed"
duration = "30s"

[[workload]]
name = "viewers"
driver = { kind = "hls-play", url = "http://127.0.0.1:8080/live/s{n}.m3u8" }
model = { kind = "closed", users = 100, ramp = "10s" }
thresholds = ["startup.p99 < 3s", "stall_ratio < 1%"]

[[workload]]
name = "api"
start = "5s"
driver = { kind = "http", url = "http://127.0.0.1:8080/api/v1/streams" }
model = { kind = "open", start_rate = 10, stages = [{ target = 100, duration = "10s" }] }

[[workload]]
name = "buyers"
driver = { kind = "flash-sale", url = "http://127.0.0.1:8090", sale = "drop1", token_secret = "s" }
model = { kind = "pulse", count = 1000, window = "0ms", at = "10s", repeat = 2, every = "5s" }
"#;

    #[test]
    fn example_parses() {
        let s = Scenario::from_toml(EXAMPLE).expect("valid scenario");
        assert_eq!(s.workloads.len(), 3);
        assert_eq!(s.duration, Duration::from_secs(30));
        assert_eq!(
            s.workload_duration(&s.workloads[1]),
            Duration::from_secs(25)
        );
        assert!(matches!(
            s.workloads[2].model,
            ModelSpec::Pulse {
                count: 1000,
                repeat: 2,
                ..
            }
        ));
    }

    #[test]
    fn llhls_play_is_a_driver_kind() {
        let s = Scenario::from_toml(
            r#"
name = "ll"
duration = "10s"

[[workload]]
name = "viewers"
driver = { kind = "llhls-play", url = "http://127.0.0.1:8080/live/s{n}/ll.m3u8" }
model = { kind = "closed", users = 3 }
"#,
        )
        .expect("valid scenario");
        assert!(matches!(s.workloads[0].driver, DriverSpec::HlsPlay(_)));
        assert_eq!(s.workloads[0].driver.primary(), "startup");
    }

    #[test]
    fn mistakes_are_reported() {
        let typo = EXAMPLE.replace("ramp =", "rmap =");
        assert!(Scenario::from_toml(&typo).is_err());
        let bad_threshold = EXAMPLE.replace("stall_ratio < 1%", "stall_ratio ~ 1%");
        let err = Scenario::from_toml(&bad_threshold).unwrap_err().to_string();
        assert!(err.contains("viewers"), "{err}");
        let dup = EXAMPLE.replace("name = \"api\"", "name = \"viewers\"");
        assert!(Scenario::from_toml(&dup).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("250ms").ok(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration("1.5s").ok(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3").ok(), Some(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
    }
}
