"""Generated cstrack configs of a fixed set of runs, paths replaced by
placeholders: ``python tests/benchmark/cstrack_golden.py`` writes them to
``tests/benchmark/data/cstrack_golden/``, and
``test_benchmark_families.py`` checks that the benchmark still generates
them byte for byte (``--family cstrack`` is the benchmark as it was)."""
import os
import os.path as osp
import sys
import tempfile

HERE = osp.dirname(osp.abspath(__file__))
GOLDEN = osp.join(HERE, 'data', 'cstrack_golden')

# (file name, preset, plan keyword arguments, role or method, seed)
CASES = [
    ('full_teacher', 'full', {}, 'teacher', 0),
    ('full_student_s1', 'full', {}, 'student', 1),
    ('full_ours_s2', 'full', {}, 'ours', 2),
    ('full_mgd', 'full', {}, 'mgd', 0),
    ('full_fgd', 'full', {}, 'fgd', 0),
    ('full_objectness', 'full', {}, 'objectness', 0),
    ('full_liang_agkd', 'full', {}, 'liang_agkd', 0),
    ('micro_student', 'micro', {}, 'student', 0),
    ('micro_only_feat', 'micro', {}, 'only_feat', 0),
    ('quick_ours_balanced', 'quick', dict(
        grad_ratio={'resp': 20.0, 'ours.feat': 5.0, 'ours.id': 2.0},
        kd_decay={'ours.feat': 0.0}, loss_scale={'id': 0.5},
        loss_options={'feat': {'normalize': True}}), 'ours', 0),
    ('quick_ours_no_resp', 'quick', {}, 'ours_no_resp', 1),
]


def generate(name: str, tmp: str, family_kw: dict = None) -> str:
    """The normalised text of case ``name``, generated under ``tmp``."""
    from mmtrack_kd.benchmark import configs
    from mmtrack_kd.benchmark.plan import REPO_ROOT, BenchmarkPlan
    case = {c[0]: c for c in CASES}[name]
    _, preset, kwargs, what, seed = case
    out, data = osp.join(tmp, name), osp.join(tmp, 'data')
    plan = BenchmarkPlan(out, preset, 3, [what], data=data,
                         **kwargs, **(family_kw or {}))
    if what in ('teacher', 'student'):
        path = configs.model_cfg(plan, what, seed)
    else:
        path = configs.kd_cfg(plan, what, seed, '/t/teacher.py',
                              '/t/teacher.pth')
    with open(path) as f:
        text = f.read()
    for path, key in sorted(((out, '<out>'), (data, '<data>'),
                             (REPO_ROOT, '<repo>')),
                            key=lambda x: -len(x[0])):
        text = text.replace(path, key)
    return text


def main() -> int:
    os.makedirs(GOLDEN, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, *_ in CASES:
            with open(osp.join(GOLDEN, name + '.txt'), 'w') as f:
                f.write(generate(name, tmp))
    print(f'wrote {len(CASES)} configs to {GOLDEN}')
    return 0


if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(HERE)))
    sys.exit(main())
