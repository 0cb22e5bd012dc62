"""mmtrack_kd.utils.compat: the patches ``import mmtrack_kd`` applies."""
import io

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample

import mmtrack_kd  # noqa: F401  (applies the patches)
from mmtrack_kd.utils import compat


def setters():
    """(original mmdet setter, patched setter)."""
    patched = TrackDataSample.__dict__['video_data_samples'].fset
    return patched.__wrapped__, patched


def test_every_patch_applies_to_the_pinned_versions():
    # requirements pin mmdet 3.3.0, mmengine 0.10.x and torch >= 2.6
    assert compat.patch_status() == {
        'torch_safe_globals': compat.APPLIED,
        'track_data_sample_setter': compat.APPLIED,
        'config_scope': compat.APPLIED,
    }
    for patch in compat.PATCHES.values():
        assert patch.why and patch.versions and patch.target


def test_patches_are_idempotent():
    before = setters()
    compat.fast_track_data_sample_setter()
    compat.allow_mmengine_checkpoints()
    assert compat.apply_patches() == compat.patch_status()
    assert setters() == before


def test_setter_does_not_format_the_sample(monkeypatch):
    monkeypatch.setattr(DetDataSample, '__repr__', lambda self: pytest.fail(
        'repr called'))
    a, b = DetDataSample(), DetDataSample()
    sample = TrackDataSample()
    sample.video_data_samples = [a, b]
    assert sample.video_data_samples == [a, b]
    assert len(sample) == 2
    sample.video_data_samples = a  # a single sample becomes a list
    assert sample.video_data_samples == [a]


@pytest.mark.parametrize('make', [
    lambda a, b: [a, b],
    lambda a, b: [a],
    lambda a, b: a,
    lambda a, b: [a, 'not a sample'],  # only the first element is checked
])
def test_patched_setter_stores_what_the_original_stores(make):
    original, patched = setters()
    a, b = DetDataSample(), DetDataSample()
    want, got = TrackDataSample(), TrackDataSample()
    original(want, make(a, b))
    patched(got, make(a, b))
    assert got.video_data_samples == want.video_data_samples
    assert type(got.video_data_samples) is list
    assert list(got.keys()) == list(want.keys())
    assert len(got) == len(want)


@pytest.mark.parametrize('value', [
    (DetDataSample(), ), None, 'abc', [], [1], [None, DetDataSample()],
    [TrackDataSample()]
])
def test_patched_setter_raises_what_the_original_raises(value):
    original, patched = setters()
    with pytest.raises(Exception) as want:
        original(TrackDataSample(), value)
    with pytest.raises(want.type) as got:
        patched(TrackDataSample(), value)
    # same message; the patch names the wrong type after it
    assert str(got.value).startswith(str(want.value))
    if want.type is AssertionError and isinstance(value, list):
        assert str(want.value) == compat.NOT_DET_DATA_SAMPLE
        assert str(got.value).endswith(type(value[0]).__name__)


def test_setter_patch_is_skipped_for_other_mmdet_versions(monkeypatch):
    import mmdet
    monkeypatch.setattr(mmdet, '__version__', '3.4.0')
    reason = compat.PATCHES['track_data_sample_setter'].skip_reason()
    assert '3.3.0' in reason and '3.4.0' in reason


def test_safe_globals_patch_is_skipped_for_old_torch(monkeypatch):
    monkeypatch.setattr(torch, '__version__', '2.5.1')
    assert '2.6' in compat.PATCHES['torch_safe_globals'].skip_reason()
    import mmengine
    monkeypatch.setattr(torch, '__version__', '2.13.0+cpu')
    monkeypatch.setattr(mmengine, '__version__', '0.11.0')
    assert '0.11.0' in compat.PATCHES['torch_safe_globals'].skip_reason()


def test_a_skipped_patch_is_not_applied_and_says_why(monkeypatch):
    applied = []
    monkeypatch.setattr(compat, '_STATUS', {})
    monkeypatch.setattr(compat, 'PATCHES', {
        'quiet': compat.Patch('quiet', 't', 'w', 'v', lambda: 'too new',
                              lambda: applied.append('quiet')),
        'loud': compat.Patch('loud', 't', 'w', 'v', lambda: 'too old',
                             lambda: applied.append('loud'),
                             warn_on_skip=True),
        'fits': compat.Patch('fits', 't', 'w', 'v', lambda: None,
                             lambda: applied.append('fits')),
    })
    with pytest.warns(UserWarning, match="'loud' not applied: too old"):
        status = compat.apply_patches()
    assert applied == ['fits']
    assert status == {'quiet': 'skipped: too new',
                      'loud': 'skipped: too old', 'fits': compat.APPLIED}
    compat.apply_patches()  # already decided: nothing runs again
    assert applied == ['fits']


def test_mmengine_message_hub_loads_with_weights_only():
    from mmengine.logging.history_buffer import HistoryBuffer
    buf = HistoryBuffer()
    buf.update(1.5)
    buf.update(3)
    state = dict(message_hub=dict(log_scalars={'loss': buf}),
                 meta=dict(arr=np.arange(3, dtype=np.uint8),
                           lr=np.float32(0.5), step=np.int64(7)))
    f = io.BytesIO()
    torch.save(state, f)
    f.seek(0)
    loaded = torch.load(f, weights_only=True)
    assert loaded['message_hub']['log_scalars']['loss'].mean() == 2.25
    assert loaded['meta']['arr'].tolist() == [0, 1, 2]
    assert loaded['meta']['lr'] == 0.5 and loaded['meta']['step'] == 7


def test_config_scope_reads_package_configs(tmp_path):
    """A config outside the repository inherits ours through
    ``mmtrack_kd::`` and its dicts build in the mmtrack_kd scope, which
    falls back to mmdet's registries."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    cfg_file = tmp_path / 'my_kd.py'
    cfg_file.write_text(
        "_base_ = ['mmtrack_kd::_base_/distill/id_response.py']\n")
    cfg = Config.fromfile(str(cfg_file))
    loss_cfg = cfg.kd_id_response.distill_losses.kd_id
    assert loss_cfg['_scope_'] == 'mmtrack_kd'
    DefaultScope.get_instance('test-config-scope', scope_name='mmdet')
    loss = MODELS.build(loss_cfg)
    assert type(loss).__name__ == 'IDResponseConsistencyLoss'
    with pytest.raises(FileNotFoundError):
        bad = tmp_path / 'bad.py'
        bad.write_text("_base_ = ['mmtrack_kd::_base_/distill/nope.py']\n")
        Config.fromfile(str(bad))
