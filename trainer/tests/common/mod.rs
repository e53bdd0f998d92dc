//! Shared helpers of the integration tests: the library's synthetic data sets, and the real data
//! sets loaded so that a missing one FAILS the test with a message saying how to get it (no test
//! passes without its data).
#![allow(dead_code)]

use std::fmt::Display;
use std::path::PathBuf;

use jdsh_trainer::data::mirflickr::{self, MirFlickr};
use jdsh_trainer::data::wikipedia::{self, WikipediaSplit};
use jdsh_trainer::data::{data_root, emoji_dir, how_to_get, Benchmark};

#[allow(unused_imports)] // not every test file uses them
pub use jdsh_trainer::data::synthetic::{features as synthetic, features_and_texts as synthetic_texts};

/// `r`'s value, or a panic naming the data set, the error and how to get the data.
pub fn loaded<T, E: Display>(name: &str, r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("cannot load the {name} data: {e}\n{}", how_to_get(name)))
}

/// `<data>/wikipedia` (see `jdsh_trainer::data::data_root`).
pub fn wikipedia_dir() -> PathBuf {
    data_root().join("wikipedia")
}

/// The Wikipedia benchmark (standard protocol).
pub fn wikipedia() -> Benchmark {
    loaded("wikipedia", wikipedia::load(&wikipedia_dir()))
}

/// One Wikipedia split file, "train" or "test".
pub fn wikipedia_split(name: &str) -> WikipediaSplit {
    loaded("wikipedia", wikipedia::load_split(&wikipedia_dir(), name))
}

/// MIRFlickr-25K from `<data>/mirflickr25k`.
pub fn mirflickr() -> MirFlickr {
    loaded("mirflickr", mirflickr::load(&data_root().join("mirflickr25k")))
}

/// The emoji packages' folder, after checking that `scripts/fetch-emoji.sh` completed there.
pub fn emoji() -> PathBuf {
    let dir = emoji_dir();
    let missing: Vec<&str> =
        ["emoji-datasource-google", "emoji-datasource-twitter", "emoji-datasource-facebook", "emojilib"]
            .into_iter()
            .filter(|p| !dir.join(p).join(".done").is_file())
            .collect();
    assert!(
        missing.is_empty(),
        "the emoji data are missing ({} not in {}): {}",
        missing.join(", "),
        dir.display(),
        how_to_get("emoji")
    );
    dir
}
