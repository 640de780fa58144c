//! `livepulse load`: a scenario file, one-line forms per driver, and `merge`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::builder::styling::Reset;
use clap::builder::StyledStr;
use clap::{Args, Subcommand};

use crate::drivers::{
    DriverSpec, FlashSaleSpec, HttpSpec, PlaySpec, PublishSpec, SaleVia, WsChatSpec,
};
use crate::report::Report;
use crate::run::{run as run_scenario, RunOptions};
use crate::scenario::{parse_duration, ModelSpec, Scenario, WorkloadSpec};
use crate::shard::Shard;

/// Arguments of `livepulse load`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct LoadArgs {
    #[command(subcommand)]
    command: Option<LoadCommand>,
    /// Scenario file (TOML); see `scenarios/`.
    #[arg(required = true)]
    scenario: Option<PathBuf>,
    #[command(flatten)]
    flags: RunFlags,
}

#[derive(Subcommand, Debug)]
enum LoadCommand {
    /// HLS viewers; on a playlist with parts, LL-HLS viewers (blocking reloads, preload
    /// hints) as hls.js plays it.
    #[command(visible_alias = "llhls-play")]
    HlsPlay(PlayCmd),
    /// HTTP-FLV viewers.
    FlvPlay(PlayCmd),
    /// RTMP viewers.
    RtmpPlay(PlayCmd),
    /// RTMP publishers of the built-in sample (or an FLV file), stamped for latency.
    RtmpPublish(PublishCmd),
    /// HTTP requests (GET/POST), with connections (closed) or a rate (open).
    Http(HttpCmd),
    /// WebSocket room members chatting, measuring sender-to-receiver latency.
    WsChat(ChatCmd),
    /// Flash-sale buyers arriving in a pulse.
    FlashSale(SaleCmd),
    /// Merge shard reports exactly (histograms merged, not averaged).
    Merge(MergeCmd),
}

/// Flags shared by every run.
#[derive(Args, Debug, Clone)]
struct RunFlags {
    /// Run length (overrides the scenario's).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Pass/fail condition, e.g. `p99 < 250ms` (repeatable; one-line forms only).
    #[arg(long = "threshold")]
    thresholds: Vec<String>,
    /// Run the i-th of N shares of every workload (0-based), e.g. `0/4`.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// Wall-clock start shared by all shards: RFC 3339 (`2026-11-24T12:00:00Z`) or unix seconds.
    #[arg(long, value_parser = parse_start_at)]
    start_at: Option<SystemTime>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// No live progress and no summary on stdout.
    #[arg(long)]
    quiet: bool,
}

/// Help text that shows its `{n}` placeholders: clap turns every `{n}` in help into a line
/// break, so an empty style (invisible, and dropped when colours are off) goes inside it.
fn placeholders(text: &str) -> StyledStr {
    StyledStr::from(text.replace("{n}", &format!("{{{Reset}n}}")))
}

#[derive(Args, Debug)]
struct PlayCmd {
    #[arg(help = placeholders("Stream URL; `{n}` / `{n%K}` expand per viewer"))]
    url: String,
    /// Concurrent viewers.
    #[arg(long, default_value_t = 10)]
    viewers: u64,
    /// Viewers join evenly over this time.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    ramp: Duration,
    /// Share of viewers that measure latency from SEI stamps, e.g. `5%` or `0.05`; the rest
    /// only count bytes, frames and stalls.
    #[arg(long, default_value = "100%", value_parser = parse_share)]
    qoe_sample: f64,
    #[command(flatten)]
    flags: RunFlags,
}

/// `5%` or `0.05`.
fn parse_share(s: &str) -> Result<f64, String> {
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|e| format!("{s:?}: {e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?} is not between 0% and 100%"))
    }
}

#[derive(Args, Debug)]
struct PublishCmd {
    #[arg(help = placeholders("`rtmp://host/app/stream{n}`"))]
    url: String,
    /// Concurrent streams.
    #[arg(long, default_value_t = 1)]
    streams: u64,
    /// FLV file to loop instead of the built-in sample.
    #[arg(long)]
    file: Option<PathBuf>,
    #[command(flatten)]
    flags: RunFlags,
}

#[derive(Args, Debug)]
struct HttpCmd {
    /// `http://` URL.
    url: String,
    /// Closed model: this many connections, each sending back to back.
    #[arg(long, default_value_t = 50, conflicts_with = "rate")]
    connections: u64,
    /// Open model: requests per second, latency from each intended start.
    #[arg(long)]
    rate: Option<f64>,
    /// Request method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Request body.
    #[arg(long)]
    body: Option<String>,
    /// Extra header `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    #[command(flatten)]
    flags: RunFlags,
}

#[derive(Args, Debug)]
struct ChatCmd {
    #[arg(
        default_value = "ws://127.0.0.1:8090/ws?room={room}&token={token}",
        help = placeholders("`ws://` URL; `{room}`, `{token}`, `{user}`, `{n}` expand per member")
    )]
    url: String,
    /// Members.
    #[arg(long, default_value_t = 100)]
    members: u64,
    /// Rooms the members are spread over.
    #[arg(long, default_value_t = 1)]
    rooms: u64,
    /// Members that send (the rest listen).
    #[arg(long)]
    senders: Option<u64>,
    /// Messages per second per sender.
    #[arg(long, default_value_t = 1.0)]
    send_rate: f64,
    /// Members join evenly over this time.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    ramp: Duration,
    /// Business-server token secret.
    #[arg(long)]
    token_secret: Option<String>,
    /// Message template containing `{stamp}`.
    #[arg(long, default_value = r#"{"type":"chat","text":"{stamp}"}"#)]
    message: String,
    #[command(flatten)]
    flags: RunFlags,
}

#[derive(Args, Debug)]
struct SaleCmd {
    /// Business server base URL.
    #[arg(default_value = "http://127.0.0.1:8090")]
    url: String,
    /// Sale id.
    #[arg(long)]
    sale: String,
    /// Buyers in the pulse.
    #[arg(long, default_value_t = 1000)]
    buyers: u64,
    /// Spread of the pulse (0 = all at one instant).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    window: Duration,
    /// When the pulse starts (buyers connect during the 3 s before it).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    at: Duration,
    /// HTTP or WebSocket purchases.
    #[arg(long, value_enum, default_value = "http")]
    via: SaleVia,
    /// Business-server token secret.
    #[arg(long, default_value = "livepulse-dev-secret")]
    token_secret: String,
    /// Create the sale with this stock first (needs --admin-key).
    #[arg(long)]
    stock: Option<u64>,
    /// Admin key for creating the sale.
    #[arg(long)]
    admin_key: Option<String>,
    #[command(flatten)]
    flags: RunFlags,
}

#[derive(Args, Debug)]
struct MergeCmd {
    /// Shard reports (JSON).
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Write the merged JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the merged HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// No summary on stdout.
    #[arg(long)]
    quiet: bool,
}

/// `livepulse load` on its own, for embedding and tests.
#[derive(clap::Parser, Debug)]
#[command(name = "load")]
struct Standalone {
    #[command(flatten)]
    load: LoadArgs,
}

/// Parses `load …` arguments (the first item is the program name).
pub fn parse_from<I, T>(args: I) -> Result<LoadArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    <Standalone as clap::Parser>::try_parse_from(args).map(|s| s.load)
}

fn parse_start_at(s: &str) -> Result<SystemTime, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    humantime::parse_rfc3339_weak(s).map_err(|e| format!("bad --start-at {s:?}: {e}"))
}

fn one(name: &str, driver: DriverSpec, model: ModelSpec, flags: &RunFlags) -> Scenario {
    Scenario {
        name: name.to_string(),
        duration: flags.duration.unwrap_or(Duration::from_secs(30)),
        grace: Duration::from_secs(5),
        workloads: vec![WorkloadSpec {
            name: name.to_string(),
            start: Duration::ZERO,
            duration: None,
            driver,
            model,
            thresholds: flags.thresholds.clone(),
        }],
    }
}

fn closed(users: u64, ramp: Duration) -> ModelSpec {
    ModelSpec::Closed { users, ramp }
}

fn play(kind: fn(PlaySpec) -> DriverSpec, name: &str, c: &PlayCmd) -> Scenario {
    let spec = PlaySpec {
        url: c.url.clone(),
        startup_buffer_ms: 500,
        rebuffer_ms: 500,
        qoe_sample: c.qoe_sample,
    };
    one(name, kind(spec), closed(c.viewers, c.ramp), &c.flags)
}

fn headers(list: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    list.iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| anyhow::anyhow!("header {h:?} is not `Name: value`"))
        })
        .collect()
}

/// Builds the scenario and flags a command line asks for (`None` for `merge`).
fn scenario_of(args: &LoadArgs) -> anyhow::Result<Option<(Scenario, RunFlags)>> {
    let Some(cmd) = &args.command else {
        let path = args
            .scenario
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("give a scenario file or a driver"))?;
        let mut s = Scenario::from_file(path)?;
        if let Some(d) = args.flags.duration {
            s.duration = d;
        }
        anyhow::ensure!(
            args.flags.thresholds.is_empty(),
            "--threshold is for one-line forms; put thresholds in the scenario"
        );
        return Ok(Some((s, args.flags.clone())));
    };
    let (scenario, flags) = match cmd {
        LoadCommand::HlsPlay(c) => (play(DriverSpec::HlsPlay, "hls-play", c), &c.flags),
        LoadCommand::FlvPlay(c) => (play(DriverSpec::FlvPlay, "flv-play", c), &c.flags),
        LoadCommand::RtmpPlay(c) => (play(DriverSpec::RtmpPlay, "rtmp-play", c), &c.flags),
        LoadCommand::RtmpPublish(c) => (
            one(
                "rtmp-publish",
                DriverSpec::RtmpPublish(PublishSpec {
                    url: c.url.clone(),
                    file: c.file.clone(),
                    stamp: true,
                }),
                closed(c.streams, Duration::ZERO),
                &c.flags,
            ),
            &c.flags,
        ),
        LoadCommand::Http(c) => {
            let model = match c.rate {
                Some(rate) => ModelSpec::Open {
                    rate,
                    start_rate: 0.0,
                    stages: Vec::new(),
                    max_in_flight: 100_000,
                },
                None => closed(c.connections, Duration::ZERO),
            };
            let spec = HttpSpec {
                url: c.url.clone(),
                method: c.method.clone(),
                body: c.body.clone(),
                headers: headers(&c.headers)?,
                timeout_secs: 10.0,
            };
            (
                one("http", DriverSpec::Http(spec), model, &c.flags),
                &c.flags,
            )
        }
        LoadCommand::WsChat(c) => {
            let spec = WsChatSpec {
                url: c.url.clone(),
                rooms: c.rooms,
                senders: c.senders,
                send_rate: c.send_rate,
                message: c.message.clone(),
                token_secret: c.token_secret.clone(),
            };
            (
                one(
                    "ws-chat",
                    DriverSpec::WsChat(spec),
                    closed(c.members, c.ramp),
                    &c.flags,
                ),
                &c.flags,
            )
        }
        LoadCommand::FlashSale(c) => {
            let spec = FlashSaleSpec {
                url: c.url.clone(),
                sale: c.sale.clone(),
                via: c.via,
                token_secret: c.token_secret.clone(),
                buyer_prefix: "buyer".to_string(),
                room: "sale".to_string(),
                create_stock: c.stock,
                admin_key: c.admin_key.clone(),
                timeout_secs: 10.0,
            };
            let model = ModelSpec::Pulse {
                count: c.buyers,
                window: c.window,
                at: c.at,
                repeat: 1,
                every: Duration::ZERO,
            };
            let mut s = one("flash-sale", DriverSpec::FlashSale(spec), model, &c.flags);
            if c.flags.duration.is_none() {
                s.duration = c.at + c.window + Duration::from_secs(5);
            }
            (s, &c.flags)
        }
        LoadCommand::Merge(_) => return Ok(None),
    };
    scenario.check()?;
    Ok(Some((scenario, flags.clone())))
}

/// Reads a JSON report.
pub fn read_report(path: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Writes the JSON and HTML reports where asked.
pub fn write_reports(
    report: &Report,
    json: Option<&Path>,
    html: Option<&Path>,
) -> anyhow::Result<()> {
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(report)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = html {
        std::fs::write(path, crate::html::render(report)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs `livepulse load`; returns whether every threshold held.
pub async fn run(args: LoadArgs) -> anyhow::Result<bool> {
    if let Some(LoadCommand::Merge(m)) = &args.command {
        let reports = m
            .reports
            .iter()
            .map(|p| read_report(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let merged = Report::merge(reports)?;
        write_reports(&merged, m.json.as_deref(), m.html.as_deref())?;
        if !m.quiet {
            print!("{}", crate::text::render(&merged));
        }
        return Ok(merged.passed);
    }
    let (scenario, flags) = scenario_of(&args)?.ok_or_else(|| anyhow::anyhow!("nothing to run"))?;
    let options = RunOptions {
        shard: flags.shard,
        start_at: flags.start_at,
        live: !flags.quiet,
    };
    let report = run_scenario(&scenario, &options).await?;
    write_reports(&report, flags.json.as_deref(), flags.html.as_deref())?;
    if !flags.quiet {
        print!("{}", crate::text::render(&report));
    }
    Ok(report.passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_shows_the_n_placeholder() {
        for (sub, want) in [
            ("rtmp-play", "`{n}` / `{n%K}` expand per viewer"),
            ("rtmp-publish", "`rtmp://host/app/stream{n}`"),
            ("ws-chat", "`{user}`, `{n}` expand per member"),
        ] {
            let err = parse_from(["load", sub, "--help"]).expect_err("help");
            let help = err.to_string();
            assert!(help.contains(want), "{sub}: {help}");
        }
    }

    fn parse(args: &[&str]) -> LoadArgs {
        let mut all = vec!["load"];
        all.extend_from_slice(args);
        parse_from(all).expect("valid command line")
    }

    #[test]
    fn one_line_forms_build_scenarios() {
        let a = parse(&[
            "hls-play",
            "http://127.0.0.1:8080/live/s.m3u8",
            "--viewers",
            "500",
            "--duration",
            "60s",
            "--threshold",
            "startup.p99 < 2s",
        ]);
        let (s, _) = scenario_of(&a).expect("ok").expect("a run");
        assert_eq!(s.duration, Duration::from_secs(60));
        assert!(matches!(
            s.workloads[0].model,
            ModelSpec::Closed { users: 500, .. }
        ));
        assert_eq!(s.workloads[0].thresholds, ["startup.p99 < 2s"]);
        let a = parse(&[
            "http",
            "http://127.0.0.1:1/",
            "--rate",
            "100",
            "--shard",
            "1/2",
        ]);
        let (s, flags) = scenario_of(&a).expect("ok").expect("a run");
        assert!(matches!(s.workloads[0].model, ModelSpec::Open { .. }));
        assert_eq!(flags.shard, Shard { index: 1, count: 2 });
        let a = parse(&["hls-play", "rtmp://127.0.0.1/live/s"]);
        assert!(scenario_of(&a).is_err(), "protocol mismatch is reported");
        let a = parse(&[
            "llhls-play",
            "http://127.0.0.1:8080/live/s/ll.m3u8",
            "--viewers",
            "3",
        ]);
        let (s, _) = scenario_of(&a).expect("ok").expect("a run");
        assert_eq!(s.workloads[0].driver.kind(), "hls-play");
        assert!(matches!(
            s.workloads[0].model,
            ModelSpec::Closed { users: 3, .. }
        ));
        for url in ["http://h/live/s/ll-master.m3u8", "http://h/live/s.m3u8"] {
            assert!(scenario_of(&parse(&["llhls-play", url])).is_ok(), "{url}");
        }
        let a = parse(&["llhls-play", "http://127.0.0.1/live/s.flv"]);
        assert!(scenario_of(&a).is_err());
    }

    #[test]
    fn start_at_forms() {
        assert_eq!(
            parse_start_at("1764000000").ok(),
            Some(UNIX_EPOCH + Duration::from_secs(1_764_000_000))
        );
        assert!(parse_start_at("2026-11-24T12:00:00Z").is_ok());
        assert!(parse_start_at("tomorrow").is_err());
    }
}
