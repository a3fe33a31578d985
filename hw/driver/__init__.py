"""Files shipped into a deploy folder: ``groupnet_driver/`` (the driver package) and
``driver.py`` (its FINN-style command line)."""
