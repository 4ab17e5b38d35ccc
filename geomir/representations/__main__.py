"""``python -m geomir.representations`` (see geomir.representations.cli).

Under torchrun (``--distributed``) a process leaves with ``os._exit`` once its run is done,
its files written and its output flushed, without the interpreter's shutdown: there, the
C++ threads of torch.distributed (gloo) can abort a process that has finished
(``terminate called without an active exception``, SIGABRT after the last Python frame; seen
in 2 of about 220 two-process runs on a loaded 2-core machine), and torchrun then reports
the whole job failed.
"""

import os
import sys

from geomir.representations.cli import main

status = main()
if "--distributed" in sys.argv[1:]:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
sys.exit(status)
