//! Text cut to a size, shared by the capabilities (log lines) and the bounds on results.

/// Cuts `s` to at most `max` bytes on a character boundary, saying how much was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} more bytes cut]", &s[..end], s.len() - end)
}
