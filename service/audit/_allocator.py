"""polars' allocator (jemalloc), set for the audit before polars is first imported.

An audit frees and allocates buffers of the same sizes batch after batch. By default the
allocator hands freed pages back to the kernel within a fraction of a second, and the next
batch faults them in again. Kept 5 s instead, they are reused: at 1M awards, -0.3 s of CPU in
the kernel (a quarter of its page faults) and -3% wall time, for +80 MB of peak memory
(bench/bench_audit.py). An operator's own ``_RJEM_MALLOC_CONF`` is left as it is; once polars is
loaded the setting can no longer apply, and nothing is changed.

polars itself writes its own default into the environment when it is imported, so a process
started by one that imported polars (a script, a test, the benchmark) inherits that default as
if an operator had set it: polars' default alone is not taken for an operator's setting.
"""

import os
import sys

DECAY = "dirty_decay_ms:5000,muzzy_decay_ms:5000"
NAME = "_RJEM_MALLOC_CONF"
POLARS_DEFAULT = "dirty_decay_ms:500,muzzy_decay_ms:1000"  # polars/__init__.py


def _own_setting(value: str) -> str:
    """What is left of ``value`` once polars' own default (inherited, once or more) is taken
    out of its start."""
    while value.startswith(POLARS_DEFAULT):
        value = value.removeprefix(POLARS_DEFAULT).lstrip(",")
    return value


if "polars" not in sys.modules and not _own_setting(os.environ.get(NAME, "")):
    os.environ[NAME] = DECAY
