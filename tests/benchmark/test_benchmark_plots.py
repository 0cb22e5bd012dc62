"""mmtrack_kd.benchmark.plots: the three PNG files; matplotlib is not
imported with the package."""
from mmtrack_kd.benchmark import plots


def test_plots_are_written(tmp_path):
    def summ(idf1):
        stat = dict(mean=idf1, std=1.0, n=2)
        return dict(test=dict(MOTA=stat, IDF1=stat, HOTA=stat, FPS=stat))

    results = dict(methods=dict(
        teacher=dict(summary=summ(60.)), student=dict(summary=summ(50.)),
        ours=dict(summary=summ(55.)), fgd=dict(summary=dict(test={}))))
    records = dict(student={'0': dict(loss_curve=[[1, 3.0], [2, 2.0]])})
    written = plots.plot(results, records, str(tmp_path))
    assert [p.rsplit('/', 1)[1] for p in written] == [
        'metric_bars.png', 'loss_curves.png', 'acc_vs_fps.png']
    # with balance curves, a fourth plot
    records['ours'] = {'0': dict(balance_curves=dict(
        clipped_frac=[[10, 1.0], [20, 0.5]],
        gnorm_task=[[1, 2.0], [21, 1.0]],
        gnorm_kd_resp=[[1, 40.0], [21, 20.0]]))}
    written = plots.plot(results, records, str(tmp_path))
    assert written[-1].endswith('balance.png')
    for path in written:
        with open(path, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_nothing_to_plot(tmp_path):
    results = dict(methods=dict(student=dict(summary=dict(test={}))))
    assert plots.plot(results, {}, str(tmp_path)) == []


def test_matplotlib_is_imported_lazily():
    """No module of the package imports matplotlib at module level (only
    inside plot())."""
    import ast
    import glob
    import os.path as osp
    folder = osp.dirname(plots.__file__)
    for path in glob.glob(osp.join(folder, '*.py')):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or '']
            assert not any(n.startswith('matplotlib') for n in names), path
