"""The photo tab's logic that is not layout: captioning runs and saving with overwrite rules."""
