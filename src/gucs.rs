//! Configuration parameters (GUCs) of the extension, all under the `jdsh.` prefix.

use jdsh_trainer::device::DeviceChoice;
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

/// Where encoders and training run (`jdsh.device`). An enum rather than free text so that a typo
/// is rejected by `SET` itself; CUDA devices are listed up to eight.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Device {
    #[name = c"auto"]
    Auto,
    #[name = c"cpu"]
    Cpu,
    #[name = c"cuda"]
    Cuda,
    #[name = c"cuda:0"]
    Cuda0,
    #[name = c"cuda:1"]
    Cuda1,
    #[name = c"cuda:2"]
    Cuda2,
    #[name = c"cuda:3"]
    Cuda3,
    #[name = c"cuda:4"]
    Cuda4,
    #[name = c"cuda:5"]
    Cuda5,
    #[name = c"cuda:6"]
    Cuda6,
    #[name = c"cuda:7"]
    Cuda7,
}

pub static DEVICE: GucSetting<Device> = GucSetting::<Device>::new(Device::Auto);

/// libtorch threads a backend may use (`jdsh.threads`); 0 = libtorch's default (one per core).
pub static THREADS: GucSetting<i32> = GucSetting::<i32>::new(1);

/// `jdsh.mih_probe_budget`: how much probing a mih index search may do before it reads a whole
/// table of the index instead, in percent of that read's cost; -1 = what the index's build chose.
pub static MIH_PROBE_BUDGET: GucSetting<i32> = GucSetting::<i32>::new(-1);

/// Applies `jdsh.threads` to libtorch (when > 0) and returns it as the trainer's
/// `TrainConfig::threads` (None = libtorch's default).
fn apply_threads() -> Option<usize> {
    // What this backend last gave libtorch: set again only on a change, since the per-row
    // functions come here once per row.
    static APPLIED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
    // The core count, read once: available_parallelism reads the affinity mask and the cgroup
    // quota files on every call, too much for once per row.
    static CORES: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    let n = THREADS.get();
    // 0 = one per core (libtorch's own default, restored after another value).
    let threads = if n > 0 {
        n
    } else {
        *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |c| c.get() as i32))
    };
    if APPLIED.swap(threads, std::sync::atomic::Ordering::Relaxed) != threads {
        tch::set_num_threads(threads);
    }
    (n > 0).then_some(n as usize)
}

/// The trainer's spelling of the `jdsh.device` setting.
fn device() -> DeviceChoice {
    match DEVICE.get() {
        Device::Auto => DeviceChoice::Auto,
        Device::Cpu => DeviceChoice::Cpu,
        Device::Cuda | Device::Cuda0 => DeviceChoice::Cuda(0),
        Device::Cuda1 => DeviceChoice::Cuda(1),
        Device::Cuda2 => DeviceChoice::Cuda(2),
        Device::Cuda3 => DeviceChoice::Cuda(3),
        Device::Cuda4 => DeviceChoice::Cuda(4),
        Device::Cuda5 => DeviceChoice::Cuda(5),
        Device::Cuda6 => DeviceChoice::Cuda(6),
        Device::Cuda7 => DeviceChoice::Cuda(7),
    }
}

// The device policy, in one place. `jdsh.device` names where work runs; `auto` means:
// - one item per call (the per-row encoders): the CPU, where one item is faster than a GPU
//   round trip (and the pure-Rust fast path needs no libtorch at all);
// - batches (encode_texts/encode_images, encode_table, evaluate) and training: a GPU when
//   libtorch sees one, else the CPU, with `jdsh.threads` applied to libtorch.
// An explicit CUDA device that is not there is an error (55000) from the trainer, never a silent
// fall-back. The GUC lists cuda:0 .. cuda:7 (`cuda` = cuda:0); the trainer's CLI takes any index.

/// Device for the encoders called once per item, with `jdsh.threads` applied to libtorch (a
/// per-row image runs the backbone through it; left at libtorch's default of one thread per
/// core, it would also give other floating-point roundings than the batch forms).
pub fn row_device() -> DeviceChoice {
    apply_threads();
    match device() {
        DeviceChoice::Auto => DeviceChoice::Cpu,
        d => d,
    }
}

/// Device for batch encoding and evaluation, with `jdsh.threads` applied to libtorch.
pub fn batch_device() -> DeviceChoice {
    apply_threads();
    device()
}

/// Device and libtorch thread count for `jdsh.train`.
pub fn training_device() -> (DeviceChoice, Option<usize>) {
    (device(), apply_threads())
}

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
    GucRegistry::define_enum_guc(
        c"jdsh.device",
        c"Where jdsh encoders and training run: auto, cpu, cuda or cuda:N.",
        c"auto uses a GPU when libtorch sees one for training and the batch encoders; encoders \
          called once per row always run on the CPU under auto, where one item is faster. \
          An explicit cuda device that is not there is an error, never a silent fall-back.",
        &DEVICE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"jdsh.threads",
        c"CPU threads libtorch may use in one backend for training and batch encoding (0 = one per core).",
        c"A backend normally uses one core; more threads speed up training on an idle machine but \
          slow everything down when the cores are shared (libtorch's threads spin while waiting).",
        &THREADS,
        0,
        1024,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"jdsh.mih_probe_budget",
        c"How much probing a mih index search may do before reading a table of the index instead, \
          in percent of that read's cost (-1 = the index's own choice).",
        c"Each mih index chooses this at build from its codes, for the first 10 rows of a search \
          and for more (jdsh.mih_info shows both); a value set here replaces both. 0 reads \
          at once (brute force over the index's codes); larger values probe longer. A radius \
          search probes all the way whenever that costs less than a read. Results are exact \
          either way; only the speed changes.",
        &MIH_PROBE_BUDGET,
        -1,
        10_000,
        GucContext::Userset,
        GucFlags::default(),
    );
}
