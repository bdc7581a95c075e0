#!/usr/bin/env python3
"""bf16 against float32 in the node's path (:mod:`iqgate_testkit.precision_agreement`)."""

import sys

from iqgate_testkit.precision_agreement import main

if __name__ == "__main__":
    sys.exit(main())
