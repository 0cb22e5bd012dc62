import io
import random

import numpy as np
import torch

from mmtrack_kd.engine import RNGStateHook, get_rng_state, set_rng_state


def draws():
    return (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(),
            np.random.normal(), torch.rand(3).tolist())


def test_state_round_trip_through_weights_only_load():
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    random.gauss(0, 1)  # and one in python's
    buf = io.BytesIO()
    torch.save(get_rng_state(), buf)
    expected = draws()
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    draws()
    set_rng_state(state)
    assert draws() == expected


class _Runner:

    def __init__(self, it):
        self.iter = it
        self.logger = type('L', (), {'info': lambda self, msg: None})()


def test_restores_only_on_resume():
    hook = RNGStateHook()
    ckpt = dict(meta=dict(iter=5))
    torch.manual_seed(0)
    hook.before_save_checkpoint(None, ckpt)
    expected = torch.rand(2)
    # load_from of the same checkpoint (fine-tuning): iteration stays 0
    hook.after_load_checkpoint(None, ckpt)
    torch.manual_seed(3)
    hook.before_train(_Runner(0))
    assert not torch.equal(torch.rand(2), expected)
    # resume: the runner's iteration is the checkpoint's
    hook.after_load_checkpoint(None, ckpt)
    torch.manual_seed(3)
    hook.before_train(_Runner(5))
    assert torch.equal(torch.rand(2), expected)
