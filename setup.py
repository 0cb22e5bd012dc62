from setuptools import find_packages, setup

setup(
    name='mmtrack_kd',
    version='0.1.0',
    description='Knowledge distillation for OpenMMLab multi-object trackers',
    license='Apache-2.0',
    packages=find_packages(include=['mmtrack_kd', 'mmtrack_kd.*']),
    # The configs ship inside the package, as mmdet ships its own under
    # `.mim/`, so that a user's config anywhere can inherit them with
    # `_base_ = ['mmtrack_kd::_base_/distill/id_response.py']`.
    # `mmtrack_kd/.mim/configs` is a link to the repository's `configs/`.
    package_data={
        'mmtrack_kd': ['.mim/configs/**/*.py', '.mim/model-index.yml'],
        'mmtrack_kd.benchmark': ['presets.yaml'],
    },
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=[
        'torch>=2.1',
        'mmengine>=0.10,<0.11',
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmdet>=3.3.0,<3.4',
        'numpy',
        'scipy',
        'motmetrics>=1.4.0',
        'trackeval>=1.3.0',
        'lap>=0.5',
        'matplotlib',
        'tqdm',
        'onnx',
        'onnxruntime',
    ],
)
