"""``python -m raftctl`` runs the CLI."""

from raftctl.cli import main

if __name__ == "__main__":
    main()
