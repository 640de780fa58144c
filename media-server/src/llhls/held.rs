//! The per-client-address cap on held LL-HLS requests, so that one viewer holding thousands
//! of blocking requests cannot exhaust the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::metrics::gauge::Gauge;

/// Counts held requests per client address. An address has an entry only while it holds a
/// request, so the map is bounded by the open connections.
#[derive(Debug)]
pub struct HeldLimiter {
    max_per_ip: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
    gauge: Gauge,
}

/// One held request, released when dropped.
#[derive(Debug)]
pub struct HeldPermit {
    limiter: Arc<HeldLimiter>,
    ip: IpAddr,
}

impl HeldLimiter {
    /// A limiter allowing `max_per_ip` held requests per address, mirrored in `gauge`.
    pub fn new(max_per_ip: usize, gauge: Gauge) -> Arc<Self> {
        Arc::new(Self {
            max_per_ip,
            held: Mutex::new(HashMap::new()),
            gauge,
        })
    }

    /// A permit to hold one more request for `ip`, or `None` at the cap.
    pub fn try_hold(self: &Arc<Self>, ip: IpAddr) -> Option<HeldPermit> {
        let mut held = self.held.lock();
        let count = held.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            if *count == 0 {
                held.remove(&ip);
            }
            return None;
        }
        *count += 1;
        self.gauge.inc();
        Some(HeldPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Requests held now for `ip`.
    pub fn held(&self, ip: IpAddr) -> usize {
        self.held.lock().get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for HeldPermit {
    fn drop(&mut self) {
        let mut held = self.limiter.held.lock();
        if let Some(count) = held.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
        self.limiter.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_cap_per_address_and_frees_on_drop() {
        let gauge = Gauge::default();
        let limiter = HeldLimiter::new(2, gauge.clone());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = limiter.try_hold(a).unwrap();
        let _second = limiter.try_hold(a).unwrap();
        assert!(limiter.try_hold(a).is_none(), "third for the same address");
        let other = limiter.try_hold(b).unwrap();
        assert_eq!(gauge.get(), 3);
        drop(first);
        assert!(limiter.try_hold(a).is_some(), "a slot came free");
        drop(other);
        assert_eq!(limiter.held(b), 0);
        assert!(
            !limiter.held.lock().contains_key(&b),
            "no entry left behind"
        );
    }
}
