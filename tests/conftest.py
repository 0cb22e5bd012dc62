import os

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# two cores: keep every test process at one compute thread
torch.set_num_threads(1)


@pytest.fixture(scope='session')
def repo_root():
    return ROOT


@pytest.fixture(scope='session')
def overhead_tool():
    """tools/benchmark/kd_step_overhead.py as a module (it is a script,
    not part of the package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'kd_step_overhead',
        os.path.join(ROOT, 'tools', 'benchmark', 'kd_step_overhead.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def tiny_synthmot(tmp_path_factory):
    """A tiny SynthMOT dataset (1 sequence per split, few frames), made once
    per test session."""
    from mmtrack_kd.datasets.synthmot import generate_synthmot
    out = tmp_path_factory.mktemp('synthmot') / 'tiny'
    generate_synthmot(
        str(out), preset='quick', seed=3, num_seqs_train=1, num_seqs_val=1,
        num_seqs_test=1, num_frames=10, min_people=2, max_people=4,
        empty_start=1, show_progress=False)
    return str(out)


@pytest.fixture(autouse=True)
def mmdet_default_scope():
    """Every test starts in mmdet's registry scope. A test that builds an
    mmengine Runner without ``default_scope`` leaves 'mmengine' as the
    current scope, after which ``MODELS.build`` would look in mmengine's
    root registry and miss everything registered in mmdet's."""
    import uuid

    from mmengine.registry import DefaultScope
    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name != 'mmdet':
        DefaultScope.get_instance(
            f'mmtrack_kd-test-{uuid.uuid4().hex}', scope_name='mmdet')
    yield
