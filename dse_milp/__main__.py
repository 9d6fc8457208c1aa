import sys

from dse_milp.cli import main

sys.exit(main())
