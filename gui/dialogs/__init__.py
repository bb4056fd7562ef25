"""Modal questions: the overwrite prompt and the settings dialog."""
