"""``python -m appgen``: the same CLI as the ``appgen`` script."""

from appgen.cli import main

if __name__ == "__main__":
    main(prog_name="appgen")
