"""Tests of MOTKDDataset on a tiny SynthMOT split (empty frames included)."""
import json
import os.path as osp
import re

import pytest
from mmengine.registry import init_default_scope

from mmtrack_kd.datasets import (
    MOTAnnotationError,
    MOTKDDataset,
    generate_synthmot,
)

NUM_FRAMES = 6
EMPTY_START = 2


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    init_default_scope('mmdet')
    out = str(tmp_path_factory.mktemp('motds') / 'synth')
    generate_synthmot(
        out, preset='quick', seed=0, show_progress=False, num_seqs_train=2,
        num_seqs_val=1, num_seqs_test=1, num_frames=NUM_FRAMES, width=128,
        height=96, min_people=3, max_people=5, empty_start=EMPTY_START)
    return out


PIPELINE = [
    dict(type='BaseFrameSample'),
    dict(type='TransformBroadcaster', transforms=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadTrackAnnotations')
    ]),
    dict(type='PackTrackInputs')
]


def build(root, ann_file=None, **kwargs):
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    cfg = dict(
        type='MOTKDDataset',
        data_root=root,
        ann_file=ann_file or 'annotations/train_cocoformat.json',
        data_prefix=dict(img_path='train'),
        metainfo=dict(classes=('pedestrian', )),
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=PIPELINE)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def load_json(root, split='train'):
    with open(osp.join(root, 'annotations', f'{split}_cocoformat.json')) as f:
        return json.load(f)


def test_empty_frames_are_kept_and_load(root):
    ds = build(root)
    assert isinstance(ds, MOTKDDataset)
    assert len(ds) == 2 and ds.num_all_imgs == 2 * NUM_FRAMES
    counts = [len(ds.get_data_info(0)['images'][i]['instances'])
              for i in range(NUM_FRAMES)]
    assert counts[:EMPTY_START] == [0] * EMPTY_START
    assert all(c > 0 for c in counts[EMPTY_START:])
    # an empty frame goes through the pipeline and has empty gt_instances
    out = ds[(0, 0)]
    sample = out['data_samples'][0]
    assert out['inputs'].shape == (1, 3, 96, 128)
    assert sample.gt_instances.bboxes.shape == (0, 4)
    assert len(sample.gt_instances.instances_ids) == 0
    # a busy frame carries boxes x1y1x2y2 and split-wide identity labels
    busy = ds[(0, EMPTY_START)]['data_samples'][0].gt_instances
    assert len(busy.bboxes) == counts[EMPTY_START]
    assert (busy.bboxes[:, 2:] > busy.bboxes[:, :2]).all()
    assert int(busy.instances_ids.max()) < ds.num_ids


def test_mmdet_dataset_rejects_what_we_keep(root):
    with pytest.raises(AssertionError, match='No valid instances'):
        build(root, type='MOTChallengeDataset')


def test_default_filter_drops_empty_frames(root):
    ds = build(root, filter_cfg=None)
    assert ds.num_all_imgs == 2 * (NUM_FRAMES - EMPTY_START)


def test_num_ids_from_json_and_fallback(root, tmp_path):
    coco = load_json(root)
    ds = build(root)
    assert ds.num_ids == coco['num_ids'] > 0
    ids = {a['instance_id'] for a in coco['annotations']}
    assert ids == set(range(ds.num_ids))
    # without the key: the largest instance_id + 1
    del coco['num_ids']
    path = tmp_path / 'no_num_ids.json'
    path.write_text(json.dumps(coco))
    assert build(root, ann_file=str(path)).num_ids == max(ids) + 1
    # lazy init still answers
    assert build(root, lazy_init=True).num_ids == len(ids)


def test_visibility_thr_filters_training_boxes(root):
    coco = load_json(root)
    vis = sorted({a['visibility'] for a in coco['annotations']})
    thr = vis[len(vis) // 2]  # some boxes fall below it, others do not
    low = sum(a['visibility'] < thr for a in coco['annotations'])
    assert 0 < low < len(coco['annotations'])
    all_boxes = build(root)
    visible = build(root, visibility_thr=thr)

    def count(ds):
        return sum(len(img['instances']) for v in range(len(ds))
                   for img in ds.get_data_info(v)['images'])

    assert count(all_boxes) == len(coco['annotations'])
    assert count(visible) == len(coco['annotations']) - low


def _broken(root, tmp_path, change):
    coco = load_json(root)
    ann = coco['annotations'][3]
    change(ann)
    path = tmp_path / 'broken.json'
    path.write_text(json.dumps(coco))
    return str(path), ann['id']


@pytest.mark.parametrize('change,message', [
    (lambda a: a['bbox'].__setitem__(2, -3.0), 'negative width or height'),
    (lambda a: a['bbox'].__setitem__(3, -0.5), 'negative width or height'),
    (lambda a: a.pop('visibility'), "lacks the key\\(s\\) \\['visibility'\\]"),
    (lambda a: a.pop('instance_id'), 'instance_id'),
    (lambda a: a.__setitem__('bbox', [1, 2, 3]), 'bbox must be 4 numbers'),
    (lambda a: a.__setitem__('instance_id', 10_000), 'num_ids'),
])
def test_bad_annotation_names_file_and_id(root, tmp_path, change, message):
    path, ann_id = _broken(root, tmp_path, change)
    with pytest.raises(MOTAnnotationError) as exc:
        build(root, ann_file=path)
    text = str(exc.value)
    assert 'broken.json' in text and f'annotation id={ann_id}' in text
    assert re.search(message, text)


def test_test_mode_keeps_every_frame(root):
    ds = build(root, ann_file='annotations/val_cocoformat.json',
               data_prefix=dict(img_path='val'), test_mode=True,
               filter_cfg=None, pipeline=[
                   dict(type='TransformBroadcaster', transforms=[
                       dict(type='LoadImageFromFile'),
                       dict(type='LoadTrackAnnotations')
                   ]),
                   dict(type='PackTrackInputs')
               ])
    assert ds.num_all_imgs == NUM_FRAMES
    out = ds[(0, 0)]
    assert out['data_samples'][0].metainfo['frame_id'] == 0
    assert ds.num_ids == load_json(root, 'val')['num_ids']
