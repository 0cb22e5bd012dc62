"""MOTMetrics end to end on hand-made tracking data samples, through
mmengine's Evaluator (the same to_dict/process/evaluate path as a test
loop)."""
import os.path as osp

import numpy as np
import pytest
import torch

pytest.importorskip('motmetrics')
pytest.importorskip('trackeval')

from mmdet.registry import METRICS  # noqa: E402
from mmdet.structures import DetDataSample, TrackDataSample  # noqa: E402
from mmengine.evaluator import Evaluator  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import mmtrack_kd  # noqa: E402,F401
from mmtrack_kd.datasets.mot_io import read_mot_txt, write_mot_txt  # noqa
from mmtrack_kd.evaluation import MOTMetrics  # noqa: E402

NUM_FRAMES = 6


def _people(frame: int) -> dict:
    """Ground truth of frame (0-based): {instance_id: x1y1x2y2}."""
    return {
        3: [10.0 + 4 * frame, 20.0, 40.0 + 4 * frame, 100.0],
        9: [200.0 - 5 * frame, 30.0, 236.0 - 5 * frame, 120.0],
    }


def _sample(seq: str, frame: int, pred_ids: dict, shift: float = 0.0,
            video_len: int = NUM_FRAMES) -> TrackDataSample:
    """One frame as TrackImgSampler + a tracker make it. ``pred_ids`` maps
    a ground-truth id to the tracker id given to that person."""
    people = _people(frame)
    det = DetDataSample(
        metainfo=dict(
            img_path=osp.join('data', 'val', seq, 'img1',
                              f'{frame + 1:06d}.jpg'),
            frame_id=frame, video_id=0, ori_video_length=video_len,
            ori_shape=(160, 320),
            instances=[
                dict(bbox=box, instance_id=gid, mot_conf=1.0, visibility=1.0,
                     category_id=1, bbox_label=0, ignore_flag=0)
                for gid, box in people.items()
            ]))
    gids = [g for g in people if g in pred_ids]
    boxes = torch.tensor([people[g] for g in gids]).reshape(-1, 4) + shift
    det.pred_track_instances = InstanceData(
        bboxes=boxes, scores=torch.full((len(gids), ), 0.9),
        labels=torch.zeros(len(gids), dtype=torch.long),
        instances_id=torch.tensor([pred_ids[g] for g in gids],
                                  dtype=torch.long))
    return TrackDataSample(video_data_samples=[det])


def _run(samples, **cfg) -> dict:
    evaluator = Evaluator(METRICS.build(dict(type='MOTMetrics', **cfg)))
    for s in samples:
        evaluator.process(data_samples=[s], data_batch=None)
    return evaluator.evaluate(len(samples))


def _video(seq='SEQ-01', id_of=lambda f: {3: 1, 9: 2}, **kw):
    return [_sample(seq, f, id_of(f), **kw) for f in range(NUM_FRAMES)]


def test_registered_and_config_errors(tmp_path):
    assert METRICS.get('MOTMetrics') is MOTMetrics
    with pytest.raises(KeyError, match='metric'):
        MOTMetrics(metric=['MOTA'])
    with pytest.raises(KeyError, match='benchmark'):
        MOTMetrics(benchmark='KITTI')
    with pytest.raises(FileNotFoundError, match='gt_root'):
        MOTMetrics(gt_root=str(tmp_path / 'nope'))


def test_perfect_tracks():
    m = _run(_video())
    assert m['mot/MOTA'] == pytest.approx(100.0)
    assert m['mot/IDF1'] == pytest.approx(100.0)
    assert m['mot/HOTA'] == pytest.approx(100.0, abs=1e-6)
    assert m['mot/MOTP'] == pytest.approx(100.0)
    assert (m['mot/FP'], m['mot/FN'], m['mot/IDs']) == (0, 0, 0)
    assert m['mot/MT'] == 2


def test_identity_switch():
    # person 3 is re-identified as a new track (id 7) from frame 3 on
    m = _run(_video(id_of=lambda f: {3: 1 if f < 3 else 7, 9: 2}))
    assert m['mot/IDs'] == 1
    assert m['mot/FP'] == 0 and m['mot/FN'] == 0
    assert m['mot/MOTA'] == pytest.approx(100.0 * (1 - 1 / 12))
    assert m['mot/IDF1'] < 100.0 and m['mot/HOTA'] < 100.0
    # the two people exchange ids from frame 3 on: both switch
    m = _run(_video(id_of=lambda f: {3: 1, 9: 2} if f < 3 else {3: 2, 9: 1}))
    assert m['mot/IDs'] == 2


def test_missed_person_and_per_sequence(tmp_path):
    samples = _video('SEQ-01') + _video('SEQ-02', id_of=lambda f: {3: 5})
    m = _run(samples, metric=['CLEAR'])
    assert m['mot/FN'] == NUM_FRAMES and m['mot/FP'] == 0
    assert m['mot/MOTA'] == pytest.approx(100.0 * (1 - 6 / 24))
    assert 'mot/HOTA' not in m and 'mot/IDF1' not in m


def test_gt_root_and_outfile(tmp_path):
    gt_root = tmp_path / 'gt'
    rows = [[f + 1, gid, b[0], b[1], b[2] - b[0], b[3] - b[1], 1, 1, 1.0]
            for f in range(NUM_FRAMES) for gid, b in _people(f).items()]
    write_mot_txt(str(gt_root / 'SEQ-01' / 'gt' / 'gt.txt'), np.array(rows),
                  gt=True)
    out = tmp_path / 'results'
    samples = _video(shift=3.0)  # imperfect boxes: MOTP, HOTA below 100
    from_files = _run(samples, gt_root=str(gt_root), outfile_prefix=str(out))
    from_anns = _run(samples)
    assert from_files == pytest.approx(from_anns)
    # every box shifted by (3, 3): IoU 27*77/(2*30*80-27*77) for the 30x80
    # person, 33*87/(2*36*90-33*87) for the 36x90 one
    iou_a = 27 * 77 / (2 * 30 * 80 - 27 * 77)
    iou_b = 33 * 87 / (2 * 36 * 90 - 33 * 87)
    assert from_files['mot/MOTP'] == pytest.approx(50 * (iou_a + iou_b))
    assert from_files['mot/MOTA'] == pytest.approx(100.0)
    assert from_files['mot/HOTA'] < 90
    written = read_mot_txt(str(out / 'SEQ-01.txt'))
    assert written.shape == (2 * NUM_FRAMES, 10)
    assert sorted(np.unique(written[:, 0]).tolist()) == list(
        range(1, NUM_FRAMES + 1))
    np.testing.assert_allclose(written[0, 2:7], [13, 23, 30, 80, 0.9],
                               atol=1e-2)


def test_duplicate_frames_from_ranks_count_once():
    """Records of all ranks are merged; a frame given twice (sampler
    padding) is counted once."""
    metric = MOTMetrics()
    for s in _video():
        metric.process(None, [s.to_dict()])
    records = list(metric.results)
    once = metric.compute_metrics(records)
    twice = metric.compute_metrics(records + records[:2])
    assert once == twice and once['MOTA'] == pytest.approx(100.0)


def test_missing_annotations_is_an_error():
    s = _video()[0]
    s.video_data_samples[0].set_metainfo(dict(instances=None))
    metric = MOTMetrics()
    with pytest.raises(KeyError, match='instances.*gt_root'):
        metric.process(None, [s.to_dict()])


def _dist_worker(rank, world_size, init_file, workdir, samples, queue):
    import os

    import torch.distributed as dist
    os.chdir(workdir)  # collect_tracking_results uses ./.dist_test
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=world_size)
    try:
        evaluator = Evaluator(MOTMetrics())
        mine = samples[rank::world_size]
        for s in mine:
            evaluator.process(data_samples=[s], data_batch=None)
        queue.put((rank, evaluator.evaluate(len(mine))))
    finally:
        dist.destroy_process_group()


def test_distributed_collects_across_ranks(tmp_path):
    """Two gloo ranks, each tracking one video, give the metrics of the
    whole set on every rank (BaseVideoMetric's collection)."""
    import multiprocessing as mp
    samples = _video('SEQ-01') + _video(
        'SEQ-02', id_of=lambda f: {3: 1 if f < 2 else 4, 9: 2})
    # rank r gets samples r, r+2, ...: interleave so each rank has a video
    by_rank = [s for pair in zip(samples[:NUM_FRAMES], samples[NUM_FRAMES:])
               for s in pair]
    expected = _run(samples)
    assert expected['mot/IDs'] == 1
    ctx = mp.get_context('fork')  # children reuse the imported modules
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_dist_worker,
                    args=(r, 2, str(tmp_path / 'init'), str(tmp_path),
                          by_rank, queue)) for r in range(2)
    ]
    for p in procs:
        p.start()
    try:
        got = dict(queue.get(timeout=90) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    assert got[0] == pytest.approx(expected)
    assert got[1] == pytest.approx(expected)
