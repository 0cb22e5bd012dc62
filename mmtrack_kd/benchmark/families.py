"""The tracker families of the KD benchmark (``--family``): what each one
trains from and how the shared distillation fragments fit its model.

Per family (:data:`FAMILIES`):

- the plugin's SynthMOT configs the generated ones start from (teacher,
  student, KD) and the config whose pipelines ``img_scale`` rescales;
- how a preset's ``teacher``/``student`` entry of ``presets.yaml`` becomes
  model overrides (:attr:`Family.expand`) and the teacher's neck channels
  (what MGD/FGD need);
- the fragments of our three losses: the ones the family's own KD config
  inherits (:attr:`Family.fragments`; e.g. FairMOT's one-map key-feature
  fragment and its CenterNet response fragment);
- how the other fragments (the baselines) are adapted to its model
  (:func:`adapt_fragment`): where its neck and heads are, how many neck
  levels it has, its registered response decoder, whether it has an ID
  head;
- the methods that do not apply (:attr:`Family.refused`, with why).

``cstrack`` is the benchmark as it was before families: its configs are
generated unchanged (``tests/benchmark/data/cstrack_golden``).
"""
import copy
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

# the fragment files of configs/_base_/distill as the benchmark knows them
DISTILL_DIR = osp.join('_base_', 'distill')

#: Modules that the shared fragments record, by their name in CSTrack.
RECORDED = ('neck', 'bbox_head', 'id_head')


def cstrack_overrides(spec: dict, where: str = 'presets.yaml') -> dict:
    """CSTrack's entry: ``widen_factor`` (backbone), ``channels`` (neck
    output, ID embedding and SAAN), any further key kept as it is (e.g.
    ``test_cfg``)."""
    spec = dict(spec)
    try:
        widen, channels = spec.pop('widen_factor'), spec.pop('channels')
    except KeyError as err:
        raise KeyError(f'{where}: a cstrack teacher/student entry needs '
                       f'{err}') from None
    return dict(
        backbone=dict(widen_factor=widen),
        neck=dict(out_channels=channels),
        id_head=dict(embed_channels=channels,
                     saan=dict(mid_channels=channels)),
        **spec)


def deep_merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in, nested dicts key by key."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def yolox_widths(widen: float) -> dict:
    """The detector overrides of a YOLOX at width ``widen``: backbone, the
    PAFPN's input and output channels, the head's channels (as
    ``configs/bytetrack/bytetrack_yolox_*_synthmot.py`` write them)."""
    c = [int(x * widen) for x in (256, 512, 1024)]
    return dict(
        backbone=dict(widen_factor=widen),
        neck=dict(in_channels=c, out_channels=c[0]),
        bbox_head=dict(in_channels=c[0], feat_channels=c[0]))


def bytetrack_overrides(spec: dict, where: str = 'presets.yaml') -> dict:
    """ByteTrack's entry: ``widen_factor`` of the YOLOX detector (its
    channels follow, :func:`yolox_widths`), any further key merged into the
    model overrides (e.g. ``detector: {test_cfg: {max_per_img: 10}}``)."""
    spec = dict(spec)
    try:
        widen = spec.pop('widen_factor')
    except KeyError as err:
        raise KeyError(f'{where}: a bytetrack teacher/student entry needs '
                       f'{err}') from None
    return deep_merge(dict(detector=yolox_widths(widen)), spec)


def fairmot_overrides(spec: dict, where: str = 'presets.yaml') -> dict:
    """FairMOT's entry: model overrides as they are (teacher and student
    have different backbones and necks, so there is no shared
    shorthand)."""
    if not isinstance(spec, dict) or not spec:
        raise KeyError(f'{where}: a fairmot teacher/student entry needs '
                       'model overrides (backbone, neck, heads)')
    return copy.deepcopy(dict(spec))


def cstrack_neck_channels(teacher: dict) -> int:
    return int(teacher['neck']['out_channels'])


def bytetrack_neck_channels(teacher: dict) -> int:
    return int(teacher['detector']['neck']['out_channels'])


# DLA-34's channels (configs/_base_/models/fairmot_dla34.py); the DLA-up
# neck's one map has the channels of its first level (2)
DLA34_CHANNELS = (16, 32, 64, 128, 256, 512)


def fairmot_neck_channels(teacher: dict) -> int:
    channels = teacher.get('backbone', {}).get('channels', DLA34_CHANNELS)
    level = teacher.get('neck', {}).get('first_level', 2)
    return int(channels[level])


@dataclass(frozen=True)
class Family:
    """One tracker family of the benchmark.

    Attributes:
        name (str): its ``--family`` name.
        teacher, student, kd (str): the plugin's SynthMOT configs the
            generated ones inherit, relative to ``configs/``.
        data (str): the config (relative to ``configs/``) whose train and
            test pipelines ``img_scale`` rescales.
        expand (callable): a preset's ``teacher``/``student`` entry ->
            model overrides.
        neck_channels (callable): the teacher's overrides -> channels of
            each of its neck maps.
        neck_levels (int): maps its neck outputs (a tuple of them).
        prefix (str): where ``neck``, ``bbox_head`` and ``id_head`` are in
            the model (``'detector.'`` for mmdet's ByteTrack).
        decoder (dict): its registered response decoder (``TASK_UTILS``),
            values left None filled from the student's head.
        id_head (bool): it has an ID (re-ID embedding) head.
        fragments (dict): fragment key -> (file relative to ``configs/``,
            variable) of the fragments its own KD config uses instead of
            the shared one (keys of ``plan.FRAGMENTS``).
        refused (dict): method -> why it does not apply to the family.
        loss_defaults (dict): loss type -> arguments its own KD config
            gives that loss, set on a shared fragment's loss of that type
            when it is adapted (unless the fragment sets them).
        description (str): one line for the plan.
    """
    name: str
    teacher: str
    student: str
    kd: str
    data: str
    expand: Callable[..., dict]
    neck_channels: Callable[[dict], int]
    neck_levels: int
    prefix: str
    decoder: dict
    id_head: bool
    fragments: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    refused: Dict[str, str] = field(default_factory=dict)
    loss_defaults: Dict[str, dict] = field(default_factory=dict)
    description: str = ''

    def config(self, role: str) -> str:
        """The path (relative to ``configs/``) of its teacher, student or
        KD config."""
        return dict(teacher=self.teacher, student=self.student,
                    kd=self.kd)[role]


_NO_ID = ('bytetrack has no ID head, so there is no ID response loss '
          '(its ours is the feature and response losses)')

FAMILIES: Dict[str, Family] = {
    'cstrack': Family(
        name='cstrack',
        teacher='cstrack/cstrack_yolov5s_synthmot.py',
        student='cstrack/cstrack_yolov5n_synthmot.py',
        kd='kd/cstrack_s2n_kd_synthmot.py',
        data='_base_/datasets/synthmot.py',
        expand=cstrack_overrides,
        neck_channels=cstrack_neck_channels,
        neck_levels=3,
        prefix='',
        decoder=dict(type='yolov5', anchors=None, strides=None),
        id_head=True,
        description='CSTrack (YOLOv5 body, SAAN ID head)'),
    'fairmot': Family(
        name='fairmot',
        teacher='fairmot/fairmot_dla34_synthmot.py',
        student='fairmot/fairmot_r18_synthmot.py',
        kd='kd/fairmot_dla34_to_r18_kd_synthmot.py',
        data='_base_/datasets/synthmot.py',
        expand=fairmot_overrides,
        neck_channels=fairmot_neck_channels,
        neck_levels=1,
        prefix='',
        decoder=dict(type='centernet', strides=None, ltrb=None),
        id_head=True,
        fragments={
            'feat': ('kd/fairmot_dla34_to_r18_kd_synthmot.py',
                     'kd_key_feature_fairmot'),
            'resp': ('kd/fairmot_dla34_to_r18_kd_synthmot.py',
                     'kd_pred_diff_fairmot'),
        },
        refused={
            'objectness': 'ObjectnessKDLoss decodes YOLO heads only '
                          '(yolov5, yolox); fairmot\'s CenterNet head is '
                          'decoded by \'centernet\'',
        },
        # CenterNet's boxes are trained at its peaks only (the KD config)
        loss_defaults={
            'PredictionDifferenceLoss': dict(boxes_where='teacher_peaks'),
        },
        description='FairMOT (DLA-34 teacher, ResNet-18 student, '
                    'CenterNet heads at stride 4)'),
    'bytetrack': Family(
        name='bytetrack',
        teacher='bytetrack/bytetrack_yolox_s_synthmot.py',
        student='bytetrack/bytetrack_yolox_n_synthmot.py',
        kd='kd/bytetrack_yolox_kd_synthmot.py',
        data='bytetrack/bytetrack_yolox_n_synthmot.py',
        expand=bytetrack_overrides,
        neck_channels=bytetrack_neck_channels,
        neck_levels=3,
        prefix='detector.',
        decoder=dict(type='yolox', strides=None),
        id_head=False,
        fragments={
            'feat': ('_base_/distill/bytetrack/key_feature.py',
                     'kd_key_feature'),
            'resp': ('_base_/distill/bytetrack/prediction_difference.py',
                     'kd_pred_diff'),
        },
        refused={
            'only_id': f'needs the ID response loss; {_NO_ID}',
            'ours_no_feat': f'needs the ID response loss; {_NO_ID}',
            'ours_no_resp': f'needs the ID response loss; {_NO_ID}',
            'ours_no_id': f'would be ours itself; {_NO_ID}',
        },
        description='ByteTrack (mmdet: YOLOX detector, no ID head)'),
}

DEFAULT_FAMILY = 'cstrack'


def get_family(name: str) -> Family:
    """:data:`FAMILIES` ``[name]``; ValueError names ``--family``."""
    if name not in FAMILIES:
        raise ValueError(f'--family: unknown {name!r}, expected one of '
                         f'{list(FAMILIES)}')
    return FAMILIES[name]


def method_fragments(family: Family, method: str,
                     fragments: Tuple[str, ...]) -> Tuple[str, ...]:
    """The fragment keys of ``method`` (``fragments``: its entry of
    ``plan.METHODS``) in ``family``: without the ID loss where the family
    has no ID head (ours = feature + response)."""
    if family.id_head:
        return tuple(fragments)
    return tuple(k for k in fragments if k != 'id')


def check_methods(family: Family, methods: List[str]) -> None:
    """ValueError naming each method of ``methods`` that does not apply to
    the family, and why."""
    bad = [m for m in methods if m in family.refused]
    if bad:
        raise ValueError('--methods: ' + '; '.join(
            f'{m} does not apply to --family {family.name}: '
            f'{family.refused[m]}' for m in bad))


def _source(family: Family, source: str) -> str:
    return family.prefix + source if source in RECORDED else source


def adapt_fragment(family: Family, frag: dict) -> dict:
    """A shared fragment (written for CSTrack: ``neck`` with three levels,
    ``bbox_head``, ``id_head``, the ``yolov5`` decoder) fitted to
    ``family``; the identity for CSTrack.

    - recorded modules get the family's prefix (``detector.neck``);
    - a neck of one map: the first connector of a per-level list only,
      applied to element 0 (``data_idx=0``); unused connectors dropped;
    - decoders of another type are replaced by the family's;
    - the family's ``loss_defaults`` are set on the losses of their type
      that do not set them;
    - without an ID head: the arguments read from ``id_head`` recordings
      (the identity term of the response loss) and their recorders are
      dropped.

    Raises:
        ValueError: a loss that needs the ID head, in a family without
            one.
    """
    frag = copy.deepcopy(frag)
    for side in ('student_recorders', 'teacher_recorders'):
        for rec in frag.get(side, {}).values():
            if 'source' in rec:
                rec['source'] = _source(family, rec['source'])
    id_recs = {name for side in ('student_recorders', 'teacher_recorders')
               for name, rec in frag.get(side, {}).items()
               if rec.get('source') == _source(family, 'id_head')}
    neck_recs = {name for side in ('student_recorders', 'teacher_recorders')
                 for name, rec in frag.get(side, {}).items()
                 if rec.get('source') == _source(family, 'neck')}
    for name, mapping in frag.get('loss_forward_mappings', {}).items():
        for arg, spec in list(mapping.items()):
            rec = spec.get('recorder')
            if rec in id_recs and not family.id_head:
                if arg in ('preds_S', 'preds_T'):
                    raise ValueError(
                        f'distill loss {name} reads the ID head; '
                        f'{family.name} has none')
                del mapping[arg]
                continue
            if rec in neck_recs and family.neck_levels < 3:
                conn = spec.get('connector')
                if isinstance(conn, list):
                    conn = conn[:family.neck_levels]
                    spec['connector'] = (conn[0] if len(conn) == 1 else
                                         conn)
                if family.neck_levels == 1:
                    spec['data_idx'] = 0
    if not family.id_head:
        for side in ('student_recorders', 'teacher_recorders'):
            for name in id_recs & set(frag.get(side, {})):
                del frag[side][name]
    if 'connectors' in frag:
        used = set()
        for mapping in frag.get('loss_forward_mappings', {}).values():
            for spec in mapping.values():
                conn = spec.get('connector')
                used |= {conn} if isinstance(conn, str) else set(conn or ())
        frag['connectors'] = {k: v for k, v in frag['connectors'].items()
                              if k in used}
    for loss in frag.get('distill_losses', {}).values():
        dec = loss.get('decoder')
        if isinstance(dec, dict) and dec.get('type') != \
                family.decoder['type']:
            loss['decoder'] = dict(family.decoder)
        for key, value in family.loss_defaults.get(loss.get('type'),
                                                   {}).items():
            loss.setdefault(key, value)
    return frag
