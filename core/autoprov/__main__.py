"""``python -m autoprov`` is the ``autoprov`` command."""

from autoprov.cli import main

if __name__ == "__main__":
    main()
