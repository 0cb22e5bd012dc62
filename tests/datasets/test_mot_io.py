"""MOTChallenge text files: malformed lines name file and line; round trip."""
import numpy as np
import pytest

from mmtrack_kd.datasets.mot_io import (
    MOTFormatError,
    read_mot_txt,
    write_mot_txt,
)

GOOD = '1,3,10.5,20,30,60,1,1,0.8\n'


@pytest.mark.parametrize('line,why', [
    ('1,3,10,20,30\n', 'columns'),                    # too few
    ('1,3,10,20,30,60,1,1,1,1,1\n', 'columns'),       # too many
    ('1,3,10,20,-30,60,1,1,1\n', 'negative box size'),
    ('1,3,10,20,30,-1,1,1,1\n', 'negative box size'),
    ('1,abc,10,20,30,60,1,1,1\n', "'abc' is not a number"),
    ('1.5,3,10,20,30,60,1,1,1\n', 'frame must be an integer'),
    ('0,3,10,20,30,60,1,1,1\n', 'frame must be an integer >= 1'),
    ('1,3.2,10,20,30,60,1,1,1\n', 'id must be an integer'),
    ('1,3,nan,20,30,60,1,1,1\n', 'non-finite'),
])
def test_malformed_line_names_file_and_line(tmp_path, line, why):
    path = tmp_path / 'gt.txt'
    path.write_text(GOOD + '\n' + line)  # the blank line 2 is skipped
    with pytest.raises(MOTFormatError) as err:
        read_mot_txt(str(path))
    assert f'{path}:3' in str(err.value)
    assert why in str(err.value)


def test_defaults_and_round_trip(tmp_path):
    path = tmp_path / 'res.txt'
    path.write_text('2,7,1,2,3,4\n')
    rows = read_mot_txt(str(path))
    assert rows.shape == (1, 10)
    assert rows[0, 6] == 1 and rows[0, 7] == -1  # conf 1 counts the box
    gt = np.array([[1, 3, 10.5, 20, 30, 60, 1, 1, 0.8],
                   [2, 4, 0, 0, 5, 9, 0, 7, 0.25]])
    out = tmp_path / 'gt.txt'
    write_mot_txt(str(out), gt, gt=True)
    back = read_mot_txt(str(out))
    np.testing.assert_allclose(back[:, :9], gt, atol=1e-3)
    assert read_mot_txt(str(tmp_path / 'res.txt')).shape == (1, 10)
    empty = tmp_path / 'empty.txt'
    empty.write_text('')
    assert read_mot_txt(str(empty)).shape == (0, 10)
