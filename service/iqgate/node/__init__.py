"""The DICOM node: receive images, assess them, and send the findings to PACS."""
