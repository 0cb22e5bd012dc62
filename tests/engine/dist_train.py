"""Test launcher: ``tools/train.py`` with
``mmtrack_kd.engine.auto_dist_backend`` applied to the config before the
runner is built (what tools/train.py itself should do; this wrapper is
harmless once it does, the function being idempotent).

Usage: torchrun --nproc_per_node=2 tests/engine/dist_train.py CONFIG ...
"""
import importlib.util
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main():
    spec = importlib.util.spec_from_file_location(
        'mmtrack_kd_train_tool', osp.join(ROOT, 'tools/train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    from mmtrack_kd.engine import auto_dist_backend
    build_cfg = train.build_cfg

    def build_cfg_with_backend(args):
        cfg = build_cfg(args)
        auto_dist_backend(cfg)
        return cfg

    train.build_cfg = build_cfg_with_backend
    return train.main()


if __name__ == '__main__':
    sys.exit(main())
