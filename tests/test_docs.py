"""The README and the docs run as written.

- the "Add distillation to your tracker" config, copied as it stands into a
  folder outside the repository, loads and builds a distiller around a
  teacher checkpoint at the path it names, and trains one step;
- the "Train, track, evaluate" commands run as written (from a folder that
  has the repository's ``tools`` and ``configs``);
- every repository path that the README and docs name exists.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = osp.join(ROOT, 'README.md')
DOCS = sorted(
    osp.join(ROOT, 'docs', f) for f in os.listdir(osp.join(ROOT, 'docs'))
    if f.endswith('.md'))


def section(text: str, heading: str) -> str:
    """The text of a markdown section, up to the next heading of the same
    or a higher level (``#`` lines inside code blocks are not headings)."""
    lines = text.splitlines(keepends=True)
    out, level, fence = None, 0, False
    for line in lines:
        if line.startswith('```'):
            fence = not fence
        m = None if fence else re.match(r'^(#+) (.*?)\s*$', line)
        if out is None:
            if m and m.group(2) == heading:
                out, level = [], len(m.group(1))
            continue
        if m and len(m.group(1)) <= level:
            break
        out.append(line)
    assert out is not None, f'no section {heading!r}'
    return ''.join(out)


def code_blocks(text: str, lang: str) -> list:
    return re.findall(rf'^```{lang}\n(.*?)^```', text, re.M | re.S)


def readme_section(heading: str) -> str:
    with open(README) as f:
        return section(f.read(), heading)


@pytest.fixture
def user_dir(tmp_path, tiny_synthmot, monkeypatch):
    """A working folder outside the repository with the data where the
    configs look for it (``data/synthmot_quick``)."""
    work = tmp_path / 'user'
    (work / 'data').mkdir(parents=True)
    os.symlink(tiny_synthmot, work / 'data' / 'synthmot_quick')
    monkeypatch.chdir(work)
    return work


def test_readme_kd_example_builds_and_trains(user_dir):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmtrack_kd.utils.config import load_config, resolve_num_ids
    blocks = code_blocks(readme_section('Add distillation to your tracker'),
                         'python')
    assert blocks, 'no python block in "Add distillation to your tracker"'
    cfg_file = user_dir / 'elsewhere' / 'my_kd.py'
    cfg_file.parent.mkdir()
    cfg_file.write_text(blocks[0])
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.type == 'MOTDistiller'

    # the teacher checkpoint where the example says it is
    init_default_scope('mmdet')
    tcfg = load_config(cfg.model.teacher)
    tcfg.model.id_head.num_ids = 7
    torch.manual_seed(0)
    teacher = MODELS.build(tcfg.model)
    os.makedirs(osp.dirname(cfg.model.teacher_ckpt))
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}},
               cfg.model.teacher_ckpt)

    resolve_num_ids(cfg)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'MOTDistiller'
    assert model.teacher.id_head.num_ids == 7  # read from the checkpoint
    # the example balances the three losses with the shipped ratios
    assert model.loss_balance is not None
    assert cfg.model.loss_balance.ratios == dict(kd_id=2.0, kd_feat=2.0,
                                                 kd_resp=20.0)

    # one training step on a batch of the example's own data pipeline
    from mmengine.runner import Runner
    cfg.work_dir = str(user_dir / 'work_dirs' / 'my_kd')
    loader = Runner.build_dataloader(cfg.train_dataloader)
    data = model.data_preprocessor(next(iter(loader)), True)
    losses = model.loss(**data)
    assert {'loss_kd_id', 'loss_kd_feat', 'loss_kd_resp'} <= set(losses)
    total = sum(v.sum() for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()


def test_readme_train_test_commands_run(user_dir):
    """The "Train, track, evaluate" block, line by line, as a shell would
    run it (``python`` is this interpreter)."""
    blocks = code_blocks(readme_section('Train, track, evaluate'), 'bash')
    assert blocks
    os.unlink(user_dir / 'data' / 'synthmot_quick')  # the block makes it
    for name in ('tools', 'configs'):
        os.symlink(osp.join(ROOT, name), user_dir / name)
    bindir = osp.dirname(sys.executable)  # the environment's `python`
    env = dict(os.environ, PATH=f'{bindir}{os.pathsep}{os.environ["PATH"]}',
               OMP_NUM_THREADS='1')
    lines = [ln for ln in blocks[0].splitlines()
             if ln.strip() and not ln.lstrip().startswith('#')]
    assert any('tools/train.py' in ln for ln in lines)
    for line in lines:
        proc = subprocess.run(['bash', '-ec', line], cwd=user_dir, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (line, proc.stdout[-3000:],
                                      proc.stderr[-3000:])
    assert (user_dir / 'metrics.json').is_file()
    assert any((user_dir / 'results').iterdir())


PATH_RE = re.compile(
    r'(?<![\w/.:-])((?:configs|tools|docs|mmtrack_kd|tests|requirements)/'
    r'[\w./{},-]*[\w}])([*<]?)')


def referenced_paths(text: str) -> set:
    """Repository paths written in a markdown text (``{a,b}`` expanded;
    paths with placeholders skipped)."""
    out = set()
    for p, pattern in PATH_RE.findall(text):
        if pattern or 'work_dirs' in p:  # a glob or a placeholder
            continue
        m = re.search(r'\{([^}]*)\}', p)
        if m:
            for alt in m.group(1).split(','):
                out.add(p[:m.start()] + alt + p[m.end():])
        else:
            out.add(p)
    return out


@pytest.mark.parametrize('doc', [README] + DOCS,
                         ids=lambda p: osp.relpath(p, ROOT))
def test_paths_named_in_docs_exist(doc):
    with open(doc) as f:
        text = f.read()
    missing = sorted(p for p in referenced_paths(text)
                     if not osp.exists(osp.join(ROOT, p))
                     and not osp.exists(osp.join(ROOT, p.rstrip('.'))))
    assert not missing, f'{osp.relpath(doc, ROOT)} names missing paths: ' \
                        f'{missing}'


def test_readme_links_resolve():
    with open(README) as f:
        text = f.read()
    links = re.findall(r'\]\(([^)#]+)\)', text)
    assert links
    missing = [ln for ln in links if not ln.startswith('http')
               and not osp.exists(osp.join(ROOT, ln))]
    assert not missing, missing



def test_losses_doc_weight_options_apply():
    """docs/losses.md sets the searched weights with --cfg-options: the
    options address the fragments' losses of the config it names."""
    import shlex

    from mmtrack_kd.utils.config import load_config
    from mmtrack_kd.utils.tools import parse_cfg_options
    with open(osp.join(ROOT, 'docs', 'losses.md')) as f:
        text = f.read()
    cmd = [b for b in code_blocks(text, 'bash') if 'tools/train.py' in b]
    assert cmd
    words = shlex.split(cmd[0].replace('\\\n', ' '))
    config = words[words.index('tools/train.py') + 1]
    opts = words[words.index('--cfg-options') + 1:]
    cfg = load_config(osp.join(ROOT, config), parse_cfg_options(opts))
    losses = {}
    for frag in cfg.model.distill_cfgs:
        losses.update(frag.distill_losses)
    assert losses['kd_id'].loss_weight == 3
    assert losses['kd_feat'].loss_weight == 3
    assert losses['kd_feat'].normalize is True
    assert losses['kd_resp'].loss_weight == 10
