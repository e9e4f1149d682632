import sys

from fh_screen.cli import main

sys.exit(main())
