"""File > Registry > Open…: choose a registry folder or type a registry URL.

A registry is a folder on this machine or a share (``registry.db`` and ``artifacts/``), a
``sqlite:///…/registry.db`` URL, or a team's PostgreSQL server (``postgresql://user@host:port/db``).
The dialog only collects the location; the window opens it as a job (a server may take a while to
answer) and asks for a password when the server wants one. Locations are shown and remembered
without any password.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.services.models import registry_display_name

HINT = (
    "A folder (this machine or a network share), sqlite:///path/registry.db, or a team's server: "
    "postgresql://user@host:port/database. A server password is asked for when needed (or read from "
    "~/.pgpass / PGPASSWORD) and never saved."
)


class RegistryOpenDialog(QDialog):
    """A location field with a folder picker, and the recently opened registries to pick from."""

    def __init__(self, current: str, recent: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Open registry")
        self.setObjectName("registryOpenDialog")
        self.resize(620, 320)
        self.current_label = QLabel(f"Current registry: <b>{registry_display_name(current)}</b>")
        self.current_label.setWordWrap(True)
        hint = QLabel(HINT)
        hint.setWordWrap(True)

        self.location_edit = QLineEdit()
        self.location_edit.setObjectName("registryLocation")
        self.location_edit.setPlaceholderText("folder, sqlite:///…/registry.db or postgresql://user@host/db")
        browse = QPushButton("Folder…")
        browse.setObjectName("registryBrowse")
        browse.clicked.connect(self.choose_folder)
        row = QHBoxLayout()
        row.addWidget(self.location_edit, 1)
        row.addWidget(browse)

        self.recent_list = QListWidget()
        self.recent_list.setObjectName("recentRegistries")
        self.recent_list.addItems([registry_display_name(r) for r in recent])
        self.recent_list.currentTextChanged.connect(self.location_edit.setText)
        self.recent_list.itemDoubleClicked.connect(lambda *_: self.accept())

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        open_button = self.buttons.button(QDialogButtonBox.StandardButton.Open)
        self.location_edit.textChanged.connect(lambda text: open_button.setEnabled(bool(text.strip())))
        open_button.setEnabled(False)

        layout = QVBoxLayout(self)
        layout.addWidget(self.current_label)
        layout.addWidget(hint)
        layout.addLayout(row)
        if recent:
            layout.addWidget(QLabel("Recent registries:"))
            layout.addWidget(self.recent_list, 1)
        else:
            self.recent_list.hide()
            layout.addStretch(1)
        layout.addWidget(self.buttons)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Registry folder", self.location_edit.text())
        if folder:
            self.location_edit.setText(folder)

    def location(self) -> str:
        return self.location_edit.text().strip()


def ask_password(parent: QWidget | None, location: str, *, refused: bool) -> str | None:
    """The server's password typed by the user (not echoed, never stored), or None when cancelled."""
    text = (
        f"{'The server refused that password. ' if refused else ''}"
        f"Password for {registry_display_name(location)}:"
    )
    password, ok = QInputDialog.getText(parent, "Registry password", text, QLineEdit.EchoMode.Password)
    return password if ok and password else None


__all__ = ["RegistryOpenDialog", "ask_password"]
