from .aedat import read_aedat, read_aedat_header, write_aedat31
from .events import EVENT_DTYPE, make_events
from .frames import to_frames
