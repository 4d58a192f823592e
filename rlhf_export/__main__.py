import sys

from rlhf_export.cli import main

sys.exit(main())
