"""``spark-submit`` entry point: ``newsevents predict --engine spark`` with the same arguments.

spark-submit runs a Python file, not a console script; this is that file. See the README
(*Labeling on a Spark cluster*) for the full command with the wheel and the model directory.
"""

import sys

from newsevents.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", "--engine", "spark", *sys.argv[1:]]))
