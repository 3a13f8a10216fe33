"""polars' allocator (jemalloc), set for the audit before polars is first imported.

An audit frees and allocates buffers of the same sizes batch after batch. By default the
allocator hands freed pages back to the kernel within a fraction of a second, and the next
batch faults them in again. Kept 5 s instead, they are reused: at 1M awards, -0.3 s of CPU in
the kernel (a quarter of its page faults) and -3% wall time, for +80 MB of peak memory
(bench/bench_audit.py). An operator's own ``_RJEM_MALLOC_CONF`` is left as it is; once polars is
loaded the setting can no longer apply, and nothing is changed.
"""

import os
import sys

DECAY = "dirty_decay_ms:5000,muzzy_decay_ms:5000"

if "polars" not in sys.modules:
    os.environ.setdefault("_RJEM_MALLOC_CONF", DECAY)
