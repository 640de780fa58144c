//! URL and message templates: `{n}` is the arrival or user index, `{n%K}` spreads indices
//! over K values (e.g. `live/s{n%10}` for ten streams).

/// Expands `{n}` and `{n%K}` in `template` for index `n`.
pub fn expand(template: &str, n: u64) -> String {
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            out.push_str(after);
            return out;
        };
        let inner = &after[1..close];
        match value(inner, n) {
            Some(v) => out.push_str(&v.to_string()),
            None => out.push_str(&after[..=close]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn value(inner: &str, n: u64) -> Option<u64> {
    let inner = inner.trim();
    if inner == "n" {
        return Some(n);
    }
    let modulus: u64 = inner
        .strip_prefix('n')?
        .trim()
        .strip_prefix('%')?
        .trim()
        .parse()
        .ok()?;
    (modulus > 0).then(|| n % modulus)
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_indices() {
        assert_eq!(expand("live/s{n}", 7), "live/s7");
        assert_eq!(expand("live/s{n%3}.m3u8", 7), "live/s1.m3u8");
        assert_eq!(expand("{\"a\":{room}}", 7), "{\"a\":{room}}");
        assert_eq!(expand("x{n%0}", 7), "x{n%0}");
        assert_eq!(expand("open{", 1), "open{");
    }
}
