"""`python -m zoo` runs the same CLI as the `zoo` console script."""

from zoo.cli import main

if __name__ == "__main__":
    main(prog_name="zoo")
