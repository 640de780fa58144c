//! Fan-out from one live source to many viewers, without I/O: the start cache a new viewer
//! begins with (metadata, sequence headers, the GOP since the last keyframe) and the bounded
//! queue of each viewer, which skips to the next keyframe when the viewer falls behind.
//!
//! Both the origin's hub and the edge's HTTP-FLV relay use it, so a viewer behaves the same
//! on either. Time is an input (`now`), never read here.

mod gop;
mod mailbox;
mod queue;
mod start;

pub use gop::GopCache;
pub use mailbox::Mailbox;
pub use queue::{Offer, QueueConfig, ViewerQueue};
pub use start::StartCache;

/// What a unit of media is, as far as fan-out cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Metadata (`onMetaData`).
    Script,
    /// The video sequence header (decoder configuration).
    VideoHeader,
    /// The audio sequence header.
    AudioHeader,
    /// A video keyframe: a point where a viewer may start.
    Keyframe,
    /// Any other video frame.
    Video,
    /// An audio frame.
    Audio,
}

/// A unit of media that fans out: cheap to clone (shared buffers), classified, sized.
pub trait Unit: Clone {
    /// What this unit is.
    fn class(&self) -> Class;
    /// Payload bytes, for the caps.
    fn size(&self) -> usize;
}
