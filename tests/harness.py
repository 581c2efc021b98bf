"""Shared by the Python test scripts that CTest runs: the skip rule and the PASS/FAIL bookkeeping.

A script imports its oracle packages through require(); when they are missing it exits 77, which
CTest reports as skipped, unless FP4FORGE_REQUIRE_ORACLES=1 (as in CI), where missing is failure.
It ends with finish(), which prints the "N passed, N failed" line and sets the exit status.
"""
import importlib
import os
import sys

os.environ.update(HF_HUB_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
_results = {"passed": 0, "failed": 0}


def require(*modules):
    """Imports and returns the modules, or exits as skipped (77) / failed when one is missing."""
    try:
        return [importlib.import_module(m) for m in modules]
    except ImportError as e:
        print(f"oracle packages missing ({e}); install with: pip install -r tests/oracle/requirements.txt")
        sys.exit(1 if os.environ.get("FP4FORGE_REQUIRE_ORACLES") == "1" else 77)


def check(name, ok, detail=""):
    _results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {name} {detail}", flush=True)


def finish():
    print(f"{_results['passed']} passed, {_results['failed']} failed")
    sys.exit(1 if _results["failed"] else 0)
