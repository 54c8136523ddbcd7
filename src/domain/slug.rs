//! Slugs and generated names (v1-identity §3.4, §4.4.1, §4.7.2, §7; v1-tasks §2.4;
//! DECISIONS D4, D15).
//!
//! * [`validate_slug`]: the user-facing rule for workspace and environment slugs (one rule
//!   for both, v1-identity §4.7.2), with upstream's exact 422 messages.
//! * [`PersonalSlug`]: personal-workspace slug candidates derived from an email
//!   (v1-identity §3.4), made to obey the slug rules with fallback `user-<6 hex>` (D15).
//! * [`build_name`]: upstream's `services/slug.py`, which names builds
//!   `<adjective>-<noun>-<NN>` (v1-identity §7, v1-tasks §2.4).
//!
//! Randomness is passed in by the caller (no I/O here). Nothing here panics.

use std::fmt;

/// Minimum slug length in characters (v1-identity §4.4.1).
pub const SLUG_MIN_LEN: usize = 2;
/// Maximum slug length in characters (v1-identity §4.4.1; DB column `varchar(64)`).
pub const SLUG_MAX_LEN: usize = 64;

/// Pydantic's error `type` for a field-validator failure (422 list form, D7).
pub const SLUG_ERROR_TYPE: &str = "value_error";

/// Why a slug was refused (v1-identity §4.4.1). The pattern is checked first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlugError {
    /// Does not match `^[a-z0-9][a-z0-9_-]*[a-z0-9]$|^[a-z0-9]$`.
    Pattern,
    /// Matches the pattern but is not 2..=64 characters (i.e. one character, or > 64).
    Length,
}

impl SlugError {
    /// The validator's message, as raised (without Pydantic's prefix).
    pub const fn message(self) -> &'static str {
        match self {
            SlugError::Pattern => {
                "Slug must be lowercase alphanumeric with hyphens or underscores, cannot start or end with hyphen or underscore"
            }
            SlugError::Length => "Slug must be between 2 and 64 characters",
        }
    }

    /// The `msg` of the 422 entry: Pydantic prefixes `Value error, ` (v1-identity §11).
    pub fn pydantic_msg(self) -> String {
        format!("Value error, {}", self.message())
    }
}

impl fmt::Display for SlugError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for SlugError {}

fn is_slug_edge(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_slug_inner(c: char) -> bool {
    is_slug_edge(c) || c == '-' || c == '_'
}

/// Validates a user-supplied workspace or environment slug (v1-identity §4.4.1, §4.7.2):
/// first the pattern `^[a-z0-9][a-z0-9_-]*[a-z0-9]$|^[a-z0-9]$` (→ [`SlugError::Pattern`]),
/// then the length 2..=64 (→ [`SlugError::Length`]). So `"a"` fails on length, `""` and
/// `"-a"` on the pattern. Unlike Python's `re.match` with `$`, a trailing `"\n"` is
/// refused (pattern).
pub fn validate_slug(slug: &str) -> Result<(), SlugError> {
    let mut chars = slug.chars();
    let first = chars.next().ok_or(SlugError::Pattern)?;
    let last = slug.chars().next_back().unwrap_or(first);
    if !is_slug_edge(first) || !is_slug_edge(last) || !slug.chars().all(is_slug_inner) {
        return Err(SlugError::Pattern);
    }
    // All characters are ASCII here, so bytes == characters.
    if !(SLUG_MIN_LEN..=SLUG_MAX_LEN).contains(&slug.len()) {
        return Err(SlugError::Length);
    }
    Ok(())
}

/// `validate_slug(slug).is_ok()`.
pub fn is_valid_slug(slug: &str) -> bool {
    validate_slug(slug).is_ok()
}

// ---------------------------------------------------------------------------------------
// Workspace-creation defaults (v1-identity §4.4.1)
// ---------------------------------------------------------------------------------------

/// Default `initial_environment_name` (v1-identity §4.4.1).
pub const DEFAULT_ENVIRONMENT_NAME: &str = "Default";
/// Default `initial_environment_slug` (v1-identity §4.4.1).
pub const DEFAULT_ENVIRONMENT_SLUG: &str = "default";

/// `initial_environment_name`, defaulting to `Default` when absent **or empty**
/// (v1-identity §4.4.1).
pub fn initial_environment_name(requested: Option<&str>) -> &str {
    requested
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_ENVIRONMENT_NAME)
}

/// `initial_environment_slug`, defaulting to `default` when absent **or empty**
/// (v1-identity §4.4.1). Upstream does not validate it (§12.9); callers should run
/// [`validate_slug`] on the result.
pub fn initial_environment_slug(requested: Option<&str>) -> &str {
    requested
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_ENVIRONMENT_SLUG)
}

/// Description of the initial environment of a new workspace: `"<name> environment"`
/// (v1-identity §4.4.1).
pub fn initial_environment_description(name: &str) -> String {
    format!("{name} environment")
}

// ---------------------------------------------------------------------------------------
// Personal workspaces (v1-identity §3.4, DECISIONS D4, D15)
// ---------------------------------------------------------------------------------------

/// Personal workspace environment name (v1-identity §3.4).
pub const PERSONAL_ENVIRONMENT_NAME: &str = "Local";
/// Personal workspace environment slug (v1-identity §3.4, D4).
pub const PERSONAL_ENVIRONMENT_SLUG: &str = "local";
/// Personal workspace environment description (v1-identity §3.4).
pub const PERSONAL_ENVIRONMENT_DESCRIPTION: &str = "Local development environment";
/// Personal workspace target root name (v1-identity §3.4, D4).
pub const PERSONAL_TARGET_ROOT_NAME: &str = "default";
/// Personal workspace target root URI prefix, literal tilde (v1-identity §3.4).
pub const PERSONAL_TARGET_ROOT_URI: &str = "~/.stardag/local-target-roots/default";

/// Maximum length of the email-derived base (v1-identity §3.4).
pub const PERSONAL_SLUG_BASE_MAX_LEN: usize = 50;
/// Attempts with a 4-hex suffix after the bare base (v1-identity §3.4).
pub const PERSONAL_SLUG_SHORT_SUFFIX_ATTEMPTS: u32 = 3;
/// Attempts with a 6-hex suffix after those (v1-identity §3.4).
pub const PERSONAL_SLUG_LONG_SUFFIX_ATTEMPTS: u32 = 3;
/// Prefix of the fallback slug `user-<6 hex>` (D15).
pub const PERSONAL_SLUG_FALLBACK_PREFIX: &str = "user";

/// The local part of an email: everything before the first `@` (the whole string if
/// there is none), as Python's `email.split("@")[0]`.
pub fn email_local_part(email: &str) -> &str {
    email.split('@').next().unwrap_or(email)
}

/// Name of a new personal workspace (v1-identity §3.4): `"<display_name>'s Workspace"`,
/// or `"<lower-cased email local part>'s Workspace"` when the display name is absent or
/// empty.
pub fn personal_workspace_name(display_name: Option<&str>, email: &str) -> String {
    match display_name.filter(|d| !d.is_empty()) {
        Some(name) => format!("{name}'s Workspace"),
        None => format!("{}'s Workspace", email_local_part(email).to_lowercase()),
    }
}

/// Personal-workspace slug planner (v1-identity §3.4 + D15).
///
/// Base: the email's local part, lower-cased (Unicode-aware, like Python's `str.lower`),
/// every run of characters outside `[a-z0-9]` replaced by one `-`, leading/trailing `-`
/// stripped, truncated to 50 characters — and then (D15, fixing upstream's §12.9) stripped
/// of trailing `-` again; a base shorter than 2 characters is dropped.
///
/// Candidates by attempt (0-based): `base`, then `base-<4 hex>` ×3, then `base-<6 hex>` ×3
/// (upstream's sequence), then `user-<6 hex>` for every further attempt instead of
/// upstream's 500 (D15). Without a usable base every attempt is `user-<6 hex>`. Every
/// candidate passes [`validate_slug`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalSlug {
    base: Option<String>,
}

impl PersonalSlug {
    /// Plans the candidates for a user with this email.
    pub fn from_email(email: &str) -> Self {
        PersonalSlug {
            base: personal_slug_base(email),
        }
    }

    /// The email-derived base, if it can be a slug.
    pub fn base(&self) -> Option<&str> {
        self.base.as_deref()
    }

    /// The candidate for `attempt` (0-based). `random` supplies the hex suffix (its low 16
    /// bits for 4 hex digits, low 24 bits for 6), so the caller owns the randomness.
    pub fn candidate(&self, attempt: u32, random: u32) -> String {
        let Some(base) = self.base.as_deref() else {
            return fallback_personal_slug(random);
        };
        let short_end = 1 + PERSONAL_SLUG_SHORT_SUFFIX_ATTEMPTS;
        let long_end = short_end + PERSONAL_SLUG_LONG_SUFFIX_ATTEMPTS;
        if attempt == 0 {
            base.to_owned()
        } else if attempt < short_end {
            format!("{base}-{:04x}", random & 0xFFFF)
        } else if attempt < long_end {
            format!("{base}-{:06x}", random & 0xFF_FFFF)
        } else {
            fallback_personal_slug(random)
        }
    }
}

/// The email-derived base of a personal slug, or `None` if it cannot be a valid slug
/// (see [`PersonalSlug`]).
pub fn personal_slug_base(email: &str) -> Option<String> {
    slug_from_text(email_local_part(email), PERSONAL_SLUG_BASE_MAX_LEN)
}

/// The slug suggested for a workspace or environment name (the UI's create forms, when
/// the slug field is left empty): the same rule as a personal slug's base, up to the
/// full slug length. `None` when nothing usable is left (`"!"`, one character).
pub fn slug_from_name(name: &str) -> Option<String> {
    slug_from_text(name, SLUG_MAX_LEN)
}

/// Lower-cased (Unicode-aware, like Python's `str.lower`), every run of characters
/// outside `[a-z0-9]` replaced by one `-`, leading/trailing `-` stripped, truncated to
/// `max_len` characters and stripped of trailing `-` again; `None` unless that passes
/// [`validate_slug`].
fn slug_from_text(text: &str, max_len: usize) -> Option<String> {
    let lowered = text.to_lowercase();
    let mut base = String::with_capacity(lowered.len());
    let mut in_run = false;
    for c in lowered.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            base.push(c);
            in_run = false;
        } else if !in_run {
            base.push('-');
            in_run = true;
        }
    }
    // `base` is ASCII, so byte truncation is character truncation.
    let trimmed = base.trim_matches('-');
    let truncated = trimmed.get(..max_len).unwrap_or(trimmed);
    let cleaned = truncated.trim_end_matches('-');
    is_valid_slug(cleaned).then(|| cleaned.to_owned())
}

/// The fallback personal slug `user-<6 hex>` from the low 24 bits of `random` (D15).
pub fn fallback_personal_slug(random: u32) -> String {
    format!("{PERSONAL_SLUG_FALLBACK_PREFIX}-{:06x}", random & 0xFF_FFFF)
}

// ---------------------------------------------------------------------------------------
// Build names (upstream services/slug.py; v1-identity §7, v1-tasks §2.4)
// ---------------------------------------------------------------------------------------

/// The 30 adjectives of build names, in upstream's order.
pub const BUILD_NAME_ADJECTIVES: [&str; 30] = [
    "brave", "calm", "swift", "bright", "bold", "clever", "eager", "gentle", "happy", "keen",
    "lively", "merry", "noble", "proud", "quick", "quiet", "rapid", "sharp", "smart", "steady",
    "strong", "warm", "wise", "witty", "agile", "cosmic", "golden", "silver", "mighty", "nimble",
];

/// The 30 nouns of build names, in upstream's order.
pub const BUILD_NAME_NOUNS: [&str; 30] = [
    "tiger", "river", "falcon", "mountain", "ocean", "forest", "phoenix", "dragon", "eagle",
    "wolf", "hawk", "panther", "storm", "thunder", "comet", "meteor", "nebula", "galaxy", "quasar",
    "pulsar", "aurora", "cascade", "crystal", "diamond", "ember", "flame", "glacier", "horizon",
    "island", "jungle",
];

/// A build name `<adjective>-<noun>-<NN>` with NN in 10..=99 (v1-tasks §2.4), all three
/// parts drawn from `random` (uniform enough for names; collisions are allowed).
pub fn build_name(random: u64) -> String {
    let adjective = BUILD_NAME_ADJECTIVES[(random % 30) as usize];
    let noun = BUILD_NAME_NOUNS[((random / 30) % 30) as usize];
    let number = 10 + (random / 900) % 90;
    format!("{adjective}-{noun}-{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_slugs() {
        for s in [
            "ab",
            "a1",
            "00",
            "my-workspace",
            "my_workspace_123",
            "a-_-b",
            "default",
            "local",
            &"a".repeat(64),
        ] {
            assert_eq!(validate_slug(s), Ok(()), "{s:?}");
            assert!(is_valid_slug(s));
        }
    }

    #[test]
    fn slug_pattern_is_checked_before_length() {
        for s in [
            "",
            "-",
            "_",
            "-a",
            "a-",
            "_a",
            "a_",
            "Ab",
            "aB",
            "a b",
            "a.b",
            "ab\n",
            "\nab",
            "äb",
            "ａb",
            &format!("-{}", "a".repeat(70)),
        ] {
            assert_eq!(validate_slug(s), Err(SlugError::Pattern), "{s:?}");
        }
    }

    #[test]
    fn slug_length_is_two_to_sixty_four() {
        assert_eq!(validate_slug("a"), Err(SlugError::Length));
        assert_eq!(validate_slug("7"), Err(SlugError::Length));
        assert_eq!(validate_slug(&"a".repeat(65)), Err(SlugError::Length));
        assert_eq!(validate_slug(&"a".repeat(64)), Ok(()));
    }

    #[test]
    fn slug_error_messages_are_exact() {
        assert_eq!(
            SlugError::Pattern.pydantic_msg(),
            "Value error, Slug must be lowercase alphanumeric with hyphens or underscores, cannot start or end with hyphen or underscore"
        );
        assert_eq!(
            SlugError::Length.pydantic_msg(),
            "Value error, Slug must be between 2 and 64 characters"
        );
        assert_eq!(
            SlugError::Length.to_string(),
            "Slug must be between 2 and 64 characters"
        );
        assert_eq!(SLUG_ERROR_TYPE, "value_error");
    }

    #[test]
    fn initial_environment_defaults_apply_to_absent_and_empty() {
        assert_eq!(initial_environment_name(None), "Default");
        assert_eq!(initial_environment_name(Some("")), "Default");
        assert_eq!(initial_environment_name(Some("Production")), "Production");
        assert_eq!(initial_environment_slug(None), "default");
        assert_eq!(initial_environment_slug(Some("")), "default");
        assert_eq!(initial_environment_slug(Some("production")), "production");
        assert_eq!(
            initial_environment_description("Default"),
            "Default environment"
        );
    }

    #[test]
    fn personal_workspace_names() {
        assert_eq!(
            personal_workspace_name(Some("Test User"), "testuser@example.com"),
            "Test User's Workspace"
        );
        assert_eq!(
            personal_workspace_name(None, "Johnny@x.org"),
            "johnny's Workspace"
        );
        assert_eq!(
            personal_workspace_name(Some(""), "johnny@x.org"),
            "johnny's Workspace"
        );
    }

    #[test]
    fn personal_slug_from_local_part() {
        assert_eq!(
            personal_slug_base("testuser@example.com").as_deref(),
            Some("testuser")
        );
        assert_eq!(personal_slug_base("johnny@x").as_deref(), Some("johnny"));
        assert_eq!(
            personal_slug_base("John.Doe+tag@x").as_deref(),
            Some("john-doe-tag")
        );
        assert_eq!(personal_slug_base("__a..b__@x").as_deref(), Some("a-b"));
        assert_eq!(
            personal_slug_base("a_b@x").as_deref(),
            Some("a-b"),
            "_ becomes -"
        );
        assert_eq!(personal_slug_base("noatsign").as_deref(), Some("noatsign"));
        assert_eq!(
            personal_slug_base("a@b@c").as_deref(),
            None,
            "local part is before the first @"
        );
        assert_eq!(personal_slug_base("ab@b@c").as_deref(), Some("ab"));
        // Unicode lower-casing as Python: KELVIN SIGN lowers to ASCII 'k'.
        assert_eq!(personal_slug_base("\u{212A}im@x").as_deref(), Some("kim"));
        assert_eq!(personal_slug_base("Zoë@x").as_deref(), Some("zo"));
    }

    #[test]
    fn personal_slug_base_truncates_to_fifty_and_never_ends_with_hyphen() {
        let long = format!("{}@x", "a".repeat(80));
        assert_eq!(personal_slug_base(&long).unwrap().len(), 50);
        // Upstream would give 49 a's plus a trailing '-'; D15 strips it.
        let edge = format!("{}.bbbb@x", "a".repeat(49));
        assert_eq!(personal_slug_base(&edge).unwrap(), "a".repeat(49));
    }

    #[test]
    fn slugs_suggested_from_names() {
        assert_eq!(slug_from_name("Team").as_deref(), Some("team"));
        assert_eq!(
            slug_from_name("Data Science!").as_deref(),
            Some("data-science")
        );
        assert_eq!(
            slug_from_name("  EU / Staging 2 ").as_deref(),
            Some("eu-staging-2")
        );
        assert_eq!(slug_from_name("snake_case").as_deref(), Some("snake-case"));
        assert_eq!(slug_from_name("Zoë's").as_deref(), Some("zo-s"));
        // Up to the full slug length (personal bases stop at 50), never ending in '-'.
        assert_eq!(slug_from_name(&"a".repeat(80)).unwrap().len(), SLUG_MAX_LEN);
        let edge = format!("{} b", "a".repeat(63));
        assert_eq!(slug_from_name(&edge).unwrap(), "a".repeat(63));
        for name in ["", "!", "x", "-- --", "日本"] {
            assert_eq!(slug_from_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn personal_slug_without_usable_base_uses_fallback_d15() {
        for email in ["@x", "!!!@x", "a@x", "é@x", "", "-@x", "a.@x"] {
            let plan = PersonalSlug::from_email(email);
            assert_eq!(plan.base(), None, "{email:?}");
            for attempt in [0, 1, 5, 100] {
                let c = plan.candidate(attempt, 0xABCDEF);
                assert_eq!(c, "user-abcdef");
            }
        }
    }

    #[test]
    fn personal_slug_candidate_sequence() {
        let plan = PersonalSlug::from_email("testuser@other");
        let r = 0x0012_3456;
        assert_eq!(plan.candidate(0, r), "testuser");
        for a in 1..=3 {
            assert_eq!(plan.candidate(a, r), "testuser-3456");
        }
        for a in 4..=6 {
            assert_eq!(plan.candidate(a, r), "testuser-123456");
        }
        assert_eq!(plan.candidate(7, r), "user-123456");
        assert_eq!(plan.candidate(u32::MAX, 0), "user-000000");
        assert_eq!(plan.candidate(1, 0x7), "testuser-0007", "zero-padded");
    }

    #[test]
    fn every_personal_candidate_is_a_valid_slug() {
        let emails = [
            "x@y",
            "ab@y",
            "A.B.C@y",
            "---x---y---@z",
            &"z".repeat(200),
            "\u{0}\u{1}@x",
            "日本語@x",
        ];
        for email in emails {
            let plan = PersonalSlug::from_email(email);
            for attempt in 0..10 {
                for random in [0, 1, 0xFFFF, u32::MAX] {
                    let c = plan.candidate(attempt, random);
                    assert_eq!(validate_slug(&c), Ok(()), "{email:?} {attempt} {c:?}");
                }
            }
        }
    }

    #[test]
    fn personal_defaults() {
        assert_eq!(PERSONAL_ENVIRONMENT_NAME, "Local");
        assert_eq!(PERSONAL_ENVIRONMENT_SLUG, "local");
        assert_eq!(
            PERSONAL_ENVIRONMENT_DESCRIPTION,
            "Local development environment"
        );
        assert_eq!(PERSONAL_TARGET_ROOT_NAME, "default");
        assert_eq!(
            PERSONAL_TARGET_ROOT_URI,
            "~/.stardag/local-target-roots/default"
        );
        assert!(is_valid_slug(PERSONAL_ENVIRONMENT_SLUG));
        assert!(is_valid_slug(DEFAULT_ENVIRONMENT_SLUG));
    }

    #[test]
    fn build_names_have_upstream_shape() {
        assert_eq!(build_name(0), "brave-tiger-10");
        assert_eq!(build_name(29), "nimble-tiger-10");
        assert_eq!(build_name(30), "brave-river-10");
        assert_eq!(build_name(899), "nimble-jungle-10");
        assert_eq!(build_name(900 * 89), "brave-tiger-99");
        for r in [1u64, 12345, u64::MAX, 0xDEAD_BEEF_CAFE] {
            let name = build_name(r);
            let parts: Vec<&str> = name.split('-').collect();
            assert_eq!(parts.len(), 3, "{name}");
            assert!(BUILD_NAME_ADJECTIVES.contains(&parts[0]));
            assert!(BUILD_NAME_NOUNS.contains(&parts[1]));
            let n: u32 = parts[2].parse().unwrap();
            assert!((10..=99).contains(&n));
        }
    }
}
