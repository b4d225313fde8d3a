"""``python -m elax_plan`` runs the same CLI as the ``elax-plan`` script."""

from elax_plan.cli import main

if __name__ == "__main__":
    main()
