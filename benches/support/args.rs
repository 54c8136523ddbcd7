//! Command-line options of the benchmark binaries: `--name value` pairs and flags.

/// The value after `--name`, if given.
pub fn value(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The parsed value after `--name`, or `default` when absent or unparsable.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    value(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Whether the flag `--name` is given.
#[allow(dead_code)] // not every benchmark has flags
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}
