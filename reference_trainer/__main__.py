"""`torchrun --standalone --nproc_per_node=8 -m reference_trainer` (or `python -m reference_trainer`)."""

from reference_trainer.train import main

main()
