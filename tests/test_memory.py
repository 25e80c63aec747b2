"""keep_freed_memory: freed blocks stay in the process for the next face instead of going back to the OS."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc (Linux) allocator setting")

# Allocate and free a 256 MB block (numpy uses malloc), in a thread like the restore stage, then read VmRSS.
_CHILD = """
import sys, threading
import numpy as np
from vidgpen.models.runtime.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def work():
    block = np.ones(256 * 2**20, np.uint8)
    del block
thread = threading.Thread(target=work)
thread.start()
thread.join()
status = open("/proc/self/status").read().split("\\n")
print(next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS")))
"""


def _rss_after_free(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def test_freed_activations_stay_mapped_for_reuse():
    default, kept = _rss_after_free("default"), _rss_after_free("keep")
    assert kept - default > 200, (default, kept)  # MB: glibc returned the block; with the setting it is kept
