//! Command-line options of the benchmark binaries: `--name value` pairs and flags.
//!
//! Strict on purpose: a typo (`--client 64`) or a value that does not parse would
//! otherwise run the whole benchmark with the default and print a table that looks
//! right. `--help` prints the usage; `--bench`, which `cargo bench` appends, is ignored.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

pub struct Args {
    usage: &'static str,
    values: HashMap<String, String>,
    flags: HashSet<String>,
}

impl Args {
    /// Reads the command line: `valued` options take the next argument, `flags` none.
    /// Anything else, or a missing value, prints `usage` and exits with status 2.
    pub fn parse(usage: &'static str, valued: &[&str], flags: &[&str]) -> Args {
        match Self::parse_from(usage, std::env::args().skip(1), valued, flags) {
            Ok(Some(args)) => args,
            Ok(None) => {
                println!("{usage}");
                std::process::exit(0);
            }
            Err(why) => fail(usage, &why),
        }
    }

    /// The options given, or `None` for `--help`.
    fn parse_from(
        usage: &'static str,
        mut args: impl Iterator<Item = String>,
        valued: &[&str],
        flags: &[&str],
    ) -> Result<Option<Args>, String> {
        let mut out = Args {
            usage,
            values: HashMap::new(),
            flags: HashSet::new(),
        };
        while let Some(a) = args.next() {
            match a.as_str() {
                "--help" | "-h" => return Ok(None),
                "--bench" => {}
                _ if valued.contains(&a.as_str()) => {
                    let v = args.next().ok_or_else(|| format!("{a} needs a value"))?;
                    out.values.insert(a, v);
                }
                _ if flags.contains(&a.as_str()) => {
                    out.flags.insert(a);
                }
                _ => return Err(format!("unknown argument {a:?}")),
            }
        }
        Ok(Some(out))
    }

    /// The value after `name`, if given.
    pub fn value(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// The parsed value after `name`, or `default` when absent; exits with status 2
    /// when it does not parse.
    pub fn arg<T: FromStr>(&self, name: &str, default: T) -> T {
        match self.value(name) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| fail(self.usage, &format!("{name}: cannot parse {v:?}"))),
        }
    }

    /// Whether the flag `name` is given.
    #[allow(dead_code)] // not every benchmark has flags
    pub fn flag(&self, name: &str) -> bool {
        self.flags.contains(name)
    }
}

fn fail(usage: &str, why: &str) -> ! {
    eprintln!("error: {why}\n\n{usage}");
    std::process::exit(2);
}
