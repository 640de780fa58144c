//! Caching HTTP edge for live HLS and HTTP-FLV.
