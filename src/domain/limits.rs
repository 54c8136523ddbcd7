//! The longest value of every string the API stores, in one table (docs/limits.md).
//!
//! Upstream's column sizes where it has them (v1-identity §5, v1-tasks §2): an over-long
//! value was a database error (500) there, a 422 naming the field here. Fields upstream
//! kept as unbounded `text` get a bound of our own, far above what any client sends,
//! so that one request cannot store megabytes that every later read returns.
//!
//! Lengths count characters (pydantic's `max_length`), except where a name says bytes.

/// User e-mails, also in invites and logins (`varchar(255)`).
pub const EMAIL_CHARS: usize = 255;
/// User display names (`varchar(255)`).
pub const DISPLAY_NAME_CHARS: usize = 255;
/// Names of workspaces, environments, API keys and target roots (`varchar(255)`).
pub const NAME_CHARS: usize = 255;
/// Workspace, environment and build descriptions (`text` upstream).
pub const DESCRIPTION_CHARS: usize = 4096;
/// Target-root URI prefixes (`varchar(512)`).
pub const URI_PREFIX_CHARS: usize = 512;
/// Build commit hashes. Upstream's column is `varchar(64)`, but SDK 0.1.0 sends
/// `$COMMIT_HASH` verbatim (docs/sdk-0.1.0-wire.md §12), so a longer bound.
pub const COMMIT_HASH_CHARS: usize = 1024;
/// Task hashes (`task_id`, `root_task_ids`, `dependency_task_ids`; `varchar(64)`; the
/// SDKs send UUIDs).
pub const TASK_ID_CHARS: usize = 64;
/// Task names and namespaces (`varchar(255)`).
pub const TASK_NAME_CHARS: usize = 255;
/// Task versions (`varchar(64)`).
pub const TASK_VERSION_CHARS: usize = 64;
/// Task output URIs (`varchar(2048)`).
pub const OUTPUT_URI_CHARS: usize = 2048;
/// Asset types (`varchar(50)`).
pub const ASSET_TYPE_CHARS: usize = 50;
/// Asset names (`varchar(255)`).
pub const ASSET_NAME_CHARS: usize = 255;
/// Lock names (`text` upstream; by convention a task hash).
pub const LOCK_NAME_CHARS: usize = 255;
/// `triggered_by_user_id` of build transitions: a user's `external_id` (`varchar(255)`).
pub const USER_REF_CHARS: usize = 255;
/// Stored failure messages and lock owners (D21). Cut to this many bytes rather than
/// refused: SDK 0.1.0 reports a failure once, and a refusal would lose it.
pub const MESSAGE_BYTES: usize = 64 * 1024;

/// True when `value` is longer than `max` characters.
pub fn too_long(value: &str, max: usize) -> bool {
    // Every character is at least one byte: short strings need no count.
    value.len() > max && value.chars().count() > max
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert!(!too_long(&"é".repeat(255), 255));
        assert!(too_long(&"é".repeat(256), 255));
        assert!(!too_long("", 0));
        assert!(too_long("a", 0));
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_bytes("short", 10), "short");
        assert_eq!(truncate_bytes("aé", 2), "a");
        assert_eq!(truncate_bytes("aé", 3), "aé");
    }
}
