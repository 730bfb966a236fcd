"""Model families that misbehave on purpose, for the fault tests."""
