"""Reading frames from a video file or a folder of images, and writing
annotated videos (mp4 through OpenCV, gif through Pillow)."""
import os
import os.path as osp
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')


class VideoReadError(OSError):
    """A video file or a frame folder cannot be read; the message names the
    path."""


class FrameSource:
    """The frames of a video file (``cv2.VideoCapture``) or of a folder of
    images (sorted by file name), as BGR uint8 arrays (H, W, 3).

    The source is checked when it is created: a missing path, a file OpenCV
    cannot decode, or a folder without images raise :class:`VideoReadError`.

    Args:
        path: a video file or a folder of images.
        fps: frame rate of a frame folder (video files report their own;
            this overrides it when given). Defaults to 25 for folders.

    Attributes:
        path (str), is_folder (bool), fps (float), frame_size (tuple): (W, H)
        of the first frame.
        declared_frames (int or None): the frame count a video file's
            header declares (None for a folder, or when the container does
            not say).
        frames_read (int): frames yielded by the last (or current)
            iteration; a video that ends before ``declared_frames`` is
            truncated or damaged.

    Example:
        >>> src = FrameSource('clip.mp4')
        >>> for frame in src:
        ...     print(frame.shape)
    """

    def __init__(self, path: str, fps: Optional[float] = None) -> None:
        self.path = os.fspath(path)
        if not osp.exists(self.path):
            raise VideoReadError(f'video not found: {self.path}')
        self.is_folder = osp.isdir(self.path)
        if self.is_folder:
            self.files = self._list_images(self.path)
            first = cv2.imread(self.files[0], cv2.IMREAD_COLOR)
            if first is None:
                raise VideoReadError(
                    f'cannot read image {self.files[0]} of frame folder '
                    f'{self.path}')
            native_fps = None
            self.declared_frames = None
        else:
            self.files = []
            cap = cv2.VideoCapture(self.path)
            try:
                ok, first = cap.read() if cap.isOpened() else (False, None)
                native_fps = cap.get(cv2.CAP_PROP_FPS) if ok else None
                declared = cap.get(cv2.CAP_PROP_FRAME_COUNT) if ok else 0
            finally:
                cap.release()
            if not ok or first is None:
                raise VideoReadError(
                    f'cannot read video {self.path}: OpenCV cannot open it '
                    'or it has no frames')
            self.declared_frames = int(declared) if (
                np.isfinite(declared) and declared > 0) else None
        self.frames_read = 0
        self.frame_size = (int(first.shape[1]), int(first.shape[0]))
        if fps is not None:
            self.fps = float(fps)
        elif native_fps and np.isfinite(native_fps) and native_fps > 0:
            self.fps = float(native_fps)
        else:
            self.fps = 25.0

    @staticmethod
    def _list_images(folder: str) -> List[str]:
        names = sorted(n for n in os.listdir(folder)
                       if n.lower().endswith(IMAGE_EXTENSIONS))
        if not names:
            raise VideoReadError(
                f'no images ({", ".join(IMAGE_EXTENSIONS)}) in frame folder '
                f'{folder}')
        return [osp.join(folder, n) for n in names]

    def __len__(self) -> int:
        """Number of frames (for a video, as the container reports it; may
        be 0 when unknown)."""
        if self.is_folder:
            return len(self.files)
        return self.declared_frames or 0

    def __iter__(self) -> Iterator[np.ndarray]:
        self.frames_read = 0
        if self.is_folder:
            for f in self.files:
                img = cv2.imread(f, cv2.IMREAD_COLOR)
                if img is None:
                    raise VideoReadError(f'cannot read image {f}')
                self.frames_read += 1
                yield img
            return
        cap = cv2.VideoCapture(self.path)
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                self.frames_read += 1
                yield frame
        finally:
            cap.release()

    def missing_frames(self) -> int:
        """Frames the header declares beyond those the last iteration
        read (0 for a folder, an unknown count, or a complete video)."""
        if self.declared_frames is None:
            return 0
        return max(self.declared_frames - self.frames_read, 0)


class VideoWriter:
    """Write BGR frames to ``.mp4`` (OpenCV, fourcc ``mp4v``) or ``.gif``
    (Pillow), atomically: frames go to a temporary file beside ``path`` that
    is renamed onto ``path`` by :meth:`close`; :meth:`abort` (or an
    exception inside a ``with`` block) removes it.

    Args:
        path: output file; its suffix picks the format (``.gif`` -> GIF,
            anything else -> mp4v through OpenCV).
        fps: frame rate.
        frame_size: (W, H) of every frame.
    """

    def __init__(self, path: str, fps: float,
                 frame_size: Tuple[int, int]) -> None:
        self.path = os.fspath(path)
        self.fps = float(fps)
        self.frame_size = tuple(int(s) for s in frame_size)
        self.is_gif = self.path.lower().endswith('.gif')
        folder = osp.dirname(osp.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        stem, ext = osp.splitext(osp.basename(self.path))
        # the suffix stays last: OpenCV picks the container from it
        self._tmp = osp.join(folder, f'.{stem}.{os.getpid()}.tmp{ext}')
        self._gif_frames: List = []
        self._cv_writer = None
        self.num_frames = 0
        if not self.is_gif:
            self._cv_writer = cv2.VideoWriter(
                self._tmp, cv2.VideoWriter_fourcc(*'mp4v'), self.fps,
                self.frame_size)
            if not self._cv_writer.isOpened():
                raise OSError(f'OpenCV cannot write video {self.path}')

    def write(self, frame: np.ndarray) -> None:
        """Append one BGR uint8 frame (H, W, 3) of size ``frame_size``."""
        if (frame.shape[1], frame.shape[0]) != self.frame_size:
            raise ValueError(
                f'frame {self.num_frames} is {frame.shape[1]}x'
                f'{frame.shape[0]}, the video {self.path} is '
                f'{self.frame_size[0]}x{self.frame_size[1]}')
        if self.is_gif:
            from PIL import Image
            self._gif_frames.append(
                Image.fromarray(np.ascontiguousarray(frame[..., ::-1])))
        else:
            self._cv_writer.write(np.ascontiguousarray(frame))
        self.num_frames += 1

    def close(self) -> None:
        """Finish the file and move it onto ``path``."""
        if self.is_gif:
            if not self._gif_frames:
                raise ValueError(f'no frames to write to {self.path}')
            self._gif_frames[0].save(
                self._tmp, save_all=True,
                append_images=self._gif_frames[1:],
                duration=max(int(round(1000 / self.fps)), 1), loop=0)
            self._gif_frames = []
        else:
            self._cv_writer.release()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the partial output."""
        if self._cv_writer is not None:
            self._cv_writer.release()
        self._gif_frames = []
        if osp.exists(self._tmp):
            os.remove(self._tmp)

    def __enter__(self) -> 'VideoWriter':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
