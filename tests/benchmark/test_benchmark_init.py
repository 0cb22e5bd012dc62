"""mmtrack_kd.benchmark.init_state: every student run of a seed (plain and
KD) starts from the same weights and sees the same first batch."""
import torch

from mmtrack_kd.apis.train import build_runner, build_train_config
from mmtrack_kd.benchmark import configs
from mmtrack_kd.benchmark.init_state import (
    build_initial_state,
    make_initial_students,
    save_state,
    state_sha1,
)
from mmtrack_kd.benchmark.runner import Benchmark


def start_of_training(cfg_path, work_dir):
    """What a training of ``cfg_path`` starts with: the student's weights
    after mmengine's init and ``load_from``, and the first train batch
    (the steps of ``Runner.train`` before the first iteration)."""
    runner = build_runner(build_train_config(cfg_path, work_dir=work_dir))
    loop = runner.train_loop  # builds the train dataloader
    runner._init_model_weights()
    runner.load_or_resume()
    runner.call_hook('before_train')
    runner.call_hook('before_train_epoch')
    model = runner.model
    student = getattr(model, 'student', model)
    state = {k: v.clone() for k, v in student.state_dict().items()}
    batch = next(iter(loop.dataloader))
    return state, batch


def test_methods_of_a_seed_share_start_weights_and_first_batch(
        tmp_path, tiny_synthmot):
    seed = 1
    bench = Benchmark(str(tmp_path / 'b'), 'micro', 2, ['ours'],
                      data=tiny_synthmot)
    # a teacher checkpoint (random weights: only the start is compared)
    teacher_cfg = configs.model_cfg(bench, 'teacher', 0)
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    save_state(build_initial_state(teacher_cfg, 0), teacher_ckpt, {})
    sha1 = make_initial_students(bench.out, configs.model_cfg(
        bench, 'student', seed), seed)
    plain_cfg, _ = bench.configs_of('student', seed)
    kd_cfg = configs.kd_cfg(bench, 'ours', seed, teacher_cfg, teacher_ckpt)

    plain_state, plain_batch = start_of_training(plain_cfg,
                                                 str(tmp_path / 'w1'))
    kd_state, kd_batch = start_of_training(kd_cfg, str(tmp_path / 'w2'))

    # the same weights, and they are the saved initial ones
    assert set(plain_state) == set(kd_state)
    for key, value in plain_state.items():
        assert torch.equal(value, kd_state[key]), key
    saved = torch.load(bench.init_path(seed), map_location='cpu')
    assert state_sha1(saved['state_dict']) == sha1 == state_sha1(
        plain_state)
    kd_saved = torch.load(bench.init_path(seed, kd=True),
                          map_location='cpu')['state_dict']
    assert set(kd_saved) == {'student.' + k for k in plain_state}
    # the seed's weights differ from another seed's
    other = build_initial_state(plain_cfg, seed + 1)
    assert state_sha1(other) != sha1

    # the same first batch: frames, augmentation and boxes
    assert len(plain_batch['inputs']) == len(kd_batch['inputs']) > 0
    for a, b in zip(plain_batch['inputs'], kd_batch['inputs']):
        assert torch.equal(a, b)
    for a, b in zip(plain_batch['data_samples'],
                    kd_batch['data_samples']):
        assert [s.img_path for s in a] == [s.img_path for s in b]
        assert [s.flip for s in a] == [s.flip for s in b]
        for sa, sb in zip(a, b):
            assert torch.equal(sa.gt_instances.bboxes,
                               sb.gt_instances.bboxes)


def test_initial_students_are_made_once_and_copied_from_teacher_from(
        tmp_path, tiny_synthmot):
    src = Benchmark(str(tmp_path / 'src'), 'micro', 1, [],
                    data=tiny_synthmot)
    sha1 = src.make_init(0)
    stamp = (tmp_path / 'src' / 'init' / 'student__seed0.pth').stat()
    assert src.make_init(0) == sha1  # kept, not rebuilt
    assert (tmp_path / 'src' / 'init' /
            'student__seed0.pth').stat().st_mtime_ns == stamp.st_mtime_ns
    # a folder reusing src copies its initial weights
    src_state = torch.load(src.init_path(0), map_location='cpu')
    src_state['state_dict'] = {
        k: v + 1 if v.is_floating_point() else v
        for k, v in src_state['state_dict'].items()}
    save_state(src_state['state_dict'], src.init_path(0), {})
    reuse = Benchmark(str(tmp_path / 'reuse'), 'micro', 1, ['ours'],
                      data=tiny_synthmot, teacher_from=str(tmp_path / 'src'))
    assert reuse.make_init(0) == state_sha1(src_state['state_dict'])
