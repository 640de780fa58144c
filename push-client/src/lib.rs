//! RTMP publisher that paces media in real time and stamps wall-clock time into the video.
