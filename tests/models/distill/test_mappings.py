"""Loss-forward mappings: build-time checks that name the config key."""
import copy

import pytest
import torch
from distill_toys import make_track_batch
from mmdet.registry import MODELS

from mmtrack_kd.models.distill import (
    DistillConfigError,
    check_loss_forward_mappings,
    collect_batch_data,
)
from mmtrack_kd.models.distill.mappings import (
    check_connectors_used,
    loss_log_names,
    pair_student_teacher,
)

LOSSES = dict(
    kd=MODELS.build(dict(type='DistillTestMSELoss')),
    spy=MODELS.build(dict(type='DistillTestSpyLoss')))
GOOD = dict(
    kd=dict(preds_S=dict(from_student=True, recorder='neck', data_idx=0,
                         connector='c0'),
            preds_T=dict(from_student=False, recorder='neck', data_idx=0)),
    spy=dict(preds_S=dict(from_student=True, recorder='neck'),
             preds_T=dict(from_student=False, recorder='neck'),
             gt_bboxes=dict(from_data='gt_bboxes')))


def check(mappings):
    return check_loss_forward_mappings(mappings, LOSSES, ['neck'], ['neck'],
                                       ['c0'])


def test_good_mapping_parsed():
    specs = check(GOOD)
    s = specs['kd']['preds_S']
    assert (s.from_student, s.recorder, s.data_idx, s.connectors) == \
        (True, 'neck', 0, ('c0', ))
    assert s.key == 'loss_forward_mappings.kd.preds_S'
    assert specs['spy']['gt_bboxes'].from_data == 'gt_bboxes'
    pairs = pair_student_teacher(specs['kd'])
    assert [(a.arg, b.arg) for a, b in pairs] == [('preds_S', 'preds_T')]


@pytest.mark.parametrize('edit, key', [
    (lambda m: m['kd'].update(foo=dict(from_data='gt_bboxes')),
     r'loss_forward_mappings\.kd\.foo: ToyMSELoss\.forward has no argument'),
    (lambda m: m['spy'].pop('gt_bboxes'),
     r'loss_forward_mappings\.spy\.gt_bboxes: required argument'),
    (lambda m: m['kd']['preds_T'].update(recorder='nek'),
     r'loss_forward_mappings\.kd\.preds_T\.recorder: .nek. is not in '
     r'teacher_recorders; available: neck'),
    (lambda m: m['kd']['preds_S'].update(connector='c9'),
     r'loss_forward_mappings\.kd\.preds_S\.connector: .c9. is not in '
     r'connectors; available: c0'),
    (lambda m: m['spy']['gt_bboxes'].update(from_data='gt_boxes'),
     r'loss_forward_mappings\.spy\.gt_bboxes\.from_data: unknown data'),
    (lambda m: m['kd']['preds_S'].update(dataidx=1),
     r'loss_forward_mappings\.kd\.preds_S: unknown key\(s\) dataidx'),
    (lambda m: m['kd']['preds_S'].pop('from_student'),
     r'loss_forward_mappings\.kd\.preds_S: give from_student'),
    (lambda m: m['kd']['preds_S'].update(data_idx='0'),
     r'loss_forward_mappings\.kd\.preds_S\.data_idx'),
    (lambda m: m.pop('spy'),
     r'loss_forward_mappings\.spy: distill_losses\.spy has no mapping'),
    (lambda m: m.update(other=dict()),
     r'loss_forward_mappings\.other: no such loss'),
    (lambda m: m['kd'].update(preds_T='neck'),
     r'loss_forward_mappings\.kd\.preds_T: expected a dict'),
])
def test_mapping_errors_name_the_key(edit, key):
    mappings = copy.deepcopy(GOOD)
    edit(mappings)
    with pytest.raises(DistillConfigError, match=key):
        check(mappings)


def test_pairing_by_suffix_then_order():
    specs = check_loss_forward_mappings(
        dict(spy=dict(
            preds_T=dict(from_student=False, recorder='t'),
            gt_bboxes=dict(from_data='gt_bboxes'),
            preds_S=dict(from_student=True, recorder='s'))),
        dict(spy=LOSSES['spy']), ['s'], ['t'], [])
    pairs = pair_student_teacher(specs['spy'])
    assert [(a.recorder, b.recorder) for a, b in pairs] == [('s', 't')]


def test_collect_batch_data_from_det_samples():
    inputs, samples = make_track_batch(n=2, t=1, size=24)
    frames = [s[0] for s in samples]
    data = collect_batch_data(inputs[:, 0], frames, ['gt_bboxes', 'gt_ids',
                                                     'batch_input_shape'])
    assert data['batch_input_shape'] == (24, 24)
    assert torch.equal(data['gt_ids'][1], torch.tensor([10, 11]))
    assert 'gt_labels' not in data
    del frames[0].gt_instances.instances_ids
    with pytest.raises(KeyError, match='gt_ids: frame 0'):
        collect_batch_data(inputs[:, 0], frames, ['gt_ids'])
    # no samples: the shape comes from the inputs
    assert collect_batch_data(inputs, [], ['batch_input_shape']) == dict(
        batch_input_shape=(24, 24))


def test_log_names_and_clash_with_student_losses():
    assert loss_log_names(['kd_feat', 'loss_fm'], ['loss_box']) == dict(
        kd_feat='loss_kd_feat', loss_fm='loss_fm')
    with pytest.raises(DistillConfigError,
                       match="distill_losses.box: log key 'loss_box' is also "
                       'a student loss; rename the distillation loss '
                       r'\(e.g. kd_box\)'):
        loss_log_names(['kd_feat', 'box'], ['loss_box', 'loss_id'])


def test_every_connector_must_be_used():
    specs = check(GOOD)
    check_connectors_used(specs, ['c0'])
    with pytest.raises(DistillConfigError, match='connectors.spare: not used'):
        check_connectors_used(specs, ['c0', 'spare'])
