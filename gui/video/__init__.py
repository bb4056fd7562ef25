"""The app's Video tab: open or drop a video, watch segments stream in, edit, export."""
