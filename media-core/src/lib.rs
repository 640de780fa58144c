//! Sans-I/O media code shared by every livepulse crate.
