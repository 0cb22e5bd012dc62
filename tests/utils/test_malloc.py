"""retain_freed_memory: once set, a step that allocates and frees large
tensors again and again takes no fresh pages from the OS."""
import platform
import resource

import pytest
import torch

from mmtrack_kd.utils.malloc import retain_freed_memory


def _faults_of(fn) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _step():
    # a few activations of 4-24 MiB, written, then all freed
    for size in (1, 6, 3, 2, 6, 4):
        torch.empty(size * 1024 * 1024).fill_(1.0)


@pytest.mark.skipif(platform.system() != 'Linux' or
                    platform.libc_ver()[0] != 'glibc',
                    reason='glibc malloc only')
def test_no_page_faults_once_retained():
    assert retain_freed_memory() is True
    _step()  # the heap grows (in a long test session, once or twice more:
    _step()  # other tests leave it fragmented)
    faults = sorted(_faults_of(_step) for _ in range(5))
    # 24 MiB written a step: 6k pages when each block came fresh from the
    # OS; steady state (the median step) takes none
    assert faults[2] < 200, faults


@pytest.mark.parametrize('flag,retained', [([], True),
                                           (['--release-memory'], False)])
def test_train_tool_retains_unless_told(repo_root, monkeypatch, flag,
                                        retained):
    import importlib.util
    import os.path as osp
    spec = importlib.util.spec_from_file_location(
        'train_tool', osp.join(repo_root, 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    calls = []
    monkeypatch.setenv('LOCAL_RANK', '0')  # parse_common sets it if unset
    monkeypatch.setattr(tool, 'retain_freed_memory',
                        lambda: calls.append('retain') or True)
    monkeypatch.setattr(tool, 'train_model',
                        lambda config, **kw: calls.append(config))
    tool.main(['some.py'] + flag)
    assert calls == (['retain'] if retained else []) + ['some.py']
