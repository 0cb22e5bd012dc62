"""The MOT evaluation core against the official MOTChallenge devkit values
(motmetrics' shipped TUD sequences) and against trackeval's own pipeline."""
import os
import os.path as osp

import numpy as np
import pytest

motmetrics = pytest.importorskip('motmetrics')
trackeval = pytest.importorskip('trackeval')

from mmtrack_kd.datasets.mot_io import (  # noqa: E402
    MOTFormatError,
    read_mot_txt,
    write_mot_txt,
)
from mmtrack_kd.evaluation.mot_eval import (  # noqa
    MOT20_DISTRACTOR_CLASSES,
    OVERALL,
    box_iou_xywh,
    evaluate_mot,
    format_table,
    iou_distance,
    load_mot_gt,
    load_mot_results,
)

TUD_DIR = osp.join(osp.dirname(motmetrics.__file__), 'data')
TUD_SEQS = ('TUD-Campus', 'TUD-Stadtmitte')

# MOTChallenge devkit values for the shipped tracker output, as recorded in
# motmetrics' tests/test_metrics.py::test_motchallenge_files (rows Campus,
# Stadtmitte, overall; columns idf1 idp idr recall precision GT MT PT ML FP
# FN IDs Frag mota motp(distance)).
DEVKIT = {
    'TUD-Campus': [0.557659, 0.729730, 0.451253, 0.582173, 0.941441, 8, 1, 6,
                   1, 13, 150, 7, 7, 0.526462, 0.277201],
    'TUD-Stadtmitte': [0.644619, 0.819760, 0.531142, 0.608997, 0.939920, 10,
                       5, 4, 1, 45, 452, 7, 6, 0.564014, 0.345904],
    OVERALL: [0.624296, 0.799176, 0.512211, 0.602640, 0.940268, 18, 6, 10, 2,
              58, 602, 14, 13, 0.555116, 0.330177],
}


def _tud():
    gt = {s: read_mot_txt(osp.join(TUD_DIR, s, 'gt.txt')) for s in TUD_SEQS}
    res = {s: read_mot_txt(osp.join(TUD_DIR, s, 'test.txt')) for s in TUD_SEQS}
    return gt, res


@pytest.fixture(scope='module')
def tud_metrics():
    gt, res = _tud()
    return evaluate_mot(gt, res, distractor_filter=False)


@pytest.mark.parametrize('seq', list(DEVKIT))
def test_tud_matches_devkit(tud_metrics, seq):
    (idf1, idp, idr, rec, prec, n_gt, mt, pt, ml, fp, fn, ids, frag, mota,
     motp_dist) = DEVKIT[seq]
    m = tud_metrics[seq]
    for key, ref in [('IDF1', idf1), ('IDP', idp), ('IDR', idr),
                     ('recall', rec), ('precision', prec), ('MOTA', mota),
                     ('MOTP', 1 - motp_dist)]:
        # the devkit values are rounded to 6 decimals (5e-5 points at most;
        # the worst difference measured is 4.9e-5 points)
        assert m[key] == pytest.approx(ref * 100, abs=1e-4), key
    for key, ref in [('GT_tracks', n_gt), ('MT', mt), ('PT', pt), ('ML', ml),
                     ('FP', fp), ('FN', fn), ('IDs', ids), ('Frag', frag)]:
        assert m[key] == ref, key
        assert isinstance(m[key], int)
    assert m['MT%'] == pytest.approx(100.0 * mt / n_gt)
    assert m['MT%'] + m['PT%'] + m['ML%'] == pytest.approx(100.0)


def test_tud_distractor_filter_refuses_classless_gt():
    gt, res = _tud()
    with pytest.raises(ValueError, match='TUD-Campus.*class -1.*distractor'):
        evaluate_mot(gt, res, distractor_filter=True)


def _trackeval_reference(tmp_path, gt, res, benchmark):
    """Run trackeval's own MotChallenge2DBox pipeline on files."""
    gt_dir = tmp_path / 'gt'
    tr_dir = tmp_path / 'trackers'
    seq_info = {}
    for s in gt:
        write_mot_txt(str(gt_dir / s / 'gt' / 'gt.txt'), gt[s], gt=True)
        write_mot_txt(str(tr_dir / 'tr' / 'data' / (s + '.txt')), res[s])
        seq_info[s] = int(max(gt[s][:, 0].max(), res[s][:, 0].max()))
    eval_cfg = trackeval.Evaluator.get_default_eval_config()
    eval_cfg.update(
        USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False,
        OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False, PLOT_CURVES=False,
        TIME_PROGRESS=False, DISPLAY_LESS_PROGRESS=True,
        BREAK_ON_ERROR=True, LOG_ON_ERROR=str(tmp_path / 'err.log'))
    ds_cfg = dict(GT_FOLDER=str(gt_dir), TRACKERS_FOLDER=str(tr_dir),
                  OUTPUT_FOLDER=str(tmp_path / 'out'), TRACKERS_TO_EVAL=['tr'],
                  BENCHMARK=benchmark, SKIP_SPLIT_FOL=True,
                  SEQ_INFO=seq_info, PRINT_CONFIG=False)
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(),
               trackeval.metrics.Identity()]
    out, _ = trackeval.Evaluator(eval_cfg).evaluate(
        [trackeval.datasets.MotChallenge2DBox(ds_cfg)], metrics)
    out = out['MotChallenge2DBox']['tr']
    return {(OVERALL if s == 'COMBINED_SEQ' else s): v['pedestrian']
            for s, v in out.items()}


def _assert_same_as_trackeval(ours, ref):
    for seq, r in ref.items():
        m = ours[seq]
        for key in ('HOTA', 'DetA', 'AssA'):
            assert m[key] == pytest.approx(
                100 * float(np.mean(r['HOTA'][key])), abs=1e-6), (seq, key)
        assert m['MOTA'] == pytest.approx(100 * r['CLEAR']['MOTA'], abs=1e-6)
        assert m['FP'] == r['CLEAR']['CLR_FP']
        assert m['FN'] == r['CLEAR']['CLR_FN']
        assert m['IDF1'] == pytest.approx(100 * r['Identity']['IDF1'],
                                          abs=1e-6)


def test_tud_hota_matches_trackeval_pipeline(tmp_path, tud_metrics):
    gt, res = _tud()
    ref = _trackeval_reference(tmp_path, gt, res, 'MOT15')
    _assert_same_as_trackeval(tud_metrics, ref)
    assert 30 < tud_metrics[OVERALL]['HOTA'] < 50  # a real, imperfect tracker


def _mot17_toy():
    """Two frames: a pedestrian tracked, a static person (class 7) covered
    by a tracker box, an ignored (conf 0) pedestrian, a plain FP."""
    gt = np.array([
        # frame id  x    y   w   h  conf cls vis
        [1, 1, 10, 10, 20, 40, 1, 1, 1.0],
        [1, 2, 100, 10, 20, 40, 1, 7, 1.0],
        [1, 3, 200, 10, 20, 40, 0, 1, 1.0],
        [2, 1, 12, 10, 20, 40, 1, 1, 1.0],
        [2, 2, 100, 10, 20, 40, 1, 7, 1.0],
    ])
    res = np.array([
        [1, 5, 11, 10, 20, 40, 0.9],
        [1, 6, 101, 11, 20, 40, 0.9],  # on the static person
        [1, 7, 201, 10, 20, 40, 0.9],  # on the ignored pedestrian
        [2, 5, 12, 11, 20, 40, 0.9],
        [2, 6, 100, 10, 20, 40, 0.9],  # on the static person
        [2, 8, 300, 10, 20, 40, 0.9],  # matches nothing
    ])
    return {'toy': gt}, {'toy': res}


def test_distractor_preprocessing(tmp_path):
    gt, res = _mot17_toy()
    on = evaluate_mot(gt, res, distractor_filter=True)['toy']
    # boxes on the static person are removed; the box on the conf-0
    # pedestrian stays and is a false positive (as in the devkit)
    assert (on['FP'], on['FN'], on['IDs']) == (2, 0, 0)
    assert on['GT_tracks'] == 1 and on['pred_dets'] == 4
    off = evaluate_mot(gt, res, distractor_filter=False)['toy']
    # class ignored: the static person counts as a tracked GT
    assert (off['FP'], off['FN'], off['GT_tracks']) == (2, 0, 2)
    ref = _trackeval_reference(tmp_path, gt, res, 'MOT17')
    _assert_same_as_trackeval({'toy': on, OVERALL: on}, ref)


def test_iou_distance_threshold():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 10, 20],
                  [20, 20, 5, 5]])
    iou = box_iou_xywh(a, b)
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.5, 0.0]])
    dist = iou_distance(a, b, max_dist=0.5)
    assert dist[0, 0] == 0 and dist[0, 2] == pytest.approx(0.5)
    assert np.isnan(dist[0, 1]) and np.isnan(dist[0, 3])
    assert box_iou_xywh(np.zeros((0, 4)), b).shape == (0, 4)


def test_sequence_mismatch_and_duplicates():
    gt, res = _mot17_toy()
    with pytest.raises(ValueError, match=r"missing for sequence\(s\) \['toy'"):
        evaluate_mot(gt, {})
    with pytest.raises(ValueError, match='other.*no ground truth'):
        evaluate_mot(gt, {**res, 'other': res['toy']})
    dup = np.concatenate([res['toy'], res['toy'][:1]])
    with pytest.raises(ValueError, match='toy results: id 5 .* frame 1'):
        evaluate_mot(gt, {'toy': dup})
    with pytest.raises(ValueError, match='metrics'):
        evaluate_mot(gt, res, metrics=['MOTA'])


def test_empty_results_count_all_gt_as_missed():
    gt, _ = _mot17_toy()
    m = evaluate_mot(gt, {'toy': np.zeros((0, 10))}, distractor_filter=True)
    assert m['toy']['FN'] == 2 and m['toy']['FP'] == 0
    assert m['toy']['MOTA'] == 0.0 and m['toy']['HOTA'] == 0.0


def test_loaders(tmp_path):
    gt, res = _mot17_toy()
    write_mot_txt(str(tmp_path / 'gt' / 'toy' / 'gt' / 'gt.txt'), gt['toy'],
                  gt=True)
    os.makedirs(tmp_path / 'gt' / 'not_a_seq')
    loaded = load_mot_gt(str(tmp_path / 'gt'))
    assert list(loaded) == ['toy']
    np.testing.assert_allclose(loaded['toy'][:, :9], gt['toy'], atol=1e-2)
    with pytest.raises(FileNotFoundError, match="'toy'.*res/toy.txt"):
        load_mot_results(str(tmp_path / 'res'), ['toy'])
    with pytest.raises(FileNotFoundError, match='missing_root is not a'):
        load_mot_gt(str(tmp_path / 'missing_root'))
    with pytest.raises(FileNotFoundError, match='no sequence with gt/gt.txt'):
        load_mot_gt(str(tmp_path / 'gt' / 'not_a_seq'))
    bad = tmp_path / 'res' / 'toy.txt'
    os.makedirs(bad.parent)
    bad.write_text('1,5,11,10,20,40,0.9\n2,x,1,1,1,1,1\n')
    with pytest.raises(MOTFormatError, match=r'toy\.txt:2'):
        load_mot_results(str(tmp_path / 'res'), ['toy'])


def test_format_table(tud_metrics):
    table = format_table(tud_metrics)
    lines = table.splitlines()
    assert lines[0].split()[:4] == ['sequence', 'HOTA', 'DetA', 'AssA']
    assert [ln.split()[0] for ln in lines[1:]] == list(TUD_SEQS) + [OVERALL]
    assert '55.5' in lines[-1]  # overall MOTA 55.5116


def test_undefined_ratios_are_nan():
    gt, res = _mot17_toy()
    m = evaluate_mot({'toy': gt['toy'], 'empty': np.zeros((0, 10))},
                     {'toy': res['toy'], 'empty': res['toy'][:1]})
    # no ground truth: MOTA and recall are undefined, not -inf
    assert np.isnan(m['empty']['MOTA']) and np.isnan(m['empty']['recall'])
    assert m['empty']['FP'] == 1 and m['empty']['HOTA'] == 0.0
    assert m[OVERALL]['FP'] == m['toy']['FP'] + 1


def test_mot20_non_mot_vehicle_is_a_distractor(tmp_path):
    gt, res = _mot17_toy()
    gt['toy'][gt['toy'][:, 7] == 7, 7] = 6  # static person -> vehicle
    mot17 = evaluate_mot(gt, res)['toy']
    assert mot17['FP'] == 4  # class 6 is no distractor in MOT16/17
    mot20 = evaluate_mot(gt, res,
                         distractor_classes=MOT20_DISTRACTOR_CLASSES)['toy']
    assert mot20['FP'] == 2
    ref = _trackeval_reference(tmp_path, gt, res, 'MOT20')
    _assert_same_as_trackeval({'toy': mot20, OVERALL: mot20}, ref)
