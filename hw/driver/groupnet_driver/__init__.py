"""On-board driver of a Group-Net accelerator (needs only numpy, and pynq on a board).

Shipped by ``groupnet deploy`` into a self-contained folder; see ``Accelerator``.
"""

from .accelerator import Accelerator
from .spec import DriverError, IOSpec

__all__ = ["Accelerator", "DriverError", "IOSpec"]
__version__ = "0.1.0"
