"""Undo/redo for captions: one QUndoStack per image, gathered in a QUndoGroup.

Per-image stacks mean Ctrl+Z always undoes *this* image's last change, even while a batch
keeps writing captions into other images, and an image's history survives moving away and
back. Typing is merged into one step per burst (a pause of over 1.5 s, or a save, starts a
new step).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from gui.models.items import ImageItem, Source

Apply = Callable[[ImageItem, str, Source], None]
TYPING_ID = 1001
MERGE_WINDOW_S = 1.5


class SetCaption(QUndoCommand):
    """Change one image's caption; undo puts back the text and where it came from."""

    def __init__(
        self, apply: Apply, item: ImageItem, new: str, source: Source, label: str, typing: bool = False
    ) -> None:
        super().__init__(label)
        self.apply, self.item = apply, item
        self.old, self.old_source = item.caption, item.source
        self.new, self.new_source = new, source
        self.typing = typing
        self.stamp = time.monotonic()
        self.epoch = item.undo_epoch

    def redo(self) -> None:
        self.apply(self.item, self.new, self.new_source)

    def undo(self) -> None:
        self.apply(self.item, self.old, self.old_source)

    def id(self) -> int:
        return TYPING_ID if self.typing else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetCaption) or other.item is not self.item or not other.typing:
            return False
        if other.stamp - self.stamp > MERGE_WINDOW_S or other.epoch != self.epoch:
            return False
        self.new, self.new_source, self.stamp = other.new, other.new_source, other.stamp
        return True


class ReplaceCaptions(QUndoCommand):
    """Find and replace across many captions as one step. Undo puts back only the captions
    that still read as the replace left them (an image edited since keeps its later edit)."""

    def __init__(self, apply: Apply, changes: list[tuple[ImageItem, str, str]], label: str) -> None:
        super().__init__(label)
        self.apply = apply
        self.changes = [(item, old, item.source, new) for item, old, new in changes]

    def redo(self) -> None:
        for item, old, _source, new in self.changes:
            if item.caption == old:
                self.apply(item, new, Source.USER)

    def undo(self) -> None:
        for item, old, source, new in self.changes:
            if item.caption == new:
                self.apply(item, old, source)


class CaptionHistory(QObject):
    """Hands out each image's stack and keeps the group's active stack on the current image."""

    def __init__(self, apply: Apply, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.apply = apply
        self.group = QUndoGroup(self)
        self._stacks: dict[int, QUndoStack] = {}
        self._list = QUndoStack(self.group)  # steps over the whole list while no image is current
        self._list.setUndoLimit(50)

    def stack(self, item: ImageItem) -> QUndoStack:
        stack = self._stacks.get(id(item))
        if stack is None:
            stack = QUndoStack(self.group)
            stack.setUndoLimit(200)
            self.group.addStack(stack)
            self._stacks[id(item)] = stack
        return stack

    def set_caption(
        self, item: ImageItem, text: str, source: Source, label: str, typing: bool = False
    ) -> None:
        """Record and apply a change (no-op when the text is already that)."""
        if text == item.caption and source is item.source:
            return
        self.stack(item).push(SetCaption(self.apply, item, text, source, label, typing))

    def replace_many(self, changes: list[tuple[ImageItem, str, str]], label: str,
                     current: ImageItem | None) -> None:
        """Apply many captions as one undo step, on the current image's stack: Ctrl+Z right
        after it undoes the whole replace."""
        if changes:
            stack = self.stack(current) if current is not None else self._list
            stack.push(ReplaceCaptions(self.apply, changes, label))

    @staticmethod
    def seal(item: ImageItem) -> None:
        """End the current typing step (after a save, the next edit is an undo step of its own)."""
        item.undo_epoch += 1

    def activate(self, item: ImageItem | None) -> None:
        self.group.setActiveStack(self.stack(item) if item is not None else self._list)

    def forget(self, items: list[ImageItem]) -> None:
        for item in items:
            stack = self._stacks.pop(id(item), None)
            if stack is not None:
                self.group.removeStack(stack)
                stack.deleteLater()
