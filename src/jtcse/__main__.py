"""`python -m jtcse ...` (also what `torchrun -m jtcse ...` runs)."""

from jtcse.cli.main import main

if __name__ == "__main__":
    main()
