"""Outputs: the JSON report, the TID 1500 SR, the SC overlay, their UIDs, findings and equipment."""
