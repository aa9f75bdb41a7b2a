import sys

from .dataset import main

sys.exit(main())
