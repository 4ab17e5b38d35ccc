"""``python -m geomir.representations`` (see geomir.representations.cli)."""

import sys

from geomir.representations.cli import main

sys.exit(main())
