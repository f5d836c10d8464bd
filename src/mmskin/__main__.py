"""python -m mmskin"""

from .cli import entry

entry()
