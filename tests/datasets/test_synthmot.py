"""Tests of the SynthMOT generator and its CLI (tiny scenes, seconds)."""
import json
import os
import os.path as osp
import subprocess
import sys
from collections import defaultdict

import cv2
import numpy as np
import pytest

from mmtrack_kd.datasets import read_mot_txt, synthmot
from mmtrack_kd.datasets.synthmot import (
    KNOBS,
    FrameObject,
    generate_sequence,
    generate_synthmot,
    render_frame,
    resolve_knobs,
    sequence_rng,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# a tiny scene: 3 splits x 1-2 sequences x 8 frames of 128x96
TINY = dict(num_seqs_train=2, num_seqs_val=1, num_seqs_test=1, num_frames=8,
            width=128, height=96, min_people=3, max_people=6,
            min_person_height=12, empty_start=2, occluders=2,
            camera_motion=4.0)


def tiny(out, seed=0, **extra):
    knobs = dict(TINY, **extra)
    return generate_synthmot(out, preset='quick', seed=seed,
                             show_progress=False, **knobs)


def tree_bytes(root):
    """{relative path: bytes} of every file under root."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = f.read()
    return files


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synth') / 'd0')
    meta = tiny(root)
    return root, meta


def load_cocovid(root, split):
    with open(osp.join(root, 'annotations', f'{split}_cocoformat.json')) as f:
        return json.load(f)


def test_layout_and_meta(data):
    root, meta = data
    assert sorted(os.listdir(root)) == ['annotations', 'meta.json', 'test',
                                        'train', 'val']
    with open(osp.join(root, 'meta.json')) as f:
        on_disk = json.load(f)
    assert on_disk == json.loads(json.dumps(meta))
    assert on_disk['seed'] == 0 and on_disk['preset'] == 'quick'
    assert on_disk['knobs'] == resolve_knobs('quick', **TINY)
    for split, n in (('train', 2), ('val', 1), ('test', 1)):
        seqs = sorted(os.listdir(osp.join(root, split)))
        assert seqs == meta['splits'][split]['sequences'] and len(seqs) == n
        for seq in seqs:
            ini = open(osp.join(root, split, seq, 'seqinfo.ini')).read()
            assert ini.splitlines() == [
                '[Sequence]', f'name={seq}', 'imDir=img1', 'frameRate=25',
                'seqLength=8', 'imWidth=128', 'imHeight=96', 'imExt=.jpg']
            imgs = sorted(os.listdir(osp.join(root, split, seq, 'img1')))
            assert imgs == [f'{i:06d}.jpg' for i in range(1, 9)]
            img = cv2.imread(osp.join(root, split, seq, 'img1', imgs[-1]))
            assert img.shape == (96, 128, 3)


def test_same_seed_same_bytes_other_seed_differs(data, tmp_path):
    root, _ = data
    again = str(tmp_path / 'again')
    tiny(again, seed=0)
    first, second = tree_bytes(root), tree_bytes(again)
    assert sorted(first) == sorted(second)
    assert all(first[k] == second[k] for k in first)
    other = str(tmp_path / 'other')
    tiny(other, seed=1)
    third = tree_bytes(other)
    jpgs = [k for k in first if k.endswith('.jpg')]
    assert sum(first[k] != third[k] for k in jpgs) > len(jpgs) // 2
    gt = 'train/SYNTH-TRAIN-01/gt/gt.txt'
    assert first[gt] != third[gt]


def test_splits_have_distinct_sequences_and_identities(tmp_path):
    knobs = resolve_knobs('quick', **TINY)
    seen = {}
    for split in ('train', 'val', 'test'):
        res = generate_sequence(str(tmp_path / split), split, sequence_rng(
            0, split, 0), knobs)
        assert res.num_ids > 0
        seen[split] = set(res.appearances.values())
        with open(tmp_path / split / 'img1' / '000008.jpg', 'rb') as f:
            seen[split + '_img'] = f.read()
    assert not seen['train'] & seen['val']
    assert not seen['train'] & seen['test']
    assert not seen['val'] & seen['test']
    assert seen['train_img'] != seen['val_img'] != seen['test_img']
    names = [synthmot.sequence_name(s, i) for s in ('train', 'val', 'test')
             for i in range(3)]
    assert len(set(names)) == len(names)


def test_json_matches_gt_txt(data):
    root, meta = data
    for split in ('train', 'val', 'test'):
        coco = load_cocovid(root, split)
        assert coco['categories'] == [dict(id=1, name='pedestrian')]
        images = {im['id']: im for im in coco['images']}
        videos = {v['id']: v['name'] for v in coco['videos']}
        anns_by_video = defaultdict(list)
        for ann in coco['annotations']:
            anns_by_video[images[ann['image_id']]['video_id']].append(ann)
        # instance ids: unique over the split, contiguous from 0
        pairs = {(images[a['image_id']]['video_id'], a['mot_instance_id']):
                 a['instance_id'] for a in coco['annotations']}
        assert sorted(pairs.values()) == list(range(coco['num_ids']))
        assert coco['num_ids'] == meta['splits'][split]['num_ids']
        ann_ids = [a['id'] for a in coco['annotations']]
        assert len(set(ann_ids)) == len(ann_ids)
        for vid, name in videos.items():
            frames = sorted(im['frame_id'] for im in images.values()
                            if im['video_id'] == vid)
            assert frames == list(range(8))
            gt = read_mot_txt(osp.join(root, split, name, 'gt', 'gt.txt'))
            anns = anns_by_video[vid]
            assert len(anns) == len(gt)
            by_key = {(images[a['image_id']]['mot_frame_id'],
                       a['mot_instance_id']): a for a in anns}
            assert len(by_key) == len(anns)
            for row in gt:
                ann = by_key[(int(row[0]), int(row[1]))]
                im = images[ann['image_id']]
                assert im['file_name'] == \
                    f'{name}/img1/{int(row[0]):06d}.jpg'
                assert osp.isfile(osp.join(root, split, im['file_name']))
                assert ann['bbox'] == pytest.approx(list(row[2:6]), abs=1e-6)
                assert ann['visibility'] == pytest.approx(row[8], abs=1e-6)
                assert row[6] == 1 and row[7] == 1
                assert ann['area'] == pytest.approx(row[4] * row[5])
                assert ann['category_id'] == 1 and ann['mot_conf'] == 1.0


def test_boxes_inside_image_and_visibility_range(data):
    root, meta = data
    total, occluded, empty = 0, 0, 0
    for split in ('train', 'val', 'test'):
        coco = load_cocovid(root, split)
        with_box = {a['image_id'] for a in coco['annotations']}
        empty += sum(im['id'] not in with_box for im in coco['images'])
        for ann in coco['annotations']:
            x, y, w, h = ann['bbox']
            assert x >= 0 and y >= 0 and w > 0 and h > 0
            assert x + w <= 128 and y + h <= 96
            assert 0.0 <= ann['visibility'] <= 1.0
            total += 1
            occluded += ann['visibility'] < 0.9
    assert total > 0 and occluded > 0
    # empty_start=2: the first two frames of every sequence show nobody
    assert empty >= 2 * 4
    assert meta['splits']['train']['empty_frames'] >= 2 * 2


def _block(pid, depth, x0, y0, h, w, value):
    colour = np.full((h, w, 3), value, np.uint8)
    return FrameObject(depth, x0, y0, colour, np.ones((h, w), bool), pid)


def test_render_frame_occlusion_and_clipping():
    bg = np.zeros((50, 60, 3), np.uint8)
    far = _block(1, 10.0, 10, 10, 20, 10, 50)  # 200 pixels
    near = _block(2, 20.0, 15, 10, 20, 10, 100)  # covers half of far
    post = _block(0, 30.0, 15, 0, 50, 2, 200)  # scene object over near
    edge = _block(3, 5.0, 55, 40, 20, 10, 150)  # 5 x 10 pixels inside
    gone = _block(4, 5.0, 70, 0, 10, 10, 150)  # outside the image
    img, annos = render_frame(bg, [near, post, far, edge, gone])
    out = {pid: (box, vis) for pid, box, vis in annos}
    assert sorted(out) == [1, 2, 3]
    # far keeps its full box but only half its pixels show
    assert out[1] == ([10.0, 10.0, 10.0, 20.0], 0.5)
    # near loses 2 columns of 10 to the post
    assert out[2] == ([15.0, 10.0, 10.0, 20.0], 0.8)
    # edge: clipped box, visibility counts the truncation
    assert out[3] == ([55.0, 40.0, 5.0, 10.0], 0.25)
    assert img[15, 12, 0] == 50 and img[15, 18, 0] == 100
    assert img[15, 15, 0] == 200
    assert not bg.any()  # the background is not modified


def test_generated_visibility_drops_with_occluders(tmp_path):
    clear = tiny(str(tmp_path / 'a'), occluders=0, min_people=1,
                 max_people=1, camera_motion=0.0)
    crowded = tiny(str(tmp_path / 'b'), occluders=12, min_people=12,
                   max_people=12, camera_motion=0.0)
    vis_clear = clear['splits']['train']['mean_visibility']
    vis_crowded = crowded['splits']['train']['mean_visibility']
    assert vis_crowded < vis_clear


def test_resolve_knobs_errors_name_the_knob():
    with pytest.raises(ValueError, match='^lookalike_frac:'):
        resolve_knobs('quick', lookalike_frac=1.5)
    with pytest.raises(ValueError, match='^num_frames:'):
        resolve_knobs('quick', num_frames=2.5)
    with pytest.raises(ValueError, match='^colour:'):
        resolve_knobs('quick', colour=3)
    with pytest.raises(ValueError, match='^preset:'):
        resolve_knobs('huge')
    with pytest.raises(ValueError, match='^min_people:'):
        resolve_knobs('quick', min_people=5, max_people=2)
    assert resolve_knobs('bench')['width'] == 384
    assert set(resolve_knobs('quick')) == set(KNOBS)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
def run_cli(out, *extra):
    """``tools/data/make_synthmot.py`` with the tiny knobs as flags."""
    args = ['--out', str(out), '--no-progress']
    for name, value in TINY.items():
        args += ['--' + name.replace('_', '-'), str(value)]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, osp.join('tools', 'data', 'make_synthmot.py')] +
        args + list(extra), cwd=REPO, env=env, capture_output=True,
        text=True, timeout=300)


def test_cli_generates_and_refuses_non_empty_out(tmp_path):
    out = tmp_path / 'cli'
    proc = run_cli(out, '--seed', '3')
    assert proc.returncode == 0, proc.stderr
    assert f'SynthMOT written to {out}' in proc.stdout
    with open(out / 'meta.json') as f:
        meta = json.load(f)
    assert meta['seed'] == 3 and meta['knobs']['num_frames'] == 8
    assert osp.isfile(out / 'annotations' / 'val_cocoformat.json')
    # the same bytes as the library call with the same knobs and seed
    tiny(str(tmp_path / 'api'), seed=3)
    assert tree_bytes(str(out)) == tree_bytes(str(tmp_path / 'api'))
    before = tree_bytes(str(out))
    proc = run_cli(out, '--seed', '4')
    assert proc.returncode == 2
    assert '--out' in proc.stderr and '--overwrite' in proc.stderr
    assert tree_bytes(str(out)) == before
    # overwrite replaces the data and leaves no temporary folder behind
    (out / 'stale.txt').write_text('old')
    tiny(str(out), seed=4, overwrite=True)
    assert not osp.exists(out / 'stale.txt')
    assert tree_bytes(str(out)) != before
    assert sorted(os.listdir(tmp_path)) == ['api', 'cli']


@pytest.mark.parametrize('flag,value', [('--lookalike-frac', '1.5'),
                                        ('--num-frames', 'ten'),
                                        ('--width', '12'),
                                        ('--noise', '-1'),
                                        ('--min-people', '20')])
def test_cli_bad_value_names_the_flag(tmp_path, flag, value):
    out = tmp_path / 'bad'
    proc = run_cli(out, flag, value)
    assert proc.returncode == 2
    assert flag in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not osp.exists(out)


def test_failed_overwrite_keeps_the_old_dataset(tmp_path, monkeypatch):
    out = tmp_path / 'keep'
    tiny(str(out))
    before = tree_bytes(str(out))

    def broken(*args, **kwargs):
        raise RuntimeError('disk full')

    monkeypatch.setattr(synthmot, 'generate_sequence', broken)
    with pytest.raises(RuntimeError, match='disk full'):
        tiny(str(out), seed=5, overwrite=True)
    assert tree_bytes(str(out)) == before
    assert sorted(os.listdir(tmp_path)) == ['keep']
