from setuptools import find_packages, setup

setup(
    name='mmtrack_kd',
    version='0.1.0',
    description='Knowledge distillation for OpenMMLab multi-object trackers',
    packages=find_packages(include=['mmtrack_kd', 'mmtrack_kd.*']),
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
