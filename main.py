"""Start the Captioner desktop app: `python main.py [IMAGES_OR_FOLDERS...] [--model BUNDLE]`."""

from gui.app import main

if __name__ == "__main__":
    raise SystemExit(main())
