//! Which renditions a source gets: ladder rungs that fit the source, sized and named.

use crate::config::RenditionConfig;

/// One rendition to produce for a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Ladder name, e.g. `720p`.
    pub name: String,
    /// Hub key of the rendition stream, `{app}/{stream}_{name}`.
    pub key: String,
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// Video bitrate in bit/s.
    pub bitrate: u64,
}

/// The hub key of rendition `name` of source `key`.
pub fn rendition_key(key: &str, name: &str) -> String {
    format!("{key}_{name}")
}

/// True when `key` names a rendition of some stream under `ladder` (renditions are not
/// transcoded again).
pub fn is_rendition_key(key: &str, ladder: &[RenditionConfig]) -> bool {
    ladder
        .iter()
        .any(|r| key.strip_suffix(&r.name).is_some_and(|k| k.ends_with('_')))
}

/// The rungs of `ladder` that fit a `src_w`x`src_h` source, in ladder (priority) order. A rung
/// without a width keeps the source's aspect ratio, rounded to an even width; a rung larger
/// than the source in either dimension is skipped.
pub fn plan(key: &str, ladder: &[RenditionConfig], src_w: u32, src_h: u32) -> Vec<Planned> {
    ladder
        .iter()
        .filter_map(|r| {
            let width = r.width.unwrap_or_else(|| {
                let exact = f64::from(src_w) * f64::from(r.height) / f64::from(src_h.max(1));
                ((exact / 2.0).round() as u32 * 2).max(2)
            });
            (width <= src_w && r.height <= src_h).then(|| Planned {
                name: r.name.clone(),
                key: rendition_key(key, &r.name),
                width,
                height: r.height,
                bitrate: u64::from(r.video_kbps) * 1000,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(name: &str, height: u32, kbps: u32) -> RenditionConfig {
        RenditionConfig {
            name: name.into(),
            height,
            width: None,
            video_kbps: kbps,
        }
    }

    #[test]
    fn keeps_aspect_and_skips_larger_rungs() {
        let ladder = [
            rung("1080p", 1080, 5000),
            rung("720p", 720, 2500),
            rung("480p", 480, 1200),
            rung("360p", 360, 600),
        ];
        let p = plan("live/s", &ladder, 1280, 720);
        let sizes: Vec<(&str, u32, u32)> = p
            .iter()
            .map(|r| (r.name.as_str(), r.width, r.height))
            .collect();
        assert_eq!(
            sizes,
            [("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]
        );
        assert_eq!(p[0].key, "live/s_720p");
        assert_eq!(p[0].bitrate, 2_500_000);
    }

    #[test]
    fn recognises_rendition_keys() {
        let ladder = [rung("720p", 720, 2500)];
        assert!(is_rendition_key("live/s_720p", &ladder));
        assert!(!is_rendition_key("live/s720p", &ladder));
        assert!(!is_rendition_key("live/s", &ladder));
    }
}
