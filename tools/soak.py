#!/usr/bin/env python3
"""The hardening campaign (:mod:`iqgate_testkit.soak.campaign`); ``--help`` lists its parts."""

import sys

from iqgate_testkit.soak.campaign import main

if __name__ == "__main__":
    sys.exit(main())
