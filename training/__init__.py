"""Shop-R1 training: datasets, rewards, SFT and GRPO, evaluation and experiments."""
