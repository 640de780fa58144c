//! Deadlines and caps shared by every livepulse listener (RTMP, HTTP, WebSocket).
//!
//! - [`Admission`] caps open connections per listener and per client IP; a connection over a
//!   cap is refused before anything is read from it.
//! - [`DeadlineIo`] closes a socket that makes no progress, in either direction, for the
//!   idle deadline: a client that never finishes its request, a keep-alive connection left
//!   open, or a viewer that stopped reading while we write to it.
//! - [`serve_http`] runs a tower service (an axum router) over both, with hyper's
//!   header-read deadline, answering a refused connection with `503`.

#![warn(missing_docs)]

mod admission;
mod clock;
mod config;
mod deadline;
mod http;
mod signal;

pub use admission::{Admission, Permit, Refusal, Stats};
pub use clock::{unix_ms, unix_secs};
pub use config::{positive, seconds, FieldError, Limits, MAX_SECS};
pub use deadline::DeadlineIo;
pub use http::{serve_http, PeerAddr};
pub use signal::stop_signal;
