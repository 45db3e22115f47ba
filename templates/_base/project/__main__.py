"""``python -m NAME`` run from the folder above this project lands here: say where to run from.

Inside the project folder, ``python -m NAME`` finds the package ``NAME/`` instead.
"""

import os
import sys

project = os.path.dirname(os.path.abspath(__file__))
name = os.path.basename(project)
sys.stderr.write(f"error: run this from the project folder: cd {os.path.relpath(project)} "
                 f"&& python -m {name} {' '.join(sys.argv[1:]) or '--help'}\n")
sys.exit(2)
