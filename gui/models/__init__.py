"""Qt item models over the images the user opened, and the thumbnail cache they draw from."""
