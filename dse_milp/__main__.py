import signal
import sys

if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # Ctrl-C while the imports run
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(130))

from dse_milp.cli import main

sys.exit(main())
