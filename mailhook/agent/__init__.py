"""The agent: prompts, the one-call decision and the model providers behind one interface."""
