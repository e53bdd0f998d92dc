//! Configuration parameters (GUCs) of the extension, all under the `jdsh.` prefix.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

/// Text form of `bitcode` values, like `bytea_output` for `bytea`.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum BitcodeOutput {
    /// One `0`/`1` character per bit.
    #[name = c"bits"]
    Bits,
    /// `x` + one hex digit per 4 bits (codes whose length is not a multiple of 4 stay in bits).
    #[name = c"hex"]
    Hex,
}

pub static BITCODE_OUTPUT: GucSetting<BitcodeOutput> = GucSetting::<BitcodeOutput>::new(BitcodeOutput::Bits);

pub fn init() {
    GucRegistry::define_enum_guc(
        c"jdsh.bitcode_output",
        c"Text output format of bitcode values: bits or hex.",
        c"bits writes one 0/1 per bit; hex writes x followed by one hex digit per 4 bits \
          (only for lengths divisible by 4; other codes are written as bits). Both read back.",
        &BITCODE_OUTPUT,
        GucContext::Userset,
        GucFlags::default(),
    );
}
