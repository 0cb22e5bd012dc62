import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmtrack_kd.apis import (
    FrameSource,
    FrameTracks,
    build_frame_pipeline,
    draw_tracks,
    forward_backend,
    id_colour,
    init_tracker,
    read_state_dict,
    track_frames,
    tracks_to_mot_rows,
)


def test_frame_pipeline_resizes_like_the_test_pipeline(config_path):
    cfg = Config.fromfile(config_path)
    pipeline = build_frame_pipeline(cfg)
    img = np.zeros((384, 800, 3), np.uint8)
    data = pipeline(dict(img=[img], frame_id=[4], img_id=[5]))
    # Resize(scale=(320, 192), keep_ratio=True): 800x384 -> 320x154
    assert tuple(data['inputs'].shape) == (1, 3, 154, 320)
    meta = data['data_samples'][0].metainfo
    assert meta['frame_id'] == 4 and meta['ori_shape'] == (384, 800)
    assert meta['scale_factor'] == pytest.approx((0.4, 154 / 384), abs=1e-6)


def test_track_frames_gives_tracks_in_original_pixels(tiny_model, seq_frames):
    src = FrameSource(seq_frames)
    results = list(track_frames(tiny_model, list(src)[:4]))
    assert [r.frame_id for r in results] == [0, 1, 2, 3]
    assert sum(len(r) for r in results) > 0, 'the tiny model must detect'
    for r in results:
        assert r.bboxes.shape == (len(r), 4) and r.scores.shape == (len(r), )
        assert len(set(r.ids.tolist())) == len(r)  # one box per id
        assert np.all(r.scores > 0) and np.all(r.scores <= 1)
    # ids persist from frame to frame (the tracker is run, not reset)
    ids = [set(r.ids.tolist()) for r in results]
    assert ids[2] & ids[3]
    # a second pass restarts the tracker at frame 0: same ids again
    again = list(track_frames(tiny_model, list(src)[:3]))
    assert again[2].ids.tolist() == results[2].ids.tolist()


def test_track_frames_leaves_gradients_on_in_the_caller(tiny_model,
                                                        seq_frames):
    """The generator switches gradients off around each step only: the
    caller's code between frames, and after it stopped early, keeps them
    (the demo's second run once left them off for the rest of the
    process)."""
    assert torch.is_grad_enabled()
    frames = list(FrameSource(seq_frames))[:3]
    gen = track_frames(tiny_model, frames)
    for _ in gen:
        assert torch.is_grad_enabled()
        break  # stopped early: the generator stays suspended
    assert torch.is_grad_enabled()
    w = torch.ones(2, requires_grad=True)
    (w * 2).sum().backward()
    assert w.grad is not None
    gen.close()


def test_predict_sees_original_image_scale(tiny_model, seq_frames):
    """An upscaled copy of the frames gives the same boxes, scaled."""
    frames = list(FrameSource(seq_frames))[:3]
    small = list(track_frames(tiny_model, frames))
    big = list(
        track_frames(tiny_model,
                     [np.repeat(np.repeat(f, 2, 0), 2, 1) for f in frames]))
    assert len(small[2]) > 0
    assert big[2].ids.tolist() == small[2].ids.tolist()
    np.testing.assert_allclose(big[2].bboxes, 2 * small[2].bboxes,
                               rtol=1e-3, atol=0.1)


def test_mot_rows():
    r = FrameTracks(
        frame_id=2, ids=np.array([5, 9]),
        bboxes=np.array([[10, 20, 30, 60], [0, 0, 1, 2]], np.float32),
        scores=np.array([0.9, 0.5], np.float32), labels=np.zeros(2, int))
    empty = FrameTracks(0, np.zeros(0, int), np.zeros((0, 4), np.float32),
                        np.zeros(0, np.float32), np.zeros(0, int))
    rows = tracks_to_mot_rows([empty, r])
    np.testing.assert_allclose(
        rows, [[3, 5, 10, 20, 20, 40, 0.9], [3, 9, 0, 0, 1, 2, 0.5]],
        rtol=1e-6)
    assert tracks_to_mot_rows([empty]).shape == (0, 7)


def test_colours_fixed_per_id_and_distinct():
    assert id_colour(3) == id_colour(3)
    colours = {id_colour(i) for i in range(20)}
    assert len(colours) == 20


def test_draw_tracks_draws_on_a_copy():
    frame = np.zeros((100, 120, 3), np.uint8)
    tracks = FrameTracks(0, np.array([4]),
                         np.array([[20, 30, 80, 90]], np.float32),
                         np.array([0.8], np.float32), np.zeros(1, int))
    out = draw_tracks(frame, tracks)
    assert frame.max() == 0
    assert tuple(out[60, 20]) == id_colour(4)  # left edge of the box
    assert out[60, 50].max() == 0  # inside stays untouched


def test_forward_backend_swaps_and_restores(tiny_model):
    calls = []

    def fake(inputs):
        calls.append(tuple(inputs.shape))
        return dict(det_preds=[], id_map=None)

    x = torch.zeros(1, 1, 3, 64, 64)
    with forward_backend(tiny_model, fake):
        tiny_model._forward(x)
    assert calls == [(1, 3, 64, 64)]  # (N, T) folded as CSTrack does
    assert '_forward' not in vars(tiny_model)
    assert isinstance(tiny_model._forward(x[:, 0])['id_map'], torch.Tensor)


def test_num_ids_read_from_checkpoint(tiny_ckpt, config_path, tiny_opts):
    # the config says num_ids='auto' and has no annotations here
    model = init_tracker(config_path, tiny_ckpt, cfg_options=tiny_opts)
    assert model.id_head.num_ids == 7
    assert model.test_cfg['score_thr'] == 0.3


def test_checkpoint_errors(tmp_path, tiny_ckpt, config_path, tiny_opts):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        read_state_dict(str(tmp_path / 'nope.pth'))
    with pytest.raises(FileNotFoundError, match='config file not found'):
        init_tracker(str(tmp_path / 'nope.py'), tiny_ckpt)
    state = read_state_dict(tiny_ckpt)
    kd = tmp_path / 'kd.pth'
    torch.save({'state_dict': {'student.' + k: v for k, v in state.items()}},
               kd)
    with pytest.raises(ValueError, match='extract_student'):
        read_state_dict(str(kd))
    wrong = dict(tiny_opts, **{'model.id_head.embed_channels': 16})
    with pytest.raises(ValueError, match='does not fit'):
        init_tracker(config_path, tiny_ckpt, cfg_options=wrong)


def test_distillation_config_and_extracted_student(tmp_path, repo_root,
                                                   tiny_ckpt, tiny_opts):
    """A KD config tracks with its student; the KD checkpoint goes through
    extract_student (tools/extract_student.py) first."""
    import os.path as osp

    from mmtrack_kd.apis import extract_student
    state = read_state_dict(tiny_ckpt)
    kd = tmp_path / 'kd.pth'
    torch.save({'state_dict': dict(
        {'student.' + k: v for k, v in state.items()},
        **{'teacher.w': torch.zeros(1)})}, kd)
    student = tmp_path / 'student.pth'
    extract_student(str(kd), str(student))
    kd_cfg = osp.join(repo_root, 'configs', 'kd',
                      'cstrack_s2n_kd_synthmot.py')
    model = init_tracker(kd_cfg, str(student), cfg_options=tiny_opts)
    assert type(model).__name__ == 'CSTrack'
    assert model.test_cfg['score_thr'] == 0.3
    torch.testing.assert_close(model.id_head.classifier.weight,
                               state['id_head.classifier.weight'])
