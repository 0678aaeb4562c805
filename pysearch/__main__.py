import sys

from pysearch.cli import main

sys.exit(main())
