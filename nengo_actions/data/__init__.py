"""DVS event data: readers, datasets, framing and a video-to-events emulator.

Events are numpy structured arrays with fields ``x``, ``y`` (int16), ``p`` (int8, 1 = ON)
and ``t`` (int64, µs), the layout tonic uses, so tonic's transforms apply to them.

    from nengo_actions.data import read_aedat, to_frames
    events = read_aedat("user01_natural.aedat")           # AEDAT 2.0 or 3.1
    frames = to_frames(events, (128, 128, 2), n_frames=16)  # (16, 2, 128, 128) counts

Importing this package loads numpy only (no TensorFlow, Nengo or PyTorch); OpenCV and
tqdm are imported by the functions that need them.
"""

from .aedat import read_aedat
from .aedat_header import AedatHeader, read_aedat_header
from .aedat_write import write_aedat2, write_aedat31
from .dataset import EventDataset, SliceCache, load_arrays
from .emulator import EventEmulator, video_to_aedat, video_to_events
from .events import (
    DVS128_SENSOR,
    EVENT_DTYPE,
    DatasetError,
    EventDataError,
    EventFormatError,
    as_events,
    empty_events,
    make_events,
)
from .formats import read_aedat4, read_events, read_nmnist, read_prophesee
from .frames import frame_bounds, to_frames
from .gesture import dvs128_gesture
from .sl_animals import fold_split, kfold_recordings, sl_animals
from .synthetic_digits import SyntheticDigitSpec, ensure_synthetic_digits, generate_synthetic_digits
from .synthetic_gestures import SyntheticGestureSpec, ensure_synthetic_gestures, generate_synthetic_gestures
from .transforms import Compose, CropTime, Downsample, RandomCropTime, ToFrames

__all__ = [
    "AedatHeader",
    "Compose",
    "CropTime",
    "DVS128_SENSOR",
    "DatasetError",
    "Downsample",
    "EVENT_DTYPE",
    "EventDataError",
    "EventDataset",
    "EventEmulator",
    "EventFormatError",
    "RandomCropTime",
    "SliceCache",
    "SyntheticDigitSpec",
    "SyntheticGestureSpec",
    "ToFrames",
    "as_events",
    "dvs128_gesture",
    "empty_events",
    "ensure_synthetic_digits",
    "ensure_synthetic_gestures",
    "fold_split",
    "frame_bounds",
    "generate_synthetic_digits",
    "generate_synthetic_gestures",
    "kfold_recordings",
    "load_arrays",
    "make_events",
    "read_aedat",
    "read_aedat4",
    "read_aedat_header",
    "read_events",
    "read_nmnist",
    "read_prophesee",
    "sl_animals",
    "to_frames",
    "video_to_aedat",
    "video_to_events",
    "write_aedat2",
    "write_aedat31",
]
