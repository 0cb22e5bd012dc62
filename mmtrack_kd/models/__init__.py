from . import (  # noqa: F401
               backbones,
               dense_heads,
               distill,
               layers,
               losses,
               mot,
               necks,
               task_modules,
               trackers,
)
