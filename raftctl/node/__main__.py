"""``python -m raftctl.node``: one node process without loading the CLI (see raftctl/node/main.py)."""

import sys

from raftctl.node.main import main

if __name__ == "__main__":
    sys.exit(main())
