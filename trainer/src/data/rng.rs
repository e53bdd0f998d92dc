//! The seeded generator used for splits and initialisations lives in the core (one SplitMix64
//! for the whole project).
pub use jdsh_core::rng::SeededRng;
