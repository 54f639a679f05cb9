"""Deploy to a Maix Bit (flash layout, .kfpkg, kflash, file sync), the uPyLoader-style file tool, and the
virtual Maix Bit on a pseudo-terminal that both are tested against."""
