//! Load generator: drives RTMP publishers, HLS/HTTP-FLV/RTMP players, WebSocket chat members,
//! flash-sale buyers and plain HTTP against any server, under closed, open (constant or
//! ramping arrival rate) and pulse workloads, with HDR-histogram latency measured from each
//! arrival's intended start, live progress, JSON and HTML reports, thresholds, and shards that
//! merge exactly.

pub mod cli;
pub mod drivers;
pub mod generator;
pub mod histogram;
pub mod html;
pub mod live;
pub mod metrics;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shard;
pub mod template;
pub mod text;
pub mod thresholds;
pub mod workload;

pub use report::Report;
pub use run::{run, RunOptions};
pub use scenario::Scenario;
pub use shard::Shard;
