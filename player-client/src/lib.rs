//! HLS, HTTP-FLV and RTMP player that measures startup, stalls and end-to-end latency.
