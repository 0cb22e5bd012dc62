import os

import cv2
import numpy as np
import pytest
from PIL import Image

from mmtrack_kd.apis import FrameSource, VideoReadError, VideoWriter


def frames(n, w=64, h=48):
    return [np.full((h, w, 3), 20 * i, np.uint8) for i in range(n)]


def test_folder_frames_sorted_and_counted(tmp_path):
    for i, img in enumerate(frames(3)):
        cv2.imwrite(str(tmp_path / f'{2 - i:06d}.png'), img)
    (tmp_path / 'notes.txt').write_text('not a frame')
    src = FrameSource(str(tmp_path), fps=7)
    got = list(src)
    assert len(src) == 3 and len(got) == 3
    assert src.fps == 7 and src.frame_size == (64, 48)
    # sorted by name: 000000.png was written last (value 40)
    assert [int(g[0, 0, 0]) for g in got] == [40, 20, 0]


def test_video_roundtrip_mp4(tmp_path):
    out = tmp_path / 'sub' / 'clip.mp4'
    with VideoWriter(str(out), 10, (64, 48)) as w:
        for img in frames(5):
            w.write(img)
    assert out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ['clip.mp4']
    src = FrameSource(str(out))
    assert src.fps == pytest.approx(10)
    assert len(list(src)) == 5 and src.frame_size == (64, 48)


def test_gif_writer(tmp_path):
    out = tmp_path / 'clip.gif'
    with VideoWriter(str(out), 5, (64, 48)) as w:
        for img in frames(4):
            w.write(img)
    with Image.open(out) as im:
        assert im.n_frames == 4 and im.size == (64, 48)


def test_writer_rejects_wrong_size_and_cleans_up(tmp_path):
    out = tmp_path / 'clip.mp4'
    with pytest.raises(ValueError, match='64x48'):
        with VideoWriter(str(out), 5, (32, 32)) as w:
            w.write(frames(1)[0])
    assert list(tmp_path.iterdir()) == []


def test_unreadable_sources_name_the_path(tmp_path):
    with pytest.raises(VideoReadError, match='not found.*nope.mp4'):
        FrameSource(str(tmp_path / 'nope.mp4'))
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'this is not a video')
    with pytest.raises(VideoReadError, match='bad.mp4'):
        FrameSource(str(bad))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(VideoReadError, match='no images.*empty'):
        FrameSource(str(empty))
    os.makedirs(tmp_path / 'broken')
    (tmp_path / 'broken' / '000001.jpg').write_bytes(b'garbage')
    with pytest.raises(VideoReadError, match='000001.jpg'):
        FrameSource(str(tmp_path / 'broken'))


def write_avi(path, n):
    """An MJPG AVI of ``n`` distinct frames (its header declares ``n``)."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10,
                        (64, 48))
    assert w.isOpened()
    rng = np.random.default_rng(0)
    for _ in range(n):
        w.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    w.release()


def test_declared_and_read_frame_counts(tmp_path):
    full = tmp_path / 'full.avi'
    write_avi(full, 12)
    src = FrameSource(str(full))
    assert src.declared_frames == 12 and len(src) == 12
    assert src.frames_read == 0
    assert len(list(src)) == 12
    assert src.frames_read == 12 and src.missing_frames() == 0
    # the same clip cut in half: the header still says 12
    cut = tmp_path / 'cut.avi'
    data = full.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    src = FrameSource(str(cut))
    assert src.declared_frames == 12
    got = len(list(src))
    assert 0 < got < 12
    assert src.frames_read == got and src.missing_frames() == 12 - got
    # a folder declares nothing
    for i, img in enumerate(frames(2)):
        cv2.imwrite(str(tmp_path / f'{i:06d}.png'), img)
    folder = FrameSource(str(tmp_path))
    assert folder.declared_frames is None
    assert len(list(folder)) == 2 and folder.missing_frames() == 0
