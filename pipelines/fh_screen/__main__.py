import sys

from fh_screen.app.cli import main

sys.exit(main())
