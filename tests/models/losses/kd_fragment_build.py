"""Build a distillation fragment inside a tiny CSTrack distiller (the set-up
of ``configs/kd/cstrack_s2n_kd_synthmot.py`` with the fragment instead of
the project's losses) and run one ``loss`` on a hand-made batch."""
import os.path as osp

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.structures import InstanceData

import mmtrack_kd  # noqa: F401  (registers everything)
from mmtrack_kd.utils.config import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
KD_CFG = osp.join(ROOT, 'configs/kd/cstrack_s2n_kd_synthmot.py')
TEACHER_CFG = osp.join(ROOT, 'configs/cstrack/cstrack_yolov5s_synthmot.py')
NUM_IDS = 6
H, W = 64, 96


def sized(model: dict, widen: float, channels: int) -> dict:
    """A CSTrack config at ``widen`` backbone width and ``channels`` neck
    and ID-head channels."""
    model = dict(model)
    model['backbone'] = dict(model['backbone'], widen_factor=widen)
    model['neck'] = dict(model['neck'], out_channels=channels)
    saan = dict(model['id_head'].get('saan') or {}, mid_channels=channels)
    model['id_head'] = dict(model['id_head'], num_ids=NUM_IDS,
                            embed_channels=channels, saan=saan)
    return model


def batch():
    """(2, 1, 3, H, W) inputs and 2 TrackDataSamples of 3 people each."""
    gen = torch.Generator().manual_seed(3)
    inputs = torch.randn(2, 1, 3, H, W, generator=gen)
    samples = []
    for f in range(2):
        xy = torch.rand(3, 2, generator=gen) * torch.tensor([W - 30., H - 40.])
        wh = torch.tensor([[12., 24.]]).expand(3, 2)
        det = DetDataSample()
        det.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1),
            labels=torch.zeros(3, dtype=torch.long),
            instances_ids=torch.arange(3) + 3 * f)
        det.set_metainfo(dict(frame_id=f, img_shape=(H, W),
                              batch_input_shape=(H, W),
                              scale_factor=(1., 1.)))
        track = TrackDataSample()
        track.video_data_samples = [det]
        samples.append(track)
    return inputs, samples


def build_with_fragment(fragment_file: str, var: str, tmp_dir: str,
                        channels: int = 32):
    """The tiny distiller whose ``distill_cfgs`` is the fragment ``var`` of
    ``configs/_base_/distill/<fragment_file>``, around a random teacher
    checkpoint written to ``tmp_dir``; a loss's ``channels`` (MGD, FGD) is
    set to the teacher's ``channels`` per level."""
    teacher = sized(load_config(TEACHER_CFG).model, 0.125, 32)
    torch.manual_seed(0)
    ckpt = osp.join(tmp_dir, 'teacher.pth')
    torch.save({'state_dict': MODELS.build(teacher).state_dict()}, ckpt)
    frag = load_config(
        osp.join(ROOT, 'configs/_base_/distill', fragment_file))[var]
    cfg = load_config(KD_CFG)
    cfg.model.student = sized(cfg.model.student, 0.0625, 16)
    cfg.model.teacher = teacher
    cfg.model.teacher_ckpt = ckpt
    frag = frag.to_dict()
    for loss in frag['distill_losses'].values():
        if 'channels' in loss:
            loss['channels'] = [channels] * 3
    cfg.model.distill_cfgs = [frag]
    cfg.model.dry_run_input_shape = (1, 3, H, W)
    torch.manual_seed(1)
    return MODELS.build(cfg.model).train()
