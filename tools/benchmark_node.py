#!/usr/bin/env python3
"""The node speed benchmark (:mod:`iqgate_testkit.node_speed.cli`); ``--help`` lists its options."""

import sys

from iqgate_testkit.node_speed.cli import main

if __name__ == "__main__":
    sys.exit(main())
