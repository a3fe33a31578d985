"""Deploy packages for PYNQ boards (``groupnet deploy``); the on-board driver is the
standalone package in ``driver/groupnet_driver`` (numpy + pynq only)."""
