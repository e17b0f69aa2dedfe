"""The CLI's allocator setting: applied on glibc, a no-op elsewhere."""

import platform
import subprocess
import sys

from spleeter.utils.allocator import keep_freed_memory


def test_glibc_keeps_freed_memory_and_the_cli_runs_with_it():
    assert keep_freed_memory() == (platform.libc_ver()[0] == "glibc")
    done = subprocess.run(
        [sys.executable, "-m", "spleeter", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
