"""The demo booru: procedurally drawn anime faces served through real booru APIs on loopback."""
