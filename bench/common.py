"""Helpers shared by the benchmark drivers (mih_bench.py, models_bench.py)."""

import platform


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, for the results' header."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
