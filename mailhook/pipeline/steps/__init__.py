"""The named pipeline steps, one module each, in pipeline order."""
