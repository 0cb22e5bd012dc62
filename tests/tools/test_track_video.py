"""track_video (``tools/demo/track_video.py``): annotated video +
MOTChallenge txt, both backends, and clear errors."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from mmtrack_kd.apis import (
    FrameSource,
    VideoReadError,
    VideoWriter,
    export_onnx,
    init_tracker,
)
from mmtrack_kd.apis.demo import (
    VideoTrackingWarning,
    track_video,
    video_warnings,
)
from mmtrack_kd.datasets.mot_io import read_mot_txt

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'demo', 'track_video.py')
CONFIG = osp.join(ROOT, 'configs', 'cstrack', 'cstrack_yolov5n_synthmot.py')
TINY = {
    'model.backbone.widen_factor': 0.125,
    'model.neck.out_channels': 32,
    'model.id_head.embed_channels': 32,
    'model.id_head.saan.mid_channels': 32,
}
NUM_FRAMES = 6


def cfg_args():
    return ['--cfg-options'] + [f'{k}={v}' for k, v in TINY.items()]


def run_tool(args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, TOOL] + list(args), cwd=ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope='module')
def assets(tmp_path_factory, tiny_synthmot):
    """A random tiny CSTrack checkpoint and an mp4 clip made from a
    SynthMOT test sequence."""
    tmp = tmp_path_factory.mktemp('track_video')
    torch.manual_seed(0)
    model = init_tracker(CONFIG, None, cfg_options=dict(
        TINY, **{'model.id_head.num_ids': 5}))
    ckpt = tmp / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    test_root = osp.join(tiny_synthmot, 'test')
    seq = osp.join(test_root, sorted(os.listdir(test_root))[0], 'img1')
    src = FrameSource(seq)
    clip = tmp / 'clip.mp4'
    with VideoWriter(str(clip), 10, src.frame_size) as w:
        for i, img in enumerate(src):
            if i < NUM_FRAMES:
                w.write(img)
    return dict(model=model, ckpt=str(ckpt), clip=str(clip), seq=seq,
                size=src.frame_size)


def test_mp4_and_txt(assets, tmp_path):
    """Through the command line."""
    out, txt = tmp_path / 'out' / 'tracked.mp4', tmp_path / 'tracked.txt'
    proc = run_tool([
        assets['clip'], CONFIG, assets['ckpt'], '--out', str(out), '--txt',
        str(txt), '--score-thr', '0.3', '--no-progress'] + cfg_args())
    assert proc.returncode == 0, proc.stderr
    assert f'{NUM_FRAMES} frames' in proc.stdout
    # tracks found, every frame read: nothing to warn about
    assert 'warning' not in proc.stderr
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == NUM_FRAMES
    assert frames[0].shape[1::-1] == assets['size']
    rows = read_mot_txt(str(txt))  # raises on any malformed line
    assert len(rows) > 0
    assert set(rows[:, 0]) <= set(range(1, NUM_FRAMES + 1))
    assert np.all(rows[:, 1] >= 0) and np.all(rows[:, 4:6] > 0)
    assert np.all((rows[:, 6] > 0) & (rows[:, 6] <= 1))
    for f in np.unique(rows[:, 0]):  # one row per id and frame
        ids = rows[rows[:, 0] == f, 1]
        assert len(ids) == len(set(ids))


def test_onnx_backend_same_txt_as_pytorch(assets, tmp_path):
    pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    onnx_file = str(tmp_path / 'tiny.onnx')
    export_onnx(assets['model'], onnx_file)
    common = dict(score_thr=0.3, show_progress=False, cfg_options=TINY)
    txt_pt, txt_ort = tmp_path / 'pt.txt', tmp_path / 'ort.txt'
    gif = tmp_path / 'ort.gif'
    track_video(assets['seq'], CONFIG, assets['ckpt'],
                str(tmp_path / 'pt.mp4'), txt=str(txt_pt), **common)
    # with backend='onnx' the checkpoint may be left out
    result = track_video(assets['seq'], CONFIG, None, str(gif),
                         txt=str(txt_ort), backend='onnx', onnx=onnx_file,
                         **common)
    assert result['frames'] == len(os.listdir(assets['seq']))
    pt, ort = read_mot_txt(str(txt_pt)), read_mot_txt(str(txt_ort))
    assert len(pt) >= 6 and pt.shape == ort.shape
    np.testing.assert_array_equal(pt[:, :2], ort[:, :2])  # frames, ids
    np.testing.assert_allclose(pt[:, 2:7], ort[:, 2:7], atol=0.06)
    from PIL import Image
    with Image.open(gif) as im:
        assert im.n_frames == len(os.listdir(assets['seq']))


@pytest.mark.parametrize('case', ['bad_video', 'empty_folder', 'no_ckpt'])
def test_clear_errors(assets, tmp_path, case):
    video, ckpt = assets['clip'], assets['ckpt']
    if case == 'bad_video':
        video = str(tmp_path / 'broken.mp4')
        with open(video, 'wb') as f:
            f.write(b'not a video at all')
        named, error = video, VideoReadError
    elif case == 'empty_folder':
        video = str(tmp_path / 'frames')
        os.makedirs(video)
        named, error = video, VideoReadError
    else:
        ckpt = named = str(tmp_path / 'missing.pth')
        error = FileNotFoundError
    with pytest.raises(error) as exc_info:
        track_video(video, CONFIG, ckpt, str(tmp_path / 'o.mp4'),
                    cfg_options=TINY, show_progress=False)
    assert named in str(exc_info.value)
    assert not (tmp_path / 'o.mp4').exists()


def test_cli_error_has_no_traceback(tmp_path):
    missing = str(tmp_path / 'missing.pth')
    proc = run_tool([str(tmp_path / 'nope.mp4'), CONFIG, missing, '--out',
                     str(tmp_path / 'o.mp4')])
    assert proc.returncode == 2
    assert f'checkpoint file not found: {missing}' in proc.stderr
    assert proc.stderr.startswith('usage:')
    assert 'Traceback' not in proc.stderr


def test_warns_when_no_track_in_the_whole_video(assets, tmp_path):
    """A model that finds no one (score threshold 1): the CLI prints why on
    stderr, the API warns and returns the message."""
    proc = run_tool([assets['clip'], CONFIG, assets['ckpt'], '--out',
                     str(tmp_path / 'none.mp4'), '--score-thr', '1',
                     '--no-progress'] + cfg_args())
    assert proc.returncode == 0, proc.stderr
    assert f'{NUM_FRAMES} frames, 0 track ids' in proc.stdout
    warned = [ln for ln in proc.stderr.splitlines()
              if ln.startswith('warning: ')]
    assert len(warned) == 1, proc.stderr
    assert f'no track in the whole of {assets["clip"]}' in warned[0]
    assert 'synthetic' in warned[0] and 'MOT17' in warned[0]
    with pytest.warns(VideoTrackingWarning, match='no track in the whole'):
        result = track_video(assets['seq'], CONFIG, assets['ckpt'],
                             str(tmp_path / 'none.gif'), score_thr=1.0,
                             cfg_options=TINY, show_progress=False)
    assert result['num_ids'] == 0 and len(result['warnings']) == 1


def test_warns_when_the_video_ends_early(assets, tmp_path):
    """An AVI cut short: its header still declares every frame."""
    full, cut = tmp_path / 'full.avi', tmp_path / 'cut.avi'
    src = FrameSource(assets['seq'])
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*'MJPG'), 10,
                             src.frame_size)
    declared = 0
    for img in src:
        writer.write(img)
        declared += 1
    writer.release()
    data = full.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    proc = run_tool([str(cut), CONFIG, assets['ckpt'], '--out',
                     str(tmp_path / 'cut.mp4'), '--score-thr', '0.3',
                     '--no-progress'] + cfg_args())
    assert proc.returncode == 0, proc.stderr
    read = int(proc.stdout.split(' frames')[0].split()[-1])
    assert 0 < read < declared
    assert (f'warning: {cut} ended after {read} frames, but its header '
            f'declares {declared}: {declared - read} frames could not be '
            'read') in proc.stderr


def test_video_warnings_messages():
    assert video_warnings('v.mp4', 10, 3, declared_frames=10) == []
    assert video_warnings('frames/', 10, 3, declared_frames=None) == []
    short = video_warnings('v.avi', 16, 2, declared_frames=795)
    assert short == ['v.avi ended after 16 frames, but its header declares '
                     '795: 779 frames could not be read; the file is '
                     'probably truncated or damaged']
    both = video_warnings('v.avi', 16, 0, declared_frames=795, score_thr=0.5)
    assert len(both) == 2 and both[0] == short[0]
    assert both[1].startswith('no track in the whole of v.avi (16 frames)')
    assert '(score threshold 0.5)' in both[1]
