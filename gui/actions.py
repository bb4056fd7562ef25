"""Every command of the window as data: name, label, shortcuts, tip, icon, and its menu.

A table instead of a hundred lines of QAction calls: the menus, the toolbar, the shortcut
help and the editor's shortcut pass-through all read the same list, so a shortcut is
defined once. The window maps each name to a slot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QUndoGroup
from PySide6.QtWidgets import QDockWidget, QMainWindow, QStyle, QToolBar, QWidget

Key = str | QKeySequence.StandardKey
SK = QKeySequence.StandardKey
SP = QStyle.StandardPixmap


@dataclass(frozen=True)
class Spec:
    name: str
    text: str
    keys: tuple[Key, ...] = ()
    tip: str = ""
    icon: QStyle.StandardPixmap | None = None


SPECS = (
    Spec("open_images", "&Open images…", (SK.Open,), "Add image files to the list"),
    Spec("open_folder", "Open &folder…", ("Ctrl+Shift+O",), "Add every image in a folder and its sub-folders",
         SP.SP_DirOpenIcon),
    Spec("open_bundle", "Open model &bundle…", ("Ctrl+B",), "Use another model bundle (one you trained)"),
    Spec("save", "&Save", (SK.Save,), "Write the selected captions to .txt files next to the images",
         SP.SP_DialogSaveButton),
    Spec("save_all", "Save &all", ("Ctrl+Shift+S",), "Write every unsaved caption"),
    Spec("export_json", "Export &JSON…", (), "All captions, scores and alternatives in one JSON file"),
    Spec("export_csv", "Export &CSV…", (), "All captions in one CSV file"),
    Spec("write_alt_text", "Write alt &text into photos…", (),
         "Write the selected captions into the photos as alt text (IPTC, XMP, EXIF)"),
    Spec("remove", "&Remove from list", (),
         "Forget the selected images (the files stay; Delete in the grid)"),
    Spec("clear", "C&lear list"),
    Spec("quit", "&Quit", (SK.Quit,)),
    Spec("replace", "Find and &replace…", ("Ctrl+H",),
         "Replace a word or phrase in the listed captions, with a preview (one undo step)"),
    Spec("revert", "Re&vert to saved", (), "Put back the caption stored in the .txt file"),
    Spec("settings", "&Settings…", (SK.Preferences, "Ctrl+,"), "Model, beam size, provider, auto-save"),
    Spec("caption_selected", "Caption &selected", ("Ctrl+R",), "Caption the selected images",
         SP.SP_MediaPlay),
    Spec("caption_all", "Caption &all", ("Ctrl+Shift+R",), "Caption every image in the list"),
    Spec("caption_uncaptioned", "Caption &uncaptioned", ("Ctrl+Alt+R",), "Caption images without a caption"),
    Spec("caption_all_replace", "Caption all, &replacing my captions…", (),
         "Caption every image and replace the captions read from files or typed (asks first)"),
    Spec("cancel", "&Cancel", (), "Stop the running batch", SP.SP_BrowserStop),
    Spec("escape", "Unpin word or stop", ("Esc",), "Unpin the attention word, else stop the running batch"),
    Spec("accept", "Accept && &next", ("Ctrl+Return", "Ctrl+Enter"),
         "Keep this caption, save it, go to the next image", SP.SP_DialogApplyButton),
    *(Spec(f"alt{r}", f"Use alternative {r}", (f"Alt+{r}",)) for r in range(1, 10)),
    Spec("next", "&Next image", ("PgDown", "Ctrl+Down")),
    Spec("previous", "&Previous image", ("PgUp", "Ctrl+Up")),
    Spec("next_uncaptioned", "Next &uncaptioned", ("Ctrl+U",)),
    Spec("find", "&Filter…", (SK.Find,), "Filter the list by caption or file name"),
    Spec("word_next", "Next attention word", ("Alt+Right",)),
    Spec("word_previous", "Previous attention word", ("Alt+Left",)),
    Spec("play", "Play attention", ("Alt+P",), "Show the attention of each word in turn"),
    Spec("bigger", "&Larger thumbnails", (SK.ZoomIn, "Ctrl+=")),
    Spec("smaller", "&Smaller thumbnails", (SK.ZoomOut,)),
    Spec("preview_zoom", "Preview: fit / &100 %", ("Ctrl+0",),
         "Show the photo at its own size or fitted (wheel over the photo zooms, drag pans)"),
    Spec("spotlight", "S&potlight overlay", ("Ctrl+Shift+H",), "Dim what the model ignored instead of heat"),
    Spec("train", "&Train a model on these captions…", (),
         "Fine-tune the model in use on the photos whose captions you saved (a separate process)"),
    Spec("shortcuts", "&Keyboard shortcuts", (SK.HelpContents,)),
    Spec("about", "&About Captioner"),
)

MENUS: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    ("&File", ("open_images", "open_folder", "open_bundle", None, "save", "save_all", "export_json",
               "export_csv", "write_alt_text", None, "remove", "clear", None, "quit")),
    ("&Edit", ("undo", "redo", "replace", "revert", None, "settings")),
    ("&Caption", ("caption_selected", "caption_all", "caption_uncaptioned", "caption_all_replace", "cancel",
                  None, "accept")),
    ("&Go", ("next", "previous", "next_uncaptioned", "find", None, "word_next", "word_previous", "play")),
    ("&View", ("bigger", "smaller", "preview_zoom", "spotlight", "tag_pane", "log")),
    ("&Tools", ("train",)),
    ("&Help", ("shortcuts", "about")),
)
TOOLBAR = ("open_folder", None, "caption_selected", "caption_all", "cancel", None, "save", "save_all",
           None, "settings")
GRID_MENU = ("caption_selected", "save", "revert", "write_alt_text", "remove")  # right-click on the grid


def key_sequences(keys: tuple[Key, ...]) -> list[QKeySequence]:
    """Standard keys expand to every platform binding; strings are portable key names."""
    out: list[QKeySequence] = []
    for key in keys:
        for seq in QKeySequence.keyBindings(key) if isinstance(key, SK) else [QKeySequence(key)]:
            if seq not in out:  # a duplicate would make Qt call the shortcut ambiguous
                out.append(seq)
    return out


def make_action(owner: QWidget, spec: Spec, slot: Callable[[], object]) -> QAction:
    """A window-wide action (its shortcut works whichever tab or widget has focus)."""
    action = QAction(spec.text, owner)
    action.setObjectName(spec.name)
    action.setShortcuts(key_sequences(spec.keys))
    if spec.tip:
        shortcut = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        action.setStatusTip(spec.tip)
        action.setToolTip(f"{spec.tip} ({shortcut})" if shortcut else spec.tip)
    if spec.icon is not None:
        action.setIcon(owner.style().standardIcon(spec.icon))
    action.triggered.connect(lambda _=False: slot())
    owner.addAction(action)
    return action


def install(window: QMainWindow, slots: dict[str, Callable[[], object]], history: QUndoGroup,
            log_dock: QDockWidget) -> dict[str, QAction]:
    """Every action of SPECS (plus undo, redo and the log pane's toggle) on `window`, with the
    menus and the toolbar; returns them by name."""
    actions = {spec.name: make_action(window, spec, slots[spec.name]) for spec in SPECS}
    undo, redo = history.createUndoAction(window, "&Undo"), history.createRedoAction(window, "&Redo")
    undo.setShortcuts(key_sequences((SK.Undo,)))
    redo.setShortcuts(key_sequences((SK.Redo, "Ctrl+Y")))
    log = log_dock.toggleViewAction()
    tags = QAction("&Tag counts", window)
    tags.setCheckable(True)
    tags.setChecked(True)
    tags.setStatusTip("Show or hide the count of each tag in the listed photos")
    tags.toggled.connect(lambda _on: slots["tag_pane"]())
    log.setShortcut(QKeySequence("Ctrl+L"))
    for name, action in (("undo", undo), ("redo", redo), ("log", log), ("tag_pane", tags)):
        action.setObjectName(name)
        window.addAction(action)
        actions[name] = action
    for title, names in MENUS:
        menu = window.menuBar().addMenu(title)
        for entry in names:
            menu.addSeparator() if entry is None else menu.addAction(actions[entry])
    bar = QToolBar("Main")
    bar.setObjectName("mainToolbar")
    bar.setMovable(False)
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for tool in TOOLBAR:
        bar.addSeparator() if tool is None else bar.addAction(actions[tool])
    window.addToolBar(bar)
    return actions
