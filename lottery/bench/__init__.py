"""Benchmarks: suites (loaders), scorers, the runner, reports and the abilities probe."""

from lottery.bench.runner import BenchConfig, BenchRun, model_params, run_bench
from lottery.bench.suites import SUITES, Item, SuiteData, load_suite

__all__ = ["SUITES", "BenchConfig", "BenchRun", "Item", "SuiteData", "load_suite",
           "model_params", "run_bench"]
