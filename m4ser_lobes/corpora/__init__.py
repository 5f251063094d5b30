"""Generated look-alikes of IEMOCAP and MELD in their exact on-disk formats (tests and demos)."""
