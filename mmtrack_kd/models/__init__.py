from . import (dense_heads, distill, layers, losses, mot,  # noqa: F401
               task_modules, trackers)
